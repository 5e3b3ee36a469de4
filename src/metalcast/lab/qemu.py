"""A lab machine that is a QEMU process, driven through QMP.

:class:`QemuMachine` is a :class:`~metalcast.lab.machine.Machine`: power on starts
``qemu-system-x86_64`` (inside the lab's network namespace, on the machine's tap),
power off is QMP ``quit``, the ACPI power button is ``system_powerdown`` (the guest
may ignore it, and then the machine stays on), reset is ``system_reset``.  The power
state is whether the process is alive: a guest that powers off ends QEMU, so the
machine is off.

The machine has dual-mode firmware, as many servers do: SeaBIOS for a legacy (BIOS)
boot, OVMF for a UEFI boot (two pflash drives: Debian's read-only ``OVMF_CODE_4M.fd``
and the machine's own copy of ``OVMF_VARS_4M.fd``, its NVRAM, kept across power
cycles).  Which one runs is the boot mode of the BMC's last boot override with a
device (IPMI's "EFI boot" flag, Redfish's ``BootSourceOverrideMode``), so a node
whose boot mode is UEFI boots UEFI; until an override says otherwise it is
``QemuSettings.boot_mode``.

Under SeaBIOS the boot override becomes QEMU's ``-boot`` at the next power on:
``once=n`` for a one-time PXE boot (a reset or a reboot of the guest then boots the
disk, so one process carries a whole deploy), ``order=n`` for a persistent one,
``order=c`` otherwise.  OVMF ignores ``-boot``: the NIC and the disk get a
``bootindex`` instead (the override's device first), so a PXE boot stays first for
resets of that process.  Under OVMF the NIC has no option ROM: the firmware's own
PXE client asks DHCP as a UEFI machine (client architecture 7) and loads iPXE
(``snponly.efi``) over TFTP, where QEMU's iPXE ROM would boot itself.  A reset that
needs another boot order or boot mode than the running process has restarts QEMU
instead.

Virtual media (the Redfish BMC's InsertMedia, :mod:`metalcast.lab.bmc.redfish_vmedia`)
is a read-only SATA CD drive (qdev id :data:`CD_DEVICE`) that a QEMU started with
media in it has: QMP ``blockdev-change-medium`` and ``eject`` change the media of a
running one, and a machine started with none gets the drive at its next power on
(the media stays in across power cycles, as a BMC keeps it).  A boot override to the
CD is ``-boot once=d`` (or ``order=d``) under SeaBIOS, the CD's ``bootindex`` 0 under
OVMF; a reset with that override restarts QEMU.

Acceleration is TCG unless :class:`QemuSettings` says otherwise: KVM nested in a
PVM host (the project's machines) is unusably slow, and ``-cpu host`` aborts there.

Errors: :class:`~metalcast.lab.machine.MachineError` (QEMU missing, failed to start
(with its stderr tail), or its QMP socket did not answer).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from metalcast.lab.machine import (
    DEFAULT_BIOS,
    BootDevice,
    BootMode,
    BootOverride,
    Faults,
    Hardware,
    MachineError,
    Media,
    Power,
    PowerAction,
    Sensor,
)

LOG = logging.getLogger(__name__)

QEMU_BINARY = "qemu-system-x86_64"
#: seconds QEMU may take from exec to answering on its QMP socket
START_TIMEOUT = 15.0
#: seconds QEMU may take to exit after QMP ``quit`` (then it is killed)
QUIT_TIMEOUT = 10.0
#: seconds one QMP exchange may take
QMP_TIMEOUT = 5.0
#: longest usable AF_UNIX socket path (sun_path is 108 bytes, NUL included)
MAX_SOCKET_PATH = 107
_POLL = 0.02
_TAIL_LINES = 15
#: starts the line the log gets at every power on
_POWER_ON_MARK = "--- power on "
#: the qdev id of the virtual CD drive (QMP ``blockdev-change-medium``, ``eject``)
CD_DEVICE = "vcd0"
#: the UEFI boot order (NIC n, disk c, CD d) for each first device
_UEFI_ORDERS = {"n": "ncd", "c": "cnd", "d": "dcn"}
#: OVMF from Debian's ``ovmf`` package: the firmware and the empty NVRAM every
#: machine's own variable store starts as
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@dataclass(frozen=True, slots=True)
class QemuSettings:
    """How every lab machine's QEMU runs."""

    binary: str = QEMU_BINARY
    #: "tcg"; "kvm" only when asked for (useless on nested PVM hosts)
    accel: str = "tcg"
    memory_mb: int = 1024
    cpus: int = 1
    #: network namespace QEMU starts in (holding the taps); None: this one
    netns: str | None = None
    #: the firmware's boot mode until a boot override sets one
    boot_mode: BootMode = BootMode.LEGACY
    ovmf_code: Path = OVMF_CODE
    ovmf_vars: Path = OVMF_VARS


