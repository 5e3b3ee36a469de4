"""Bringing a lab up and tearing it down: what ``metalcast lab up``/``down``/``status`` do.

``bring_up`` checks everything it can before it changes anything (root, tools, a
metalcast API answering, free node names and BMC ports), records the plan in
``lab.json``, then creates the network namespace with its bridge and taps (two per
machine), two empty qcow2 disks per machine, starts the lab daemon (QEMU machines
behind virtual IPMI BMCs) and enrols the machines as nodes, except the
``--unenrolled`` ones, which metalcast is not told about (for auto-discovery).

Every machine looks like a small server to inspection: two disks of different
sizes (the first, the boot disk, is the smaller, so the agent's default root-disk
choice, the smallest disk that holds the image, is the first disk, as before), two
NICs on the lab bridge with MACs the lab chose (the first the provisioning NIC,
the only one with a boot ROM), and SMBIOS type-1 manufacturer, product and a serial
number unique per machine, all recorded in ``lab.json``.  The machines' firmware boots legacy BIOS
(SeaBIOS) or UEFI (OVMF), as ``LabOptions.boot_mode`` says and later as their BMC
is told (see :mod:`metalcast.lab.qemu`); their nodes are enrolled with that boot
mode (``properties/capabilities`` ``boot_mode:bios`` or ``boot_mode:uefi``).  If any
step fails, what was created so far is torn down again.

``tear_down`` undoes it from ``lab.json``, every step idempotent: it deletes the
nodes (in maintenance first if their state forbids deletion), stops the daemon
(which powers the machines off), kills any QEMU left behind, deletes the namespace
and removes the disks and run files; serial consoles and logs stay unless purged.

The lab uses loopback (the BMCs, the API) and addresses inside its own namespace only.

Errors: :class:`~metalcast.lab.errors.LabError` and its subclasses;
:class:`~metalcast.boot.errors.NetnsError` (an ``ip`` command failed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from metalcast.errors import MetalcastError
from metalcast.lab.daemon import (
    daemon_pid,
    process_matches,
    read_pid_file,
    start_daemon,
    stop_daemon,
    terminate,
)
from metalcast.lab.enrolment import ServerApi, hardware_type
from metalcast.lab.errors import LabAlreadyUp, LabError, ServerUnreachable
from metalcast.lab.machine import BootMode
from metalcast.lab.network import LabNetwork, mac_address, tap_name
from metalcast.lab.qemu import OVMF_CODE, OVMF_VARS, QEMU_BINARY
from metalcast.lab.state import (
    DAEMON_LOG_FILE,
    LabNode,
    LabState,
    machine_spec,
    read_state,
    remove_state,
    run_dir,
    write_state,
)

Progress = Callable[[str], None]

DEFAULT_API_URL = "http://127.0.0.1:6385"
DEFAULT_BASE_PORT = 6230
BMC_USERNAME = "admin"
NODE_PREFIX = "lab"
TOOLS = ("ip", "qemu-img", QEMU_BINARY)
#: seconds a stray QEMU gets to exit after SIGTERM
STRAY_TIMEOUT = 10.0


def _silent(_line: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class LabOptions:
    """What ``metalcast lab up`` was asked for."""

    lab_dir: Path
    api_url: str = DEFAULT_API_URL
    #: the CA certificate to verify an https ``api_url`` with (None: the system's)
    cacert: Path | None = None
    nodes: int = 2
    #: machines started but not enrolled in metalcast (``lab up --unenrolled``)
    unenrolled: int = 0
    #: the first (boot) disk's size
    disk_size_gb: int = 2
    #: the second disk's size; None: one GiB more than the first
    second_disk_size_gb: int | None = None
    #: the first BMC's port; None: 6230 on network 1, 6330 on 2, …
    base_port: int | None = None
    #: the namespace to create; None: the numbered network's
    netns: str | None = None
    #: which numbered lab network (:meth:`LabNetwork.numbered`)
    network: int = 1
    #: the conductor group the nodes are enrolled in (None: the server's default)
    conductor_group: str | None = None
    accel: str = "tcg"
    memory_mb: int = 1024
    bmc_address: str = "127.0.0.1"
    #: the machines' firmware (``lab up --uefi``: UEFI) and their nodes' boot mode
    boot_mode: BootMode = BootMode.LEGACY
    #: the credentials the nodes are enrolled with (None: the server wants none)
    api_auth: httpx.Auth | None = None
    #: ``redfish``: the nodes are driven through a Redfish BMC and boot from virtual
    #: media (``lab up --bmc redfish``); ``ipmi``: IPMI and network boot
    bmc: Literal["ipmi", "redfish"] = "ipmi"

    @property
    def disk_sizes_gb(self) -> tuple[int, int]:
        second = self.second_disk_size_gb or self.disk_size_gb + 1
        return (self.disk_size_gb, second)

    @property
    def lab_network(self) -> LabNetwork:
        """The network to create."""
        return LabNetwork.numbered(self.network, netns=self.netns)

    @property
    def first_bmc_port(self) -> int:
        return self.base_port or DEFAULT_BASE_PORT + 100 * (self.network - 1)

    @property
    def node_prefix(self) -> str:
        """``lab`` on network 1, ``labN`` on network N."""
        return NODE_PREFIX if self.network == 1 else f"{NODE_PREFIX}{self.network}"


# -- lab up ------------------------------------------------------------------------------


def bring_up(options: LabOptions, *, progress: Progress = _silent) -> LabState:
    """Create the lab ``options`` describe and enrol its machines; the lab's state.

    Raises:
        LabAlreadyUp: a lab runs in ``options.lab_dir`` already (nothing changed).
        LabError: a check or a step failed (what was created is removed again).
        NetnsError: an ``ip`` command failed (likewise).
    """
    _require_root("lab up", "create network namespaces")
    _require_tools(options.boot_mode)
    _refuse_existing(options)
    api = ServerApi(options.api_url, auth=options.api_auth, cacert=options.cacert)
    try:
        api.check()
        state = plan(options)
        _require_free(api, state)
        extra = api.interfaces(hardware_type(state))
        options.lab_dir.mkdir(parents=True, exist_ok=True)
        write_state(state)
        try:
            return _build(state, api, extra=extra, progress=progress)
        except BaseException:
            _undo(options.lab_dir, progress)
            raise
    finally:
        api.close()


def _undo(lab_dir: Path, progress: Progress) -> None:
    """Tear down a lab whose ``lab up`` failed; the failure itself is what matters."""
    progress("lab up failed: removing what it created")
    try:
        tear_down(lab_dir, progress=progress)
    except MetalcastError as exc:
        progress(f"removing it failed too: {exc.message} (run `metalcast lab down`)")


def plan(options: LabOptions) -> LabState:
    """The lab ``options`` describe, nothing created yet."""
    lab_dir, runs = options.lab_dir.absolute(), run_dir(options.lab_dir.absolute())
    network = options.lab_network
    nodes = []
    for index in range(options.nodes + options.unenrolled):
        name = f"{options.node_prefix}-{index}"
        key = f"metalcast-lab:{network.netns}:{name}"
        machine_uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, key))
        nodes.append(
            LabNode(
                name=name,
                index=index,
                mac=mac_address(index, network=network.number),
                tap=tap_name(index),
                bmc_port=options.first_bmc_port + index,
                disk=lab_dir / f"{name}.qcow2",
                serial_log=lab_dir / f"{name}.serial",
                qemu_log=lab_dir / f"{name}.qemu.log",
                qmp_socket=runs / f"{name}.qmp",
                pid_file=runs / f"{name}.pid",
                nvram=lab_dir / f"{name}.nvram.fd",
                machine_uuid=machine_uuid,
                enrolled=index < options.nodes,
                serial=serial_number(network.number, index, machine_uuid),
                disk_sizes_gb=options.disk_sizes_gb,
                second_disk=lab_dir / f"{name}-1.qcow2",
                second_mac=mac_address(index, network=network.number, nic=1),
                second_tap=tap_name(index, nic=1),
            )
        )
    return LabState(
        lab_dir=lab_dir,
        netns=network.netns,
        bridge=network.bridge,
        network=network.number,
        conductor_group=options.conductor_group,
        api_url=options.api_url,
        bmc_address=options.bmc_address,
        bmc_username=BMC_USERNAME,
        bmc_password=secrets.token_urlsafe(12),
        disk_size_gb=options.disk_size_gb,
        accel=options.accel,
        memory_mb=options.memory_mb,
        cpus=1,
        boot_mode=options.boot_mode,
        nodes=tuple(nodes),
        bmc=options.bmc,
        # TCP: beside the IPMI BMCs' UDP ports, the first one's number
        redfish_port=options.first_bmc_port if options.bmc == "redfish" else None,
    )


def serial_number(network: int, index: int, machine_uuid: str) -> str:
    """Machine ``index``'s SMBIOS serial number: ``MCL<network><index>-<8 hex of its
    UUID>`` (15 characters; a disk's serial adds ``-D<n>``, within virtio's 20)."""
    return f"MCL{network}{index:02d}-{machine_uuid.replace('-', '')[:8].upper()}"


def _require_root(command: str, why: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{command} needs root to {why}: run it as root (sudo)")


def _require_tools(boot_mode: BootMode) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(
            f"lab up needs {', '.join(missing)}: "
            "apt-get install qemu-system-x86 qemu-utils ipxe-qemu iproute2"
        )
    if boot_mode is BootMode.UEFI:
        absent = [str(path) for path in (OVMF_CODE, OVMF_VARS) if not path.is_file()]
        if absent:
            raise LabError(f"UEFI machines need OVMF ({', '.join(absent)}): apt-get install ovmf")


def _refuse_existing(options: LabOptions) -> None:
    state = read_state(options.lab_dir)
    if state is not None:
        pid = daemon_pid(state)
        if pid is not None:
            raise LabAlreadyUp(
                f"the lab in {options.lab_dir} is already up: {len(state.nodes)} machines, "
                f"daemon pid {pid} (see `metalcast lab status`)"
            )
        raise LabError(
            f"a lab in {options.lab_dir} is left over (its daemon is not running): "
            "run `metalcast lab down` first"
        )
    network = options.lab_network
    if network.exists():
        raise LabError(
            f"network namespace {network.netns} exists but no lab in {options.lab_dir} "
            f"owns it: take down the lab that made it (`metalcast lab down --lab-dir …`), "
            f"or `ip netns delete {network.netns}` if it is stale"
        )


def _require_free(api: ServerApi, state: LabState) -> None:
    """Every node name and UUID is free in metalcast, every BMC port on loopback."""
    for node in state.nodes:
        for ident in (node.name, node.machine_uuid):
            taken = api.find_node(ident)
            if taken is not None:
                raise LabError(
                    f"metalcast at {api.url} has a node {ident} already "
                    f"({taken.get('uuid')}, {taken.get('provision_state')}): delete it first"
                )
        _require_free_port(state.bmc_address, node.bmc_port)
    if state.redfish_port is not None:
        _require_free_port(state.bmc_address, state.redfish_port, kind=socket.SOCK_STREAM)


def _require_free_port(address: str, port: int, *, kind: int = socket.SOCK_DGRAM) -> None:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            protocol = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            raise LabError(
                f"{protocol} port {port} on {address} is taken ({exc.strerror}): "
                "choose other BMC ports with --base-port"
            ) from exc


def _build(
    state: LabState, api: ServerApi, *, extra: dict[str, str], progress: Progress
) -> LabState:
    taps = f"{state.nodes[0].tap}…{state.nodes[-1].tap}"
    network = state.lab_network
    progress(
        f"creating network namespace {state.netns}: bridge {network.bridge} "
        f"({', '.join(network.cidrs)}), taps {taps}"
    )
    network.create(len(state.nodes), nics=2)
    sizes = " and ".join(f"{size} GiB" for size in state.nodes[0].disk_sizes_gb)
    progress(f"creating empty disks (qcow2) of {sizes} for each of {len(state.nodes)} machines")
    run_dir(state.lab_dir).mkdir(parents=True, exist_ok=True)
    for node in state.nodes:
        for path, size in zip(node.disks, node.disk_sizes_gb, strict=True):
            create_disk(path, size_gb=size)
    ports = f"{state.nodes[0].bmc_port}-{state.nodes[-1].bmc_port}"
    redfish = f", Redfish on TCP {state.redfish_port}" if state.redfish_port else ""
    progress(f"starting the lab daemon: IPMI BMCs on {state.bmc_address} UDP {ports}{redfish}")
    state = state.model_copy(update={"pid": start_daemon(state.lab_dir)})
    write_state(state)
    for node in state.enrolled_nodes:
        progress(
            f"enrolling {node.name} in metalcast at {api.url} "
            f"({hardware_type(state)}, port {node.mac})"
        )
        # recorded first: the UUID was checked free, so lab down may delete it
        state = state.with_node(node.model_copy(update={"node_uuid": node.machine_uuid}))
        write_state(state)
        api.enrol(state, node, extra=extra)
    return state


def create_disk(path: Path, *, size_gb: int) -> None:
    """An empty qcow2 disk of ``size_gb`` GiB at ``path`` (replacing any).

    Raises:
        LabError: ``qemu-img`` failed.
    """
    path.unlink(missing_ok=True)
    command = ["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_gb}G"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise LabError(f"cannot create disk {path}: {done.stderr.strip()}")


# -- lab down --------------------------------------------------------------------------


@dataclass(slots=True)
class Teardown:
    """What ``lab down`` did."""

    deleted: list[str] = field(default_factory=list)
    #: nodes that were gone from metalcast already
    gone: list[str] = field(default_factory=list)
    #: nodes left enrolled because metalcast did not answer
    unreachable: list[str] = field(default_factory=list)
    daemon_pid: int | None = None
    strays: list[int] = field(default_factory=list)
    netns_deleted: bool = False
    kept: list[Path] = field(default_factory=list)


def tear_down(
    lab_dir: Path,
    *,
    api_url: str | None = None,
    api_auth: httpx.Auth | None = None,
    cacert: Path | None = None,
    purge: bool = False,
    progress: Progress = _silent,
) -> Teardown | None:
    """Remove the lab in ``lab_dir`` (nodes through ``api_url``, default: the URL it
    was enrolled through, verified with ``cacert`` if https); None if there is no lab
    there.

    Raises:
        LabError: not root, or metalcast refused to delete a node (everything else
            is removed; ``lab.json`` stays so that ``lab down`` can try again).
        NetnsError: the namespace could not be deleted.
        TlsError: ``cacert`` cannot be read (checked before anything is removed).
    """
    state = read_state(lab_dir)
    if state is None:
        return None
    _require_root("lab down", "delete network namespaces")
    report = Teardown()
    api = ServerApi(api_url or state.api_url, auth=api_auth, cacert=cacert)
    refused = _unenrol(state, api, report, progress)
    progress("stopping the lab daemon (it powers the machines off)")
    report.daemon_pid = stop_daemon(state)
    report.strays = _kill_strays(state)
    network = LabNetwork(state.netns)
    report.netns_deleted = network.exists()
    progress(f"deleting network namespace {state.netns} (its bridge and taps go with it)")
    network.delete()
    report.kept = _remove_files(state, purge=purge, keep_state=refused is not None)
    if refused is not None:
        raise refused
    return report


def _unenrol(
    state: LabState, api: ServerApi, report: Teardown, progress: Progress
) -> LabError | None:
    """Delete the lab's nodes; the error that stopped it, if metalcast refused one."""
    enrolled = {node.name: node.node_uuid for node in state.nodes if node.node_uuid}
    if not enrolled:
        api.close()
        return None
    progress(f"deleting {len(enrolled)} node(s) from metalcast at {api.url}")
    try:
        for name, uuid in enrolled.items():
            deleted = api.delete_node(uuid)
            (report.deleted if deleted else report.gone).append(name)
    except ServerUnreachable:
        done = report.deleted + report.gone
        report.unreachable = [name for name in enrolled if name not in done]
    except LabError as exc:
        return LabError(f"lab down could not delete a node: {exc.message}")
    finally:
        api.close()
    return None


