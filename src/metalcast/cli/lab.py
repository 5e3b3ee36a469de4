"""``metalcast lab``: the virtual lab.

``metalcast lab bmc`` serves virtual BMCs for simulated machines on loopback, until
Ctrl-C or SIGTERM: IPMI (one UDP port per machine, from ``--base-port``) and/or
Redfish (every machine a ComputerSystem behind ``--redfish-port``).  Drive them
with ``ipmitool -I lanplus``, any Redfish client, or metalcast nodes whose
``driver_info`` the table shows.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from metalcast.cli.output import print_error, stdout, table

if TYPE_CHECKING:
    from metalcast.lab.bmc.fleet import ServedBmc

app = typer.Typer(help="The virtual lab: simulated machines and their BMCs.", no_args_is_help=True)


@app.callback()
def lab() -> None:
    """The virtual lab: simulated machines and their BMCs."""


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
) -> None:
    """Serve virtual BMCs for COUNT simulated machines until Ctrl-C or SIGTERM."""
    if not (ipmi or redfish):
        print_error("nothing to serve: give --ipmi and/or --redfish")
        raise typer.Exit(2)
    # loaded here, not with the CLI: pyghmi and the Redfish server take a while to import
    from metalcast.lab.bmc.fleet import Fleet, Layout, simulated_machines

    machines = simulated_machines(count, prefix=prefix, power_latency=power_latency)
    fleet = Fleet(
        machines,
        ipmi=ipmi,
        redfish=redfish,
        username=username,
        password=password,
        layout=Layout(address=address, ipmi_base_port=base_port, redfish_port=redfish_port),
    )
    try:
        fleet.start()
    except (OSError, RuntimeError) as exc:
        print_error(f"cannot serve the BMCs: {exc}")
        raise typer.Exit(1) from None
    try:
        stdout().print(_listing(fleet.bmcs, username=username))
        stdout().print(f"Serving {len(fleet.bmcs)} BMCs; Ctrl-C or SIGTERM to stop.")
        _wait_for_stop()
    finally:
        fleet.stop()


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
