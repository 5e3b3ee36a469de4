"""``metalcast lab``: the virtual lab.

``metalcast lab up --nodes N`` creates network namespace ``metalcast-lab`` with the
provisioning bridge ``mcbr0`` (192.168.77.1/24, fd77::1/64), N QEMU machines (TCG)
with empty disks behind virtual IPMI BMCs on loopback (a detached daemon, ``lab
serve``), and enrols them in the metalcast server at ``--url``; that server's boot
services start inside the namespace by themselves.  ``metalcast lab down`` removes
all of it; ``metalcast lab status`` shows it.  ``--network N`` makes lab network N
instead (namespace ``metalcast-labN``, bridge ``mcbr<N-1>``, 192.168.<76+N>.0/24,
machines ``labN-0``…, lab directory ``<state_dir>/labN``), for a conductor group
(``--conductor-group``) whose conductors run with the boot settings it prints.
``metalcast lab image build`` builds the bootable test disk to deploy onto the
machines.

``metalcast lab bmc`` serves virtual BMCs for simulated machines on loopback, until
Ctrl-C or SIGTERM: IPMI (one UDP port per machine, from ``--base-port``; with
``--ipmi-address-per-machine`` also one address each, from ``--address``) and/or
Redfish (every machine a ComputerSystem behind ``--redfish-port``, or with
``--redfish-port-per-machine`` one port each).  Drive them with
``ipmitool -I lanplus``, any Redfish client, or metalcast nodes whose
``driver_info`` the table shows.  ``--control-port`` adds an HTTP endpoint on
127.0.0.1 that reads and toggles every machine's power out of band
(:mod:`metalcast.lab.bmc.control`).
"""

from __future__ import annotations

import enum
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from metalcast.cli.output import print_error, print_json, print_ok, stdout, table
from metalcast.cli.session import session_of

if TYPE_CHECKING:
    from metalcast.lab.bmc.control import PowerControl
    from metalcast.lab.bmc.fleet import Fleet, ServedBmc
    from metalcast.lab.lifecycle import LabStatus, Teardown
    from metalcast.lab.state import LabNode, LabState

app = typer.Typer(help="The virtual lab: QEMU machines and their BMCs.", no_args_is_help=True)
image_app = typer.Typer(help="The lab's bootable test disk image.", no_args_is_help=True)
app.add_typer(image_app, name="image")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
    ),
]
LabDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="The lab's directory (default: <state_dir>/lab, <state_dir>/labN for --network N).",
        show_default=False,
    ),
]
NetworkOpt = Annotated[
    int,
    typer.Option(
        min=1, max=9, help="Which lab network: 1, or another one for a conductor group of its own."
    ),
]


class BmcProtocol(enum.StrEnum):
    IPMI = "ipmi"
    REDFISH = "redfish"


class Accel(enum.StrEnum):
    """QEMU accelerators: TCG everywhere; KVM only where it really works (not on
    nested PVM hosts such as the project's CI machines)."""

    TCG = "tcg"
    KVM = "kvm"


#: the test disk's name, in the first of images.file_roots
TEST_IMAGE = "metalcast-test-disk.raw"


@app.callback()
def lab() -> None:
    """The virtual lab: QEMU machines and their BMCs."""


def _progress(line: str) -> None:
    sys.stderr.write(f"lab: {line}\n")
    sys.stderr.flush()


def _lab_dir(config: Path | None, lab_dir: Path | None, *, network: int = 1) -> Path:
    if lab_dir is not None:
        return lab_dir.absolute()
    from metalcast.config import load_settings

    return load_settings(config).state_dir / ("lab" if network == 1 else f"lab{network}")


# -- lab up / down / status / serve -------------------------------------------------------


