"""QEMU lab machines behind the lab daemon's virtual IPMI BMC, driven by real
``ipmitool -I lanplus``: power on (PXE once or disk), off, soft off, reset, a reset
that needs another ``-boot``, a QEMU that ends by itself, and a boot device set with
the EFI flag, which brings up OVMF.  QEMU runs under TCG inside a namespace of this
test's own (never ``metalcast-lab``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lablib import free_udp_base, remove_lab, wait_for

from metalcast.lab.daemon import read_pid_file, start_daemon
from metalcast.lab.lifecycle import LabOptions, create_disk, plan
from metalcast.lab.machine import (
    BootDevice,
    BootMode,
    BootOverride,
    MachineError,
    Power,
    PowerAction,
)
from metalcast.lab.network import LabNetwork
from metalcast.lab.qemu import (
    OVMF_CODE,
    QemuMachine,
    QemuMachineSpec,
    QemuSettings,
    boot_argument,
    qemu_command,
    qmp,
)
from metalcast.lab.state import LabNode, LabState, write_state

TOOLS = ("ip", "ipmitool", "qemu-system-x86_64", "qemu-img")
NETNS = f"mclab-q{os.getpid()}"
#: TCG speed depends on the host's load: be generous
BOOT_TIMEOUT = 180.0

needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(tool) is None for tool in TOOLS),
    reason=f"needs root and {', '.join(TOOLS)}",
)


class Served:
    """A one-machine lab served by the lab daemon, without a metalcast server."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.node: LabNode = state.nodes[0]

    def ipmi(self, *args: str) -> str:
        command = [
            "ipmitool", "-I", "lanplus", "-H", self.state.bmc_address,
            "-p", str(self.node.bmc_port), "-U", self.state.bmc_username,
            "-P", self.state.bmc_password, "-R", "3", "-N", "2", *args,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"ipmitool {' '.join(args)}: {done.stderr}"
        return done.stdout

    def power(self) -> str:
        return self.ipmi("power", "status").strip().rsplit(" ", 1)[-1]

    def qemu_pid(self) -> int | None:
        """The running QEMU's PID (from its -pidfile), None when there is none."""
        pid = read_pid_file(self.node.pid_file)
        return pid if pid is not None and Path(f"/proc/{pid}").exists() else None

    def qemu_args(self) -> list[str]:
        pid = self.qemu_pid()
        assert pid is not None, "no QEMU runs"
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")

    def serial(self) -> str:
        path = self.node.serial_log
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_serial(self, text: str, *, count: int = 1) -> None:
        wait_for(
            lambda: self.serial().count(text) >= count,
            timeout=BOOT_TIMEOUT,
            what=f"{text!r} (x{count}) on the serial console:\n{self.serial()[-2000:]}",
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    lab_dir = tmp_path / "lab"
    options = LabOptions(lab_dir=lab_dir, nodes=1, base_port=free_udp_base(1), netns=NETNS)
    state = plan(options)
    lab_dir.mkdir()
    write_state(state)
    try:
        LabNetwork(NETNS).create(1)
        state.nodes[0].qmp_socket.parent.mkdir(parents=True, exist_ok=True)
        for disk in state.nodes[0].disks:  # the boot disk and the second one
            create_disk(disk, size_gb=1)
        state = state.model_copy(update={"pid": start_daemon(lab_dir)})
        write_state(state)
        yield Served(state)
    finally:
        remove_lab(lab_dir, NETNS)


@pytest.mark.e2e
@needs_lab
def test_bootdev_pxe_then_power_on_network_boots_once(served: Served) -> None:
    assert served.power() == "off"
    served.ipmi("chassis", "bootdev", "pxe")
    assert "Force PXE" in served.ipmi("chassis", "bootparam", "get", "5")

    served.ipmi("power", "on")

    assert served.power() == "on"
    args = served.qemu_args()
    assert args[args.index("-boot") + 1] == "once=n"
    assert args[args.index("-accel") + 1] == "tcg"
    in_netns = subprocess.run(["ip", "netns", "pids", NETNS], capture_output=True, text=True)
    assert str(served.qemu_pid()) in in_netns.stdout.split()
    assert qmp(served.node.qmp_socket, "query-status")["status"] == "running"
    # iPXE asks for DHCP on the lab's tap, with the lab's MAC
    served.wait_serial(f"Configuring (net0 {served.node.mac})")
    # a one-time override is used up by the boot
    assert "No override" in served.ipmi("chassis", "bootparam", "get", "5")


@pytest.mark.e2e
@needs_lab
@pytest.mark.skipif(not OVMF_CODE.is_file(), reason="needs OVMF (Debian package ovmf)")
def test_bootdev_with_the_efi_flag_boots_ovmf_and_the_mode_sticks(served: Served) -> None:
    served.ipmi("chassis", "bootdev", "pxe", "options=efiboot")
    assert "BIOS EFI boot" in served.ipmi("chassis", "bootparam", "get", "5")

    served.ipmi("power", "on")

    args = served.qemu_args()
    assert "-boot" not in args  # OVMF follows bootindex
    assert f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on" in args
    assert f"if=pflash,format=raw,unit=1,file={served.node.nvram}" in args
    assert f"virtio-net-pci,netdev=net0,mac={served.node.mac},romfile=,bootindex=0" in args
    assert served.node.nvram is not None and served.node.nvram.is_file()
    # OVMF's own PXE, through the NIC ROM's EFI driver (iPXE)
    served.wait_serial("Start PXE over IPv4")

    # no override now, no EFI flag: the machine stays in UEFI mode, disk first
    served.ipmi("power", "off")
    served.ipmi("power", "on")
    args = served.qemu_args()
    assert f"if=pflash,format=raw,unit=1,file={served.node.nvram}" in args
    assert any(a.startswith("virtio-blk-pci,drive=disk0,bootindex=0") for a in args)

    # a legacy override: SeaBIOS again
    served.ipmi("chassis", "bootdev", "disk")
    served.ipmi("power", "reset")
    args = served.qemu_args()
    assert args[args.index("-boot") + 1] == "order=c"
    assert not any("pflash" in arg for arg in args)


@pytest.mark.e2e
@needs_lab
def test_power_off_ends_qemu(served: Served) -> None:
    served.ipmi("power", "on")
    pid = served.qemu_pid()
    assert pid is not None

    served.ipmi("power", "off")

    assert served.power() == "off"
    assert not Path(f"/proc/{pid}").exists()
    assert not served.node.pid_file.exists()


@pytest.mark.e2e
@needs_lab
def test_reset_restarts_the_guest_in_the_same_qemu(served: Served) -> None:
    served.ipmi("power", "on")
    pid = served.qemu_pid()
    served.wait_serial("SeaBIOS")

    served.ipmi("power", "reset")

    served.wait_serial("SeaBIOS", count=2)
    assert served.qemu_pid() == pid
    assert served.power() == "on"


@pytest.mark.e2e
@needs_lab
def test_soft_off_without_an_os_leaves_the_machine_on(served: Served) -> None:
    served.ipmi("power", "on")
    pid = served.qemu_pid()
    served.wait_serial("SeaBIOS")

    served.ipmi("power", "soft")

    # nothing in the firmware answers the ACPI power button
    time.sleep(3)
    assert served.power() == "on"
    assert served.qemu_pid() == pid


@pytest.mark.e2e
@needs_lab
def test_reset_after_a_new_boot_override_restarts_qemu_with_it(served: Served) -> None:
    served.ipmi("chassis", "bootdev", "disk")
    served.ipmi("power", "on")
    first = served.qemu_pid()
    assert "order=c" in served.qemu_args()

    served.ipmi("chassis", "bootdev", "pxe")
    served.ipmi("power", "reset")

    assert served.power() == "on"
    assert served.qemu_pid() != first
    assert "once=n" in served.qemu_args()


@pytest.mark.e2e
@needs_lab
def test_a_qemu_that_ends_by_itself_is_off_and_powers_on_again(served: Served) -> None:
    served.ipmi("power", "on")
    first = served.qemu_pid()

    qmp(served.node.qmp_socket, "quit")  # as a guest's poweroff ends QEMU

    wait_for(lambda: served.power() == "off", timeout=30, what="power status off")
    served.ipmi("power", "on")
    assert served.power() == "on"
    assert served.qemu_pid() not in (None, first)


@pytest.mark.e2e
@needs_lab
def test_the_test_disk_boots_and_powers_off_on_soft_off(
    served: Served, lab_disk_image: Path
) -> None:
    disk = served.node.disk
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", lab_disk_image, disk], check=True
    )
    served.ipmi("chassis", "bootdev", "disk")
    served.ipmi("power", "on")
    served.wait_serial("METALCAST-DISK-BOOTED root=/dev/vda")

    served.ipmi("power", "soft")

    # the guest's acpid powers it off, which ends QEMU
    wait_for(lambda: served.power() == "off", timeout=BOOT_TIMEOUT, what="the guest's poweroff")
    assert served.qemu_pid() is None


# -- QemuMachine on its own ------------------------------------------------------------


def _spec(directory: Path) -> QemuMachineSpec:
    return QemuMachineSpec(
        name="lab-x",
        uuid="4d434453-0000-4000-8000-000000000001",
        mac="52:54:00:6d:63:3f",
        tap="mctapx",
        disk=directory / "lab-x.qcow2",
        serial_log=directory / "lab-x.serial",
        qemu_log=directory / "lab-x.qemu.log",
        qmp_socket=directory / "lab-x.qmp",
        pid_file=directory / "lab-x.pid",
    )


def test_a_missing_qemu_is_a_clear_error(tmp_path: Path) -> None:
    machine = QemuMachine(_spec(tmp_path), QemuSettings(binary="qemu-system-missing"))

    with pytest.raises(MachineError, match="qemu-system-missing is not installed"):
        machine.act(PowerAction.ON)
    assert machine.power() is Power.OFF


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs QEMU")
def test_a_qemu_that_fails_to_start_shows_what_it_said(tmp_path: Path) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", tmp_path / "lab-x.qcow2", "1G"])
    machine = QemuMachine(_spec(tmp_path), QemuSettings(accel="no-such-accel"))

    with pytest.raises(MachineError, match="invalid accelerator no-such-accel"):
        machine.act(PowerAction.ON)
    assert machine.power() is Power.OFF


@pytest.mark.parametrize(
    ("override", "boot"),
    [
        (BootOverride(), "order=c"),
        (BootOverride(BootDevice.PXE), "once=n"),
        (BootOverride(BootDevice.PXE, persistent=True), "order=n"),
        (BootOverride(BootDevice.DISK), "order=c"),
        (BootOverride(BootDevice.DISK, persistent=True), "order=c"),
    ],
)
def test_the_boot_override_becomes_qemus_boot_option(override: BootOverride, boot: str) -> None:
    assert boot_argument(override) == boot


@pytest.mark.parametrize(
    ("boot", "nic", "disk"),
    [
        ("once=n", "romfile=,bootindex=0", "bootindex=1"),
        ("order=c", "romfile=,bootindex=1", "bootindex=0"),
    ],
)
def test_uefi_boots_by_bootindex_from_the_machines_nvram(
    tmp_path: Path, boot: str, nic: str, disk: str
) -> None:
    spec = _spec(tmp_path)

    args = qemu_command(spec, QemuSettings(), boot=boot, mode=BootMode.UEFI)

    assert "-boot" not in args
    assert f"if=pflash,format=raw,unit=1,file={tmp_path / 'lab-x.nvram.fd'}" in args
    assert f"virtio-net-pci,netdev=net0,mac={spec.mac},{nic}" in args
    assert f"virtio-blk-pci,drive=disk0,{disk}" in args