@dataclass(frozen=True, slots=True)
class QemuNic:
    """A NIC beyond the first: its MAC and the tap it is plugged into."""

    mac: str
    tap: str


@dataclass(frozen=True, slots=True)
class QemuMachineSpec:
    """One machine: its identity, NICs, disks and files.

    The first NIC (``mac`` on ``tap``) is the provisioning NIC, the only one with a
    boot ROM; ``extra_nics`` have none, so the firmware never network-boots from them.
    ``disk`` is the first disk (the boot disk, ``/dev/vda`` in the guest);
    ``extra_disks`` follow it.  ``hardware`` sets SMBIOS type 1 (manufacturer,
    product, serial) and the disks' serial numbers.
    """

    name: str
    uuid: str
    mac: str
    tap: str
    disk: Path
    #: the guest's serial console (appended to across power cycles)
    serial_log: Path
    #: QEMU's own stdout and stderr (appended to)
    qemu_log: Path
    qmp_socket: Path
    #: QEMU's ``-pidfile``: lets a cleanup find a QEMU its owner left behind
    pid_file: Path
    #: the UEFI variable store (created from ``QemuSettings.ovmf_vars`` at the first
    #: UEFI boot); None: next to the disk, ``<disk>.nvram.fd``
    nvram: Path | None = None
    extra_nics: tuple[QemuNic, ...] = ()
    extra_disks: tuple[Path, ...] = ()
    hardware: Hardware | None = None

    @property
    def nvram_file(self) -> Path:
        return self.nvram or self.disk.with_name(f"{self.disk.stem}.nvram.fd")


def boot_argument(override: BootOverride) -> str:
    """QEMU's ``-boot`` value for a power on with ``override``."""
    if override.device is BootDevice.PXE:
        return "order=n" if override.persistent else "once=n"
    if override.device is BootDevice.CDROM:
        return "order=d" if override.persistent else "once=d"
    return "order=c"


def _escape(value: object) -> str:
    """A value inside a QEMU ``-opt key=value,…`` list (commas are doubled)."""
    return str(value).replace(",", ",,")


def qemu_command(
    spec: QemuMachineSpec,
    settings: QemuSettings,
    *,
    boot: str,
    mode: BootMode = BootMode.LEGACY,
    media: Path | None = None,
) -> list[str]:
    """The command line that powers ``spec`` on with ``-boot boot`` in boot ``mode``
    (under UEFI, ``boot`` picks which of the NIC, the CD and the disk comes first),
    with ``media`` in a CD drive (:data:`CD_DEVICE`; None: no CD drive)."""
    prefix = ["ip", "netns", "exec", settings.netns] if settings.netns else []
    uefi = mode is BootMode.UEFI
    nic, disk, cd = ("", "", "")
    if uefi:
        # no option ROM: OVMF's own PXE boots the NIC, as a server's UEFI does, and
        # loads iPXE (snponly.efi) over TFTP rather than QEMU's iPXE ROM booting itself
        first = boot.partition("=")[2][:1] or "c"  # "once=n" -> "n"
        index = {device: f",bootindex={i}" for i, device in enumerate(_UEFI_ORDERS[first])}
        nic, disk, cd = (f",romfile={index['n']}", index["c"], index["d"])
    return [
        *prefix, settings.binary,
        "-name", _escape(spec.name), "-uuid", spec.uuid,
        "-accel", settings.accel, "-machine", "q35",
        "-m", str(settings.memory_mb), "-smp", str(settings.cpus),
        "-nographic", "-monitor", "none",
        *(_firmware_arguments(spec, settings) if uefi else []),
        *_smbios_arguments(spec.hardware),
        "-chardev", f"file,id=serial0,path={_escape(spec.serial_log)},append=on",
        "-serial", "chardev:serial0",
        "-netdev", f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={spec.mac}{nic}",
        *_extra_nic_arguments(spec.extra_nics),
        *_disk_arguments(spec, boot_disk_options=disk),
        *_cd_arguments(media, options=cd),
        "-qmp", f"unix:{_escape(spec.qmp_socket)},server=on,wait=off",
        "-pidfile", str(spec.pid_file),
        *([] if uefi else ["-boot", boot]),
    ]  # fmt: skip


