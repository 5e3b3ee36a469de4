"""IPMI power and management: the ``ipmitool`` implementations, spoken through pyghmi.

The implementation name is Ironic's (``ipmitool``) so that nodes and clients that
name it keep working; no ``ipmitool`` process is run.  Both interfaces share one
:class:`~metalcast.drivers.ipmi.client.IpmiSessions` when built by
:func:`metalcast.drivers.ipmi.hardware.ipmi_factories`.

Errors::

    MissingDriverInfo      driver_info lacks ipmi_address or holds a bad value
    InvalidInput           unsupported boot device
    RetryableDriverError   no answer in time, BMC busy (after bounded retries)
    FatalDriverError       credentials rejected, command refused, power change not
                           confirmed within the timeout
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from metalcast.drivers.base import DriverContext, ManagementInterface, PowerInterface
from metalcast.drivers.bmc_call import Sleep
from metalcast.drivers.capabilities import BootMode, boot_mode_of
from metalcast.drivers.ipmi.client import (
    BootFlags,
    ChassisCommand,
    IpmiClient,
    IpmiSessions,
    IpmiTarget,
    SensorReading,
)
from metalcast.drivers.ipmi.info import IpmiInfo
from metalcast.drivers.power_sequence import (
    OPERATION_NAMES,
    Confirmation,
    PowerCommand,
    carry_out,
)
from metalcast.errors import InvalidInput
from metalcast.states import PowerState, PowerTarget

T = TypeVar("T")

BOOT_DEVICES: tuple[str, ...] = ("pxe", "disk", "cdrom", "bios", "safe")

_CHASSIS: dict[PowerCommand, ChassisCommand] = {
    PowerCommand.ON: ChassisCommand.ON,
    PowerCommand.OFF: ChassisCommand.OFF,
    PowerCommand.SOFT_OFF: ChassisCommand.SOFT_OFF,
}


class _IpmiBase:
    info_model: ClassVar[type[BaseModel]] = IpmiInfo

    def __init__(self, sessions: IpmiSessions | None = None) -> None:
        self._sessions = sessions or IpmiSessions()

    def _call(
        self,
        ctx: DriverContext,
        operation: str,
        action: Callable[[IpmiClient], T],
        *,
        repeatable: bool = True,
    ) -> T:
        target = IpmiTarget.from_info(ctx.info(IpmiInfo))
        return self._sessions.call(target, operation, action, repeatable=repeatable)


class _PowerControl:
    """One node's power over IPMI, for :func:`~metalcast.drivers.power_sequence.carry_out`."""

    def __init__(self, sessions: IpmiSessions, target: IpmiTarget, operation: str) -> None:
        self._sessions = sessions
        self._target = target
        self._operation = operation

    def read(self) -> PowerState:
        is_on = self._sessions.call(
            self._target, self._operation, lambda c: c.power_is_on(), repeatable=True
        )
        return PowerState.ON if is_on else PowerState.OFF

    def send(self, command: PowerCommand) -> None:
        # on, off and soft off are idempotent: safe to repeat after a lost answer
        directive = _CHASSIS[command]
        self._sessions.call(
            self._target, self._operation, lambda c: c.chassis(directive), repeatable=True
        )


class IPMIPower(_IpmiBase, PowerInterface):
    """Power over IPMI; every change is confirmed by reading the power state back."""

    name = "ipmitool"

    def __init__(
        self,
        sessions: IpmiSessions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(sessions)
        self._clock = clock
        self._sleep = sleep

    def get_power_state(self, ctx: DriverContext) -> PowerState:
        """The BMC's chassis power state.  Raises DriverError."""
        is_on = self._call(ctx, "get power state", lambda c: c.power_is_on())
        return PowerState.ON if is_on else PowerState.OFF

    def set_power_state(self, ctx: DriverContext, target: PowerTarget, timeout: float) -> None:
        """Reach ``target``, each step confirmed within ``timeout`` seconds.

        Raises:
            FatalDriverError: refused, or the state was not reached in time.
            RetryableDriverError: the BMC did not answer.
        """
        bmc = IpmiTarget.from_info(ctx.info(IpmiInfo))
        control = _PowerControl(self._sessions, bmc, OPERATION_NAMES[target])
        confirm = Confirmation(
            timeout=timeout,
            poll_interval=self._sessions.policy.poll_interval,
            clock=self._clock,
            sleep=self._sleep,
        )
        carry_out(control, target, bmc=bmc.ref, confirm=confirm)

    def get_supported_power_states(self, ctx: DriverContext) -> list[PowerTarget]:
        return list(PowerTarget)


class IPMIManagement(_IpmiBase, ManagementInterface):
    """Boot device, NMI and sensors over IPMI."""

    name = "ipmitool"

    def get_supported_boot_devices(self, ctx: DriverContext) -> list[str]:
        return list(BOOT_DEVICES)

    def set_boot_device(self, ctx: DriverContext, device: str, *, persistent: bool) -> None:
        """Boot ``device`` next (or always), in the node's boot mode (UEFI by default).

        Raises:
            InvalidInput: ``device`` is not one of :data:`BOOT_DEVICES`.
            DriverError: the BMC failed.
        """
        if device not in BOOT_DEVICES:
            raise InvalidInput(
                f"Invalid boot device {device!r}; supported: {', '.join(BOOT_DEVICES)}"
            )
        uefi = boot_mode_of(ctx.node) is BootMode.UEFI
        flags = BootFlags(device=device, persistent=persistent, uefi=uefi)
        self._call(ctx, "set boot device", lambda c: c.set_boot_flags(flags))

    def get_boot_device(self, ctx: DriverContext) -> tuple[str | None, bool | None]:
        """The boot device override, or (None, None) when none is set.  Raises DriverError."""
        flags = self._call(ctx, "get boot device", lambda c: c.boot_flags())
        if flags.device is None:
            return None, None
        return flags.device, flags.persistent

    def inject_nmi(self, ctx: DriverContext) -> None:
        """Send a diagnostic interrupt, once (an NMI is not safe to repeat).

        Raises DriverError.
        """
        self._call(ctx, "inject nmi", lambda c: c.chassis(ChassisCommand.NMI), repeatable=False)

    def get_sensors_data(self, ctx: DriverContext) -> dict[str, Any]:
        """Sensor readings by type then name, in Ironic's layout.  Raises DriverError."""
        readings = self._call(ctx, "get sensors", lambda c: c.sensors())
        return sensors_by_type(readings)


def sensors_by_type(readings: list[SensorReading]) -> dict[str, Any]:
    """``{type: {name: {"Sensor ID", "Sensor Reading", "Health", "States"}}}``."""
    found: dict[str, dict[str, Any]] = {}
    for r in readings:
        shown = "unavailable" if r.value is None else f"{r.value:g} {r.unit}".strip()
        found.setdefault(r.kind or "Unknown", {})[r.name] = {
            "Sensor ID": r.name,
            "Sensor Reading": shown,
            "Health": r.health,
            "States": list(r.states),
        }
    return found