@app.command("up")
def up(  # noqa: PLR0913 - one parameter per command-line option
    ctx: typer.Context,
    *,
    nodes: Annotated[int, typer.Option(min=1, max=64, help="How many machines.")] = 2,
    unenrolled: Annotated[
        int,
        typer.Option(
            min=0,
            max=63,
            help="How many more machines to start without enrolling them (for discovery).",
        ),
    ] = 0,
    disk_size: Annotated[
        int, typer.Option(min=1, help="Size of each machine's first (boot) disk, GiB.")
    ] = 2,
    second_disk_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Size of each machine's second disk, GiB (default: one more than the first).",
            show_default=False,
        ),
    ] = None,
    base_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="UDP port of the first IPMI BMC (default: 6230, 6330 on network 2, …).",
            show_default=False,
        ),
    ] = None,
    netns: Annotated[
        str | None,
        typer.Option(
            help="Network namespace to create (default: metalcast-lab, metalcast-lab2, …).",
            show_default=False,
        ),
    ] = None,
    network: NetworkOpt = 1,
    conductor_group: Annotated[
        str | None,
        typer.Option(help="Enrol the machines in this conductor group.", show_default=False),
    ] = None,
    accel: Annotated[
        Accel, typer.Option(help="QEMU accelerator (kvm only where it really works).")
    ] = Accel.TCG,
    uefi: Annotated[
        bool,
        typer.Option(
            "--uefi",
            help="UEFI machines (OVMF) enrolled with boot_mode:uefi (default: BIOS).",
        ),
    ] = False,
    bmc_protocol: Annotated[
        BmcProtocol,
        typer.Option(
            "--bmc",
            help="How metalcast drives the machines: ipmi (network boot through DHCP, "
            "TFTP, iPXE), or redfish (a Redfish BMC; virtual media boot with static "
            "addresses from network_data: no DHCP or TFTP).",
        ),
    ] = BmcProtocol.IPMI,
    lab_dir: LabDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create the lab's network and QEMU machines and enrol them in metalcast (root)."""
    from metalcast.lab.errors import LabAlreadyUp
    from metalcast.lab.lifecycle import LabOptions, bring_up
    from metalcast.lab.machine import BootMode
    from metalcast.lab.network import MAX_MACHINES

    if nodes + unenrolled > MAX_MACHINES:
        print_error(
            f"--nodes {nodes} plus --unenrolled {unenrolled} is more than a lab network's "
            f"{MAX_MACHINES} machines: ask for fewer"
        )
        raise typer.Exit(2)
    options = LabOptions(
        lab_dir=_lab_dir(config, lab_dir, network=network),
        api_url=session_of(ctx).url,
        api_auth=session_of(ctx).auth(),
        cacert=session_of(ctx).cacert,
        nodes=nodes,
        unenrolled=unenrolled,
        disk_size_gb=disk_size,
        second_disk_size_gb=second_disk_size,
        base_port=base_port,
        netns=netns,
        network=network,
        conductor_group=conductor_group,
        accel=accel.value,
        boot_mode=BootMode.UEFI if uefi else BootMode.LEGACY,
        bmc="redfish" if bmc_protocol is BmcProtocol.REDFISH else "ipmi",
    )
    try:
        state = bring_up(options, progress=_progress)
    except LabAlreadyUp as exc:
        print_ok(exc.message)
        return
    if session_of(ctx).as_json:
        print_json(_state_json(state))
        return
    stdout().print(_machines_table(state))
    where = f" --lab-dir {state.lab_dir}" if lab_dir is not None else ""
    stdout().print(_next_steps(state, where=where), soft_wrap=True, highlight=False)


def _enrolment(node: LabNode) -> str | None:
    """The node UUID column: the node, or that the lab did not enrol the machine."""
    return node.node_uuid if node.enrolled else "unenrolled"


def _machines_table(state: LabState) -> object:
    rows = [
        (
            n.name,
            "\n".join(n.macs),
            n.serial,
            f"{state.bmc_address}:{n.bmc_port}",
            _enrolment(n),
            str(n.serial_log),
        )
        for n in state.nodes
    ]
    columns = ("node", "MACs", "serial", "IPMI BMC", "node UUID", "serial log")
    return table(columns, rows, title=f"Lab machines (namespace {state.netns})")