def _smbios_arguments(hardware: Hardware | None) -> list[str]:
    """SMBIOS type 1 (system information): what inspection reads as vendor, product
    and serial number."""
    if hardware is None:
        return []
    fields = {
        "manufacturer": hardware.manufacturer,
        "product": hardware.product,
        "serial": hardware.serial,
    }
    values = ",".join(f"{key}={_escape(value)}" for key, value in fields.items() if value)
    return ["-smbios", f"type=1,{values}"]


def _extra_nic_arguments(nics: tuple[QemuNic, ...]) -> list[str]:
    """The NICs beyond the first: no boot ROM (``romfile=``), no boot index."""
    arguments = []
    for number, nic in enumerate(nics, start=1):
        arguments += [
            "-netdev", f"tap,id=net{number},ifname={nic.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net{number},mac={nic.mac},romfile=",
        ]  # fmt: skip
    return arguments


def _disk_arguments(spec: QemuMachineSpec, *, boot_disk_options: str) -> list[str]:
    """The disks, the boot disk first (with ``boot_disk_options``, its boot index)."""
    disks = spec.hardware.disks if spec.hardware else ()
    arguments = []
    for number, path in enumerate((spec.disk, *spec.extra_disks)):
        serial = f",serial={_escape(disks[number].serial)}" if number < len(disks) else ""
        options = boot_disk_options if number == 0 else ""
        arguments += [
            "-drive", f"file={_escape(path)},if=none,id=disk{number},format=qcow2",
            "-device", f"virtio-blk-pci,drive=disk{number}{options}{serial}",
        ]  # fmt: skip
    return arguments


def _cd_arguments(media: Path | None, *, options: str) -> list[str]:
    """A SATA CD drive holding ``media`` (read-only), none without media."""
    if media is None:
        return []
    return [
        "-drive", f"if=none,id={CD_DEVICE}-drive,media=cdrom,readonly=on,file={_escape(media)}",
        "-device", f"ide-cd,drive={CD_DEVICE}-drive,id={CD_DEVICE},bus=ide.2{options}",
    ]  # fmt: skip


def _firmware_arguments(spec: QemuMachineSpec, settings: QemuSettings) -> list[str]:
    """OVMF's two pflash drives: the shared firmware (read-only) and the machine's NVRAM."""
    code, nvram = _escape(settings.ovmf_code), _escape(spec.nvram_file)
    return [
        "-drive", f"if=pflash,format=raw,unit=0,file={code},readonly=on",
        "-drive", f"if=pflash,format=raw,unit=1,file={nvram}",
    ]  # fmt: skip


def _read_reply(stream: IO[str]) -> dict[str, Any]:
    """The next reply (not event) on a QMP stream."""
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("QMP connection closed")
        message = json.loads(line)
        if isinstance(message, dict) and ("return" in message or "error" in message):
            return message


def qmp(path: Path, command: str, arguments: Mapping[str, object] | None = None) -> Any:
    """Run one QMP ``command`` on the socket at ``path``; its ``return`` value.

    Raises:
        OSError: the socket does not answer (or closed before replying).
        MachineError: QEMU refused the command.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(QMP_TIMEOUT)
        sock.connect(str(path))
        stream = sock.makefile("rw", encoding="utf-8")
        try:
            if not stream.readline():  # the greeting
                raise EOFError("QMP closed before its greeting")
            for name, args in (("qmp_capabilities", None), (command, arguments)):
                request: dict[str, object] = {"execute": name}
                if args:
                    request["arguments"] = dict(args)
                stream.write(json.dumps(request) + "\n")
                stream.flush()
                reply = _read_reply(stream)
                if "error" in reply:
                    raise MachineError(f"QMP {name} failed: {reply['error'].get('desc')}")
            return reply["return"]
        except (EOFError, ValueError) as exc:
            raise OSError(f"QMP {command} on {path}: {exc}") from exc
        finally:
            stream.close()


def _last_output(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` QEMU wrote to its log since the last power on."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    start = text.rfind(_POWER_ON_MARK)
    if start >= 0:
        text = text[start:].partition("\n")[2]
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


@dataclass(slots=True)
class _Firmware:
    """What the machine's firmware holds between power cycles."""

    #: the boot mode of boots without an override: the last one an override asked for
    mode: BootMode
    override: BootOverride
    bios: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BIOS))
    staged_bios: dict[str, str] = field(default_factory=dict)

    @classmethod
    def in_mode(cls, mode: BootMode) -> _Firmware:
        return cls(mode=mode, override=BootOverride(mode=mode))

    def next_boot_mode(self) -> BootMode:
        """The mode the next boot runs in; an override's mode sticks from then on."""
        if self.override.device is not None:
            self.mode = self.override.mode
        return self.mode