def _kill_strays(state: LabState) -> list[int]:
    """Kill the QEMUs a dead daemon left behind (found by their pid files)."""
    killed = []
    for node in state.nodes:
        pid = read_pid_file(node.pid_file)
        needles = (QEMU_BINARY, str(node.disk))
        if pid is not None and terminate(pid, needles=needles, timeout=STRAY_TIMEOUT):
            killed.append(pid)
    return killed


def _remove_files(state: LabState, *, purge: bool, keep_state: bool) -> list[Path]:
    """Remove the lab's files; the logs kept."""
    logs = [state.lab_dir / DAEMON_LOG_FILE]
    for node in state.nodes:
        logs += [node.serial_log, node.qemu_log]
        files = (*node.disks, machine_spec(node).nvram_file, node.qmp_socket, node.pid_file)
        for path in files:
            path.unlink(missing_ok=True)
    for directory in {node.qmp_socket.parent for node in state.nodes}:
        with contextlib.suppress(OSError):
            directory.rmdir()
    if purge:
        for path in logs:
            path.unlink(missing_ok=True)
    if not keep_state:
        remove_state(state.lab_dir)
        with contextlib.suppress(OSError):
            state.lab_dir.rmdir()  # only if nothing else (images, logs) is in it
    return [path for path in logs if path.exists()]


# -- lab status -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineStatus:
    node: LabNode
    #: the running QEMU's PID; None: the machine is off
    qemu_pid: int | None


@dataclass(frozen=True, slots=True)
class LabStatus:
    state: LabState
    daemon_pid: int | None
    netns_exists: bool
    machines: tuple[MachineStatus, ...]


def lab_status(lab_dir: Path) -> LabStatus | None:
    """How the lab in ``lab_dir`` is doing; None if there is none."""
    state = read_state(lab_dir)
    if state is None:
        return None
    machines = []
    for node in state.nodes:
        pid = read_pid_file(node.pid_file)
        alive = pid is not None and process_matches(pid, (QEMU_BINARY, str(node.disk)))
        machines.append(MachineStatus(node, pid if alive else None))
    return LabStatus(
        state=state,
        daemon_pid=daemon_pid(state),
        netns_exists=LabNetwork(state.netns).exists(),
        machines=tuple(machines),
    )