def _next_steps(state: LabState, *, where: str) -> str:
    first = state.nodes[0].name
    url = "" if state.api_url == _default_url() else f" --url {state.api_url}"
    return _boot_settings(state) + (
        f"Enrolled {len(state.enrolled_nodes)} ipmi nodes in metalcast at {state.api_url} "
        f"(BMC user {state.bmc_username}, password in {state.lab_dir / 'lab.json'}).\n"
        "Next:\n"
        f"  metalcast{url} node manage {first} --wait      # IPMI to the QEMU machine\n"
        f"  metalcast{url} node provide {first} --wait     # cleans it: network boot\n"
        "  metalcast lab image build                       # a bootable test disk\n"
        f"  metalcast{url} node set {first} --instance-info image_source=file://IMAGE "
        "--instance-info image_checksum=SHA256\n"
        f"  metalcast{url} node deploy {first} --wait\n"
        f"Console: tail -f {state.nodes[0].serial_log}\n"
        f"Status: metalcast lab status{where}; remove it all: metalcast lab down{where}"
    )


def _boot_settings(state: LabState) -> str:
    if state.network == 1:
        return ""
    env = " ".join(f"{k}={v}" for k, v in state.lab_network.boot_environment().items())
    group = f" (conductor group {state.conductor_group})" if state.conductor_group else ""
    return f"This network's conductors{group} run with:\n  {env}\n"


def _default_url() -> str:
    from metalcast.cli.client import DEFAULT_URL

    return DEFAULT_URL


def _state_json(state: LabState) -> dict[str, object]:
    shown = state.model_dump(mode="json")
    shown["bmc_password"] = "***"
    return shown


@app.command("boot-env")
def boot_env(
    *,
    network: NetworkOpt = 1,
    netns: Annotated[
        str | None,
        typer.Option(help="The network's namespace, if not its default.", show_default=False),
    ] = None,
) -> None:
    """Print the boot settings of lab network N's conductors (KEY=VALUE, for `env`)."""
    from metalcast.lab.network import LabNetwork

    env = LabNetwork.numbered(network, netns=netns).boot_environment()
    sys.stdout.write(" ".join(f"{key}={value}" for key, value in env.items()) + "\n")


