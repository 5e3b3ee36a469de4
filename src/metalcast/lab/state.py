"""The lab's state file, ``<lab-dir>/lab.json``: what ``lab up`` created, for the lab
daemon to serve and for ``lab down`` to remove.

It holds the BMC password, so it is written with mode 0600 (atomically: a reader
never sees half a file).  ``lab up`` writes it before it creates anything, and again
after each step, so that ``lab down`` can undo a ``lab up`` that failed half-way.

Files of a lab directory (defaults)::

    lab.json                 this state
    daemon.pid, daemon.log   the lab daemon (``metalcast lab serve``)
    <node>.qcow2             the machine's first disk (the boot disk)
    <node>-1.qcow2           its second disk (larger)
    <node>.nvram.fd          its UEFI variable store (from its first UEFI boot on)
    <node>.serial            its serial console (kept by ``lab down`` unless --purge)
    <node>.qemu.log          QEMU's own output (kept likewise)
    vmedia/<node>.iso        the virtual media its Redfish BMC was given (``--bmc redfish``)
    run/<node>.qmp, .pid     QEMU's QMP socket and pid file while it runs

Errors: :class:`~metalcast.lab.errors.LabError` (the file is unreadable or invalid).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from metalcast.lab.errors import LabError
from metalcast.lab.machine import BootMode, Disk, Hardware
from metalcast.lab.network import LabNetwork
from metalcast.lab.qemu import MAX_SOCKET_PATH, QemuMachineSpec, QemuNic, QemuSettings

#: SMBIOS type 1 of every lab machine (the serial number is each machine's own)
MANUFACTURER = "metalcast"
PRODUCT = "lab-q35"

STATE_FILE = "lab.json"
DAEMON_PID_FILE = "daemon.pid"
DAEMON_LOG_FILE = "daemon.log"
RUN_DIR = "run"
MEDIA_DIR = "vmedia"


class LabNode(BaseModel):
    """One lab machine: how to reach its BMC, where its files are, its metalcast node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    index: int
    mac: str
    tap: str
    bmc_port: int
    disk: Path
    serial_log: Path
    qemu_log: Path
    qmp_socket: Path
    pid_file: Path
    #: the UEFI variable store; None (labs from before UEFI): next to the disk
    nvram: Path | None = None
    #: the machine's SMBIOS UUID and IPMI system GUID, and its node's UUID
    machine_uuid: str
    #: set once the node is enrolled in metalcast
    node_uuid: str | None = None
    #: False: ``lab up --unenrolled``, a machine metalcast is not told about (for
    #: auto-discovery); ``lab up`` does not enrol it and ``lab down`` deletes no node
    enrolled: bool = True
    #: SMBIOS serial number, unique per machine (None: a lab from before)
    serial: str | None = None
    #: the sizes of ``disk`` and ``second_disk``, in GiB
    disk_sizes_gb: tuple[int, ...] = ()
    #: the second disk (None: a lab from before, with one disk)
    second_disk: Path | None = None
    #: the second NIC's MAC and tap (None: a lab from before, with one NIC)
    second_mac: str | None = None
    second_tap: str | None = None

    @property
    def macs(self) -> tuple[str, ...]:
        """The machine's MACs, the provisioning NIC's first."""
        return (self.mac,) if self.second_mac is None else (self.mac, self.second_mac)

    @property
    def disks(self) -> tuple[Path, ...]:
        """The machine's disk files, the boot disk first."""
        return (self.disk,) if self.second_disk is None else (self.disk, self.second_disk)

    @property
    def hardware(self) -> Hardware | None:
        """What the machine's SMBIOS and BMC report (None: a lab from before)."""
        if self.serial is None:
            return None
        disks = tuple(
            Disk(name=path.name, size_gb=size, serial=f"{self.serial}-D{number}")
            for number, (path, size) in enumerate(zip(self.disks, self.disk_sizes_gb, strict=False))
        )
        return Hardware(
            manufacturer=MANUFACTURER,
            product=PRODUCT,
            serial=self.serial,
            disks=disks,
            nics=self.macs,
        )