class QemuMachine:
    """A machine whose power is a QEMU process.  Thread-safe: one lock per machine
    serializes every action, and each holds it for at most a QEMU start or stop."""

    def __init__(
        self, spec: QemuMachineSpec, settings: QemuSettings, *, faults: Faults | None = None
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.name = spec.name
        self.uuid = spec.uuid
        self.faults = faults or Faults()
        self.hardware = replace(
            spec.hardware or Hardware(nics=(spec.mac,)),
            cpus=settings.cpus,
            memory_mb=settings.memory_mb,
        )
        self._lock = threading.RLock()
        self._firmware = _Firmware.in_mode(settings.boot_mode)
        self._process: subprocess.Popen[bytes] | None = None
        #: the boot order the running QEMU follows after a reset ("n" or "c")
        self._reset_order = "c"
        #: the firmware the running QEMU has
        self._running_mode = settings.boot_mode
        self.network_namespace = settings.netns
        #: what is in the virtual CD drive (kept across power cycles, as a BMC keeps it)
        self._media: Media | None = None
        #: whether the running QEMU has the CD drive (it has one only with media in it)
        self._running_cd = False

    # -- Machine ------------------------------------------------------------------

    def power(self) -> Power:
        with self._lock:
            return Power.ON if self._alive() else Power.OFF

    def act(self, action: PowerAction) -> None:
        with self._lock:
            if self.faults.ignore_power:
                return
            on = self._alive()
            if action is PowerAction.ON and not on:
                self._start()
            elif action is PowerAction.OFF and on:
                self._quit()
            elif action is PowerAction.SHUTDOWN and on:
                self._qmp("system_powerdown")
            elif action is PowerAction.RESET and on:
                self._reset()
            elif action is PowerAction.CYCLE:
                if on:
                    self._quit()
                self._start()
            elif action is PowerAction.NMI and on:
                self._qmp("inject-nmi")

    def boot_override(self) -> BootOverride:
        with self._lock:
            return self._firmware.override

    def set_boot_override(self, override: BootOverride) -> None:
        with self._lock:
            self._firmware.override = override

    def bios_settings(self) -> dict[str, str]:
        with self._lock:
            return dict(self._firmware.bios)

    def stage_bios_settings(self, settings: Mapping[str, str]) -> None:
        with self._lock:
            self._firmware.staged_bios.update(settings)

    def staged_bios_settings(self) -> dict[str, str]:
        with self._lock:
            return dict(self._firmware.staged_bios)

    def media(self) -> Media | None:
        with self._lock:
            return self._media

    def insert_media(self, media: Media) -> None:
        with self._lock:
            self._media = media
            if self._alive() and self._running_cd:
                arguments = {
                    "id": CD_DEVICE,
                    "filename": str(media.path),
                    "format": "raw",
                    "read-only-mode": "read-only",
                }
                self._qmp("blockdev-change-medium", arguments)

    def eject_media(self) -> None:
        with self._lock:
            self._media = None
            if self._alive() and self._running_cd:
                self._qmp("eject", {"id": CD_DEVICE, "force": True})

    def sensors(self) -> list[Sensor]:
        on = self.power() is Power.ON
        return [
            Sensor("CPU Temp", "temperature", 45.0 if on else 22.0, "degrees C"),
            Sensor("Inlet Temp", "temperature", 21.0, "degrees C"),
            Sensor("Fan 1", "fan", 6000.0 if on else 0.0, "RPM"),
            Sensor("PSU Power", "power", 180.0 if on else 8.0, "W"),
        ]

    # -- beyond the protocol ------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running QEMU's process id, None when off."""
        with self._lock:
            return self._process.pid if self._alive() and self._process else None

    def close(self) -> None:
        """Power off (QMP ``quit``, then kill) if on: the owner is going away."""
        with self._lock:
            if self._alive():
                self._quit()

    # -- the process ------------------------------------------------------------------

    def _alive(self) -> bool:
        """Whether QEMU runs; reaps it if it has exited (caller holds the lock)."""
        process = self._process
        if process is None:
            return False
        if process.poll() is None:
            return True
        LOG.info("QEMU of %s exited with %s", self.name, process.returncode)
        self._process = None
        return False

    def _start(self) -> None:
        firmware = self._firmware
        boot = boot_argument(firmware.override)
        mode = firmware.next_boot_mode()
        media = self._media.path if self._media else None
        command = qemu_command(self.spec, self.settings, boot=boot, mode=mode, media=media)
        self._check_binaries(command)
        if mode is BootMode.UEFI:
            self._prepare_nvram()
        with contextlib.suppress(FileNotFoundError):
            self.spec.qmp_socket.unlink()
        self._process = self._spawn(command)
        self._wait_until_ready()
        # OVMF keeps its boot order across resets: a PXE boot stays first
        pxe_sticks = boot == "order=n" or (mode is BootMode.UEFI and boot.endswith("=n"))
        self._reset_order = "n" if pxe_sticks else "c"
        self._running_mode = mode
        self._running_cd = media is not None
        self._booted()
        LOG.info(
            "QEMU of %s started (pid %s, %s, -boot %s)", self.name, self._process.pid, mode, boot
        )

    def _check_binaries(self, command: list[str]) -> None:
        wanted = {self.settings.binary: "qemu-system-x86"}
        if command[0] == "ip":
            wanted["ip"] = "iproute2"
        for binary, package in wanted.items():
            if shutil.which(binary) is None:
                raise MachineError(
                    f"cannot power on {self.name}: {binary} is not installed "
                    f"(Debian package {package})"
                )

    def _prepare_nvram(self) -> None:
        """The machine's UEFI variable store: a copy of OVMF's empty one at first."""
        for firmware in (self.settings.ovmf_code, self.settings.ovmf_vars):
            if not firmware.is_file():
                raise MachineError(
                    f"cannot power on {self.name} in UEFI mode: {firmware} is missing "
                    "(Debian package ovmf)"
                )
        nvram = self.spec.nvram_file
        if nvram.is_file():
            return
        try:
            nvram.parent.mkdir(parents=True, exist_ok=True)
            partial = nvram.with_name(f".{nvram.name}.partial")
            shutil.copyfile(self.settings.ovmf_vars, partial)
            partial.replace(nvram)
        except OSError as exc:
            raise MachineError(f"cannot create the NVRAM of {self.name}: {exc}") from exc

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        log_path = self.spec.qemu_log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"{_POWER_ON_MARK}{stamp}: {' '.join(command)}\n".encode())
            log.flush()
            try:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            except OSError as exc:
                raise MachineError(f"cannot start QEMU for {self.name}: {exc}") from exc

    def _wait_until_ready(self) -> None:
        """Wait for QMP to answer; kill QEMU and raise if it does not start."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None:
            with contextlib.suppress(OSError, MachineError):
                qmp(self.spec.qmp_socket, "query-status")
                return
            if time.monotonic() > deadline:
                self._kill(process)
                break
            time.sleep(_POLL)
        self._process = None
        raise MachineError(
            f"QEMU for {self.name} did not start (exit status {process.returncode}); "
            f"it said (in {self.spec.qemu_log}):\n{_last_output(self.spec.qemu_log)}"
        )

    def _booted(self) -> None:
        """A boot happened: a one-time override is used up, staged BIOS settings apply."""
        firmware = self._firmware
        if firmware.override.device is not None and not firmware.override.persistent:
            firmware.override = replace(firmware.override, device=None)
        firmware.bios.update(firmware.staged_bios)
        firmware.staged_bios.clear()

    def _reset(self) -> None:
        override = self._firmware.override
        if override.device is BootDevice.CDROM:
            # the firmware only boots the CD with -boot once=d (SeaBIOS) or its boot
            # index (OVMF): a new QEMU, with the media in its CD drive
            LOG.info("reset of %s boots the virtual CD: restarting QEMU", self.name)
            self._quit()
            self._start()
            return
        if override.device is not None:
            order = "n" if override.device is BootDevice.PXE else "c"
            if (order, override.mode) != (self._reset_order, self._running_mode):
                LOG.info(
                    "reset of %s needs another boot order or mode (%s, %s): restarting QEMU",
                    self.name, override.device, override.mode,
                )  # fmt: skip
                self._quit()
                self._start()
                return
        self._qmp("system_reset")
        self._booted()

    def _quit(self) -> None:
        process = self._process
        if process is None:
            return
        try:
            self._qmp("quit")
        except (OSError, MachineError) as exc:
            LOG.warning("QMP quit of %s failed (%s): terminating QEMU", self.name, exc)
            process.terminate()
        try:
            process.wait(QUIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill(process)
        self._process = None
        LOG.info("QEMU of %s powered off", self.name)

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        LOG.warning("killing QEMU of %s (pid %s)", self.name, process.pid)
        process.kill()
        process.wait()

    def _qmp(self, command: str, arguments: Mapping[str, object] | None = None) -> Any:
        try:
            return qmp(self.spec.qmp_socket, command, arguments)
        except OSError as exc:
            raise MachineError(f"QMP {command} of {self.name} failed: {exc}") from exc