@app.command("down")
def down(
    ctx: typer.Context,
    *,
    purge: Annotated[
        bool, typer.Option("--purge", help="Remove the serial consoles and logs too.")
    ] = False,
    network: NetworkOpt = 1,
    lab_dir: LabDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete the lab's nodes, machines, daemon and network namespace (root)."""
    from metalcast.lab.lifecycle import tear_down

    source = ctx.find_root().get_parameter_source("url")
    given = source is not None and source.name != "DEFAULT"  # --url or METALCAST_URL
    directory = _lab_dir(config, lab_dir, network=network)
    report = tear_down(
        directory,
        api_url=session_of(ctx).url if given else None,
        api_auth=session_of(ctx).auth(),
        cacert=session_of(ctx).cacert,
        purge=purge,
        progress=_progress,
    )
    if report is None:
        print_ok(f"no lab is up (nothing in {directory})")
        return
    print_ok(_teardown_summary(report))


def _teardown_summary(report: Teardown) -> str:
    lines = ["lab is down:"]
    if report.deleted or report.gone:
        gone = f" ({', '.join(report.gone)} were gone already)" if report.gone else ""
        lines.append(f"  nodes deleted: {', '.join(report.deleted) or 'none'}{gone}")
    if report.unreachable:
        lines.append(
            f"  metalcast did not answer: {', '.join(report.unreachable)} may still be "
            "enrolled there"
        )
    daemon = f"pid {report.daemon_pid}" if report.daemon_pid else "was not running"
    netns = "deleted" if report.netns_deleted else "was gone already"
    lines.append(f"  daemon stopped ({daemon}); network namespace {netns}")
    if report.strays:
        lines.append(f"  stray QEMU processes killed: {report.strays}")
    if report.kept:
        lines.append(f"  kept logs: {' '.join(str(p) for p in report.kept)}")
    return "\n".join(lines)


@app.command("status")
def status(
    ctx: typer.Context,
    *,
    network: NetworkOpt = 1,
    lab_dir: LabDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the lab: its daemon, namespace and machines."""
    from metalcast.lab.lifecycle import lab_status

    directory = _lab_dir(config, lab_dir, network=network)
    shown = lab_status(directory)
    if shown is None:
        print_ok(f"no lab is up (nothing in {directory})")
        return
    if session_of(ctx).as_json:
        print_json(_status_json(shown))
        return
    stdout().print(_status_table(shown))


def _status_json(shown: LabStatus) -> dict[str, object]:
    return {
        **_state_json(shown.state),
        "daemon_pid": shown.daemon_pid,
        "netns_exists": shown.netns_exists,
        "power": {m.node.name: "on" if m.qemu_pid else "off" for m in shown.machines},
    }


def _status_table(shown: LabStatus) -> object:
    state = shown.state
    daemon = f"daemon pid {shown.daemon_pid}" if shown.daemon_pid else "daemon NOT running"
    netns = "namespace up" if shown.netns_exists else "namespace MISSING"
    rows = [
        (
            m.node.name,
            "on" if m.qemu_pid else "off",
            m.qemu_pid,
            "\n".join(m.node.macs),
            m.node.serial,
            f"{state.bmc_address}:{m.node.bmc_port}",
            _enrolment(m.node),
            str(m.node.serial_log),
        )
        for m in shown.machines
    ]
    columns = (
        "node", "power", "QEMU pid", "MACs", "serial", "IPMI BMC", "node UUID", "serial log"
    )  # fmt: skip
    title = f"Lab in {state.lab_dir}: {daemon}, {state.netns} {netns}, metalcast {state.api_url}"
    return table(columns, rows, title=title)


@app.command("serve", hidden=True)
def serve(
    lab_dir: Annotated[Path, typer.Option(help="The lab's directory.")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """The lab daemon: the QEMU machines and their BMCs, until SIGTERM."""
    from metalcast.lab.daemon import serve as serve_lab
    from metalcast.logs import configure_logging

    configure_logging(level=log_level)
    raise typer.Exit(serve_lab(lab_dir.absolute()))


# -- lab image build -------------------------------------------------------------------


@image_app.callback()
def image() -> None:
    """The lab's bootable test disk image."""


@image_app.command("build")
def image_build(
    *,
    output: Annotated[
        Path | None,
        typer.Option(
            help=f"The raw image (default: {TEST_IMAGE} in the first of images.file_roots, "
            "the directories the server reads local images from).",
            show_default=False,
        ),
    ] = None,
    qcow2: Annotated[bool, typer.Option("--qcow2", help="Also write a qcow2 copy.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Build the bootable test disk (a no-op when nothing changed); print its sha256."""
    from metalcast.config import load_settings
    from metalcast.lab.diskimage import build_test_image, qcow2_variant

    settings = load_settings(config)
    roots = settings.images.file_roots
    if output is None and not roots:
        print_error(
            "The server reads local images only from images.file_roots, and none is set: "
            "set it for the server and here (METALCAST_IMAGES__FILE_ROOTS=/srv/metalcast/"
            "images), or give --output and serve the image over http."
        )
        raise typer.Exit(2)
    raw = (output or roots[0] / TEST_IMAGE).absolute()
    built = build_test_image(
        raw, cache_dir=settings.state_dir / "cache" / "debs", progress=_progress, force=force
    )
    images = [built, qcow2_variant(built)] if qcow2 else [built]
    for path in images:
        print_ok(f"{path}  sha256 {_sha256(path)}")
    stdout().print(
        "Deploy it: metalcast node set NODE "
        f"--instance-info image_source=file://{built} "
        f"--instance-info image_checksum={_sha256(built)}",
        soft_wrap=True,
        highlight=False,
    )


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- lab bmc ------------------------------------------------------------------------------


@app.command("bmc")
def bmc(  # noqa: PLR0913 - one parameter per command-line option
    count: Annotated[int, typer.Option(min=1, help="How many machines to serve.")] = 1,
    ipmi: Annotated[bool, typer.Option("--ipmi/--no-ipmi", help="Serve IPMI (lanplus).")] = True,
    redfish: Annotated[bool, typer.Option("--redfish/--no-redfish", help="Serve Redfish.")] = False,
    base_port: Annotated[
        int, typer.Option(min=1, max=65535, help="UDP port of the first IPMI BMC.")
    ] = 6230,
    redfish_port: Annotated[
        int, typer.Option(min=1, max=65535, help="TCP port of the Redfish service.")
    ] = 8000,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    username: Annotated[str, typer.Option(help="BMC user name.")] = "admin",
    password: Annotated[str, typer.Option(help="BMC password.")] = "password",
    prefix: Annotated[str, typer.Option(help="Machine names: PREFIX-0, PREFIX-1, …")] = "node",
    power_latency: Annotated[
        float, typer.Option(min=0.0, help="Seconds a power change takes to happen.")
    ] = 0.0,
    ipmi_address_per_machine: Annotated[
        bool,
        typer.Option(help="IPMI BMC i listens on ADDRESS + i (127.0.0.1, 127.0.0.2, …)."),
    ] = False,
    redfish_port_per_machine: Annotated[
        bool, typer.Option(help="One Redfish service per machine, on consecutive ports.")
    ] = False,
    control_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="Serve GET /power and POST /power/toggle on 127.0.0.1:PORT (0: don't).",
        ),
    ] = 0,
) -> None:
    """Serve virtual BMCs for COUNT simulated machines until Ctrl-C or SIGTERM."""
    if not (ipmi or redfish):
        print_error("nothing to serve: give --ipmi and/or --redfish")
        raise typer.Exit(2)
    # loaded here, not with the CLI: pyghmi and the Redfish server take a while to import
    from metalcast.lab.bmc.fleet import Fleet, Layout, simulated_machines

    machines = simulated_machines(count, prefix=prefix, power_latency=power_latency)
    layout = Layout(
        address=address,
        ipmi_base_port=base_port,
        redfish_port=redfish_port,
        ipmi_address_per_machine=ipmi_address_per_machine,
        redfish_port_per_machine=redfish_port_per_machine,
    )
    fleet = Fleet(
        machines, ipmi=ipmi, redfish=redfish, username=username, password=password, layout=layout
    )
    control = _start_fleet(fleet, control_port=control_port)
    try:
        stdout().print(_listing(fleet.bmcs, username=username))
        if control is not None:
            stdout().print(f"Power control: GET/POST {control.url}/power, /power/toggle")
        stdout().print(f"Serving {len(fleet.bmcs)} BMCs; Ctrl-C or SIGTERM to stop.")
        _wait_for_stop()
    finally:
        if control is not None:
            control.stop()
        fleet.stop()


def _start_fleet(fleet: Fleet, *, control_port: int) -> PowerControl | None:
    """Open every BMC port, and the power-control endpoint if asked; exit 1 on failure."""
    from metalcast.lab.bmc.control import PowerControl

    control = None
    try:
        fleet.start()
        if control_port:
            control = PowerControl(fleet.machines, port=control_port)
            control.start()
    except (OSError, RuntimeError, ValueError) as exc:
        fleet.stop()
        print_error(f"cannot serve the BMCs: {exc}")
        raise typer.Exit(1) from None
    return control


def _listing(bmcs: list[ServedBmc], *, username: str) -> object:
    rows = [
        (
            b.machine.name,
            b.protocol,
            b.address,
            b.port,
            b.system_id or "-",
            f"{username} / --password",
        )
        for b in bmcs
    ]
    columns = ("machine", "protocol", "address", "port", "system", "credentials")
    return table(columns, rows, title="Virtual BMCs")


def _wait_for_stop() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