class LabState(BaseModel):
    """Everything one lab consists of."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    lab_dir: Path
    netns: str
    bridge: str
    #: which numbered lab network (``lab up --network``; labs from before: 1)
    network: int = 1
    #: the conductor group its nodes were enrolled in (None: the server's default)
    conductor_group: str | None = None
    api_url: str
    bmc_address: str
    bmc_username: str
    bmc_password: str
    disk_size_gb: int
    accel: str
    memory_mb: int
    cpus: int
    #: the machines' firmware mode until a BMC boot override sets another, and the
    #: boot mode their nodes are enrolled with
    boot_mode: BootMode = BootMode.LEGACY
    nodes: tuple[LabNode, ...]
    #: the lab daemon's process id, once it serves
    pid: int | None = None
    #: how metalcast drives the machines: ``ipmi`` (network boot), or ``redfish``
    #: (``lab up --bmc redfish``: virtual media boot, static addresses, no DHCP)
    bmc: Literal["ipmi", "redfish"] = "ipmi"
    #: the TCP port of the Redfish service of every machine (``bmc`` redfish)
    redfish_port: int | None = None

    @property
    def qemu_settings(self) -> QemuSettings:
        """How the machines' QEMU runs."""
        return QemuSettings(
            accel=self.accel,
            memory_mb=self.memory_mb,
            cpus=self.cpus,
            netns=self.netns,
            boot_mode=self.boot_mode,
        )

    @property
    def lab_network(self) -> LabNetwork:
        """The lab's network (namespace, bridge, addresses)."""
        return LabNetwork.numbered(self.network, netns=self.netns)

    @property
    def enrolled_nodes(self) -> tuple[LabNode, ...]:
        """The machines ``lab up`` enrols in metalcast."""
        return tuple(node for node in self.nodes if node.enrolled)

    def with_node(self, node: LabNode) -> LabState:
        """This state with ``node`` replacing the node of the same name."""
        nodes = tuple(node if n.name == node.name else n for n in self.nodes)
        return self.model_copy(update={"nodes": nodes})


def machine_spec(node: LabNode) -> QemuMachineSpec:
    """The QEMU machine behind ``node``."""
    return QemuMachineSpec(
        name=node.name,
        uuid=node.machine_uuid,
        mac=node.mac,
        tap=node.tap,
        disk=node.disk,
        serial_log=node.serial_log,
        qemu_log=node.qemu_log,
        qmp_socket=node.qmp_socket,
        pid_file=node.pid_file,
        nvram=node.nvram,
        extra_nics=(
            (QemuNic(node.second_mac, node.second_tap),)
            if node.second_mac and node.second_tap
            else ()
        ),
        extra_disks=(node.second_disk,) if node.second_disk else (),
        hardware=node.hardware,
    )


def run_dir(lab_dir: Path) -> Path:
    """Where QMP sockets and QEMU pid files go: ``<lab-dir>/run``, or a directory in
    the temporary directory when that path is too long for a unix socket."""
    local = lab_dir / RUN_DIR
    if len(str(local / "lab-00.qmp")) <= MAX_SOCKET_PATH:
        return local
    digest = hashlib.sha256(str(lab_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"metalcast-lab-{digest}"


def read_state(lab_dir: Path) -> LabState | None:
    """The state in ``lab_dir``; None if there is none.

    Raises:
        LabError: the file is unreadable or invalid.
    """
    path = lab_dir / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc}") from exc
    try:
        return LabState.model_validate_json(text)
    except ValidationError as exc:
        raise LabError(f"{path} is not a lab state file: {exc.errors()[0]['msg']}") from exc


def write_state(state: LabState) -> None:
    """Write ``state`` to ``<lab-dir>/lab.json`` (mode 0600, atomically).

    Raises:
        LabError: the file cannot be written.
    """
    path = state.lab_dir / STATE_FILE
    scratch = path.with_name(f".{STATE_FILE}.tmp")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(state.model_dump_json(indent=2) + "\n")
        os.replace(scratch, path)
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc}") from exc


def remove_state(lab_dir: Path) -> None:
    """Remove ``<lab-dir>/lab.json`` if it is there."""
    (lab_dir / STATE_FILE).unlink(missing_ok=True)
