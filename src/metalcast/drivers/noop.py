"""No-op implementations, as Ironic names them: an interface a node does not use.

Harmless calls (network and storage attachment, reading BIOS settings or firmware
versions) do nothing; the calls that would need a real implementation raise
:class:`FatalDriverError` telling the operator which ``*_interface`` to set.
``validate`` passes: a node without a console is still a valid node.  Their
``implemented`` is false, so the conductor refuses requests for the feature up front
(enable the console, set a RAID configuration) with a message naming the interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from metalcast.drivers.base import (
    BIOSInterface,
    ConsoleInterface,
    DriverContext,
    FirmwareComponent,
    FirmwareInterface,
    InspectInterface,
    NetworkInterface,
    RAIDInterface,
    RescueInterface,
    StepResult,
    StorageInterface,
    VendorInterface,
)
from metalcast.errors import FatalDriverError


def _unsupported(interface: str, operation: str) -> NoReturn:
    raise FatalDriverError(
        f"No {interface} interface is configured for this node; set {interface}_interface",
        operation=operation,
    )


class NoBIOS(BIOSInterface):
    name = "no-bios"
    implemented = False

    def get_settings(self, ctx: DriverContext) -> dict[str, str]:
        """No settings known."""
        return {}

    def apply_configuration(self, ctx: DriverContext) -> StepResult:
        """Raises FatalDriverError: no BIOS interface."""
        _unsupported("bios", "apply_configuration")


class NoConsole(ConsoleInterface):
    name = "no-console"
    implemented = False

    def start_console(self, ctx: DriverContext) -> None:
        """Raises FatalDriverError: no console interface."""
        _unsupported("console", "start_console")

    def stop_console(self, ctx: DriverContext) -> None:
        """Raises FatalDriverError: no console interface."""
        _unsupported("console", "stop_console")

    def get_console(self, ctx: DriverContext) -> dict[str, Any]:
        """Raises FatalDriverError: no console interface."""
        _unsupported("console", "get_console")


class NoFirmware(FirmwareInterface):
    name = "no-firmware"
    implemented = False

    def get_components(self, ctx: DriverContext) -> list[FirmwareComponent]:
        """No components known."""
        return []


class NoInspect(InspectInterface):
    name = "no-inspect"
    implemented = False

    def inspect_hardware(self, ctx: DriverContext) -> tuple[StepResult, dict[str, Any]]:
        """Raises FatalDriverError: no inspect interface."""
        _unsupported("inspect", "inspect")


class NoRAID(RAIDInterface):
    name = "no-raid"
    implemented = False

    def validate_raid_config(self, config: Mapping[str, Any]) -> None:
        """Raises FatalDriverError: no RAID interface."""
        _unsupported("raid", "validate the RAID configuration")

    def logical_disk_properties(self) -> dict[str, str]:
        """Nothing: there is no RAID to configure."""
        return {}

    def create_configuration(self, ctx: DriverContext) -> StepResult:
        """Raises FatalDriverError: no RAID interface."""
        _unsupported("raid", "create_configuration")

    def delete_configuration(self, ctx: DriverContext) -> StepResult:
        """Raises FatalDriverError: no RAID interface."""
        _unsupported("raid", "delete_configuration")


class NoRescue(RescueInterface):
    name = "no-rescue"
    implemented = False

    def rescue(self, ctx: DriverContext) -> StepResult:
        """Raises FatalDriverError: no rescue interface."""
        _unsupported("rescue", "rescue")

    def unrescue(self, ctx: DriverContext) -> None:
        """Raises FatalDriverError: no rescue interface."""
        _unsupported("rescue", "unrescue")


class NoVendor(VendorInterface):
    name = "no-vendor"
    implemented = False

    def passthru(self, ctx: DriverContext, method: str, args: Mapping[str, Any]) -> Any:
        """Raises FatalDriverError: no vendor interface."""
        _unsupported("vendor", "vendor")


class NoopNetwork(NetworkInterface):
    """No network switching: the node stays on whatever network it is cabled to, and
    VIFs are attached and detached without a trace (no free port needed), as with
    Ironic's noop interface."""

    name = "noop"
    records_vifs = False

    def add_provisioning_network(self, ctx: DriverContext) -> None:
        """Does nothing."""

    def remove_provisioning_network(self, ctx: DriverContext) -> None:
        """Does nothing."""

    def configure_tenant_networks(self, ctx: DriverContext) -> None:
        """Does nothing."""

    def unconfigure_tenant_networks(self, ctx: DriverContext) -> None:
        """Does nothing."""


class NoopStorage(StorageInterface):
    """No remote volumes: the node boots from its local disk."""

    name = "noop"

    def attach_volumes(self, ctx: DriverContext) -> None:
        """Does nothing."""

    def detach_volumes(self, ctx: DriverContext) -> None:
        """Does nothing."""
