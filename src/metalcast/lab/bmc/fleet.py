"""Many virtual BMCs in one process: for tests, the lab CLI and the power-sync benchmark.

A :class:`Fleet` serves a list of machines over IPMI (one UDP port per machine,
consecutive from a base port, all answered by pyghmi's single event loop; on one
address, or one address each as BMCs have on a real network) and/or Redfish (every
machine a ComputerSystem behind one HTTP port, or one port each).

    layout = Layout(ipmi_base_port=6230, redfish_port=8000)
    with Fleet(simulated_machines(1000), ipmi=True, redfish=True, layout=layout) as fleet:
        for bmc in fleet.bmcs: ...

Errors::

    OSError       a port is taken
    RuntimeError  a Redfish server did not start
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from metalcast.drivers.ipmi.eventloop import wake_io_thread
from metalcast.lab.bmc.ipmi import DETACH_GRACE, IpmiBmc
from metalcast.lab.bmc.redfish import RedfishBmc
from metalcast.lab.bmc.sol import SerialSource
from metalcast.lab.machine import Machine, SimulatedMachine


@dataclass(frozen=True, slots=True)
class ServedBmc:
    """One BMC the fleet serves, and how a driver reaches it."""

    machine: Machine
    protocol: str  # "ipmi" or "redfish"
    address: str
    port: int
    system_id: str | None = None  # the Redfish ComputerSystem path

    def driver_info(self, *, username: str, password: str) -> dict[str, object]:
        """The node ``driver_info`` that reaches this BMC (Ironic's keys)."""
        if self.protocol == "ipmi":
            return {
                "ipmi_address": self.address,
                "ipmi_port": self.port,
                "ipmi_username": username,
                "ipmi_password": password,
            }
        return {
            "redfish_address": f"http://{self.address}:{self.port}",
            "redfish_system_id": self.system_id,
            "redfish_username": username,
            "redfish_password": password,
        }


def simulated_machines(
    count: int, *, prefix: str = "node", power_latency: float = 0.0
) -> list[SimulatedMachine]:
    """``count`` simulated machines named ``prefix-0`` … ``prefix-(count-1)``."""
    return [SimulatedMachine(f"{prefix}-{i}", power_latency=power_latency) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a fleet listens; a port of 0 means "any free port" (one each)."""

    address: str = "127.0.0.1"
    #: UDP port of the first IPMI BMC; the others follow consecutively
    ipmi_base_port: int = 0
    #: IPMI BMC i listens on ``address`` + i (127.0.0.1, 127.0.0.2, …), not all on
    #: ``address``: clients that pace their commands per BMC address (Ironic's
    #: ``[ipmi]min_command_interval``) then see a thousand BMCs, not one
    ipmi_address_per_machine: bool = False
    #: TCP port of the Redfish service (the first, with one port per machine)
    redfish_port: int = 0
    redfish_port_per_machine: bool = False


class Fleet:
    """Virtual BMCs for ``machines``, over IPMI and/or Redfish."""

    def __init__(
        self,
        machines: Sequence[Machine],
        *,
        ipmi: bool = True,
        redfish: bool = False,
        username: str = "admin",
        password: str = "password",
        layout: Layout | None = None,
        serials: Mapping[str, SerialSource] | None = None,
        media_dir: Path | None = None,
    ) -> None:
        """``serials``: the serial ports of machines by name, served over IPMI SOL;
        ``media_dir``: where the Redfish BMCs keep virtual media (None: a temporary
        directory each)."""
        self.machines = list(machines)
        self.media_dir = media_dir
        self.serials = dict(serials or {})
        self.username = username
        self.password = password
        self.layout = layout or Layout()
        self._wanted = (ipmi, redfish)
        self._ipmi: list[IpmiBmc] = []
        self._redfish: list[RedfishBmc] = []
        self.bmcs: list[ServedBmc] = []

    def start(self) -> None:
        """Open every port and start answering.

        Raises:
            OSError: a port is taken.  RuntimeError: a Redfish server did not start.
        """
        try:
            if self._wanted[0]:
                self._start_ipmi()
            if self._wanted[1]:
                self._start_redfish()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every port."""
        for ipmi in self._ipmi:
            ipmi.stop_sol()
            ipmi.detach()
        if self._ipmi:
            wake_io_thread()
            time.sleep(DETACH_GRACE)
        for ipmi in self._ipmi:
            with contextlib.suppress(OSError):
                ipmi.serversocket.close()
        for redfish in self._redfish:
            redfish.stop()
        self._ipmi, self._redfish, self.bmcs = [], [], []

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_ipmi(self) -> None:
        layout = self.layout
        for i, machine in enumerate(self.machines):
            base = layout.ipmi_base_port
            address = (
                str(ipaddress.ip_address(layout.address) + i)
                if layout.ipmi_address_per_machine
                else layout.address
            )
            bmc = IpmiBmc(
                machine,
                username=self.username,
                password=self.password,
                port=base + i if base else 0,
                address=address,
                serial=self.serials.get(machine.name),
            )
            self._ipmi.append(bmc)
            self.bmcs.append(ServedBmc(machine, "ipmi", address, bmc.port))

    def _start_redfish(self) -> None:
        layout = self.layout
        groups = (
            [[m] for m in self.machines] if layout.redfish_port_per_machine else [self.machines]
        )
        for i, group in enumerate(groups):
            server = RedfishBmc(
                group,
                username=self.username,
                password=self.password,
                port=layout.redfish_port + i if layout.redfish_port else 0,
                address=layout.address,
                media_dir=self.media_dir,
            )
            server.start()
            self._redfish.append(server)
            for machine in group:
                self.bmcs.append(
                    ServedBmc(
                        machine,
                        "redfish",
                        layout.address,
                        server.port,
                        system_id=server.system_path(machine),
                    )
                )
