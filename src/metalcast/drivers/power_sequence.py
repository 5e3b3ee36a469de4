"""Power targets as sequences of BMC commands, each confirmed by reading the state back.

A BMC that answers "OK" to a power command has only promised to act.  Each step
here sends one command (unless the node is already where the step leads) and then
polls the power state until it matches or the timeout passes.  A reboot is a hard
power off and a power on, so that both halves can be confirmed; a soft reboot is an
ACPI shutdown followed by a power on.

Errors::

    FatalDriverError       the BMC accepted the command but the node never got there
    RetryableDriverError   every read while confirming failed transiently
    DriverError            whatever the protocol's ``send``/``read`` raised
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from metalcast.drivers.bmc_call import BmcRef, Sleep, bmc_error
from metalcast.errors import RetryableDriverError
from metalcast.states import PowerState, PowerTarget


class PowerCommand(enum.StrEnum):
    ON = "on"
    OFF = "off"  # immediate
    SOFT_OFF = "soft off"  # ACPI shutdown request to the OS


class PowerControl(Protocol):
    """One node's power, as a protocol driver reaches it."""

    def read(self) -> PowerState:
        """The power state now.  Raises DriverError."""

    def send(self, command: PowerCommand) -> None:
        """Send ``command`` once.  Raises DriverError."""


@dataclass(frozen=True, slots=True)
class Step:
    command: PowerCommand
    reaches: PowerState


_ON = Step(PowerCommand.ON, PowerState.ON)
_OFF = Step(PowerCommand.OFF, PowerState.OFF)
_SOFT_OFF = Step(PowerCommand.SOFT_OFF, PowerState.OFF)

PLANS: Mapping[PowerTarget, tuple[Step, ...]] = MappingProxyType(
    {
        PowerTarget.ON: (_ON,),
        PowerTarget.OFF: (_OFF,),
        PowerTarget.REBOOT: (_OFF, _ON),
        PowerTarget.SOFT_OFF: (_SOFT_OFF,),
        PowerTarget.SOFT_REBOOT: (_SOFT_OFF, _ON),
    }
)

#: how errors name each target's operation
OPERATION_NAMES: Mapping[PowerTarget, str] = MappingProxyType(
    {
        PowerTarget.ON: "power on",
        PowerTarget.OFF: "power off",
        PowerTarget.REBOOT: "reboot",
        PowerTarget.SOFT_OFF: "soft power off",
        PowerTarget.SOFT_REBOOT: "soft reboot",
    }
)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """How to wait for a power change: the timeout per step, and the poll cadence."""

    timeout: float
    poll_interval: float
    clock: Callable[[], float] = time.monotonic
    sleep: Sleep = time.sleep


def carry_out(
    control: PowerControl, target: PowerTarget, *, bmc: BmcRef, confirm: Confirmation
) -> None:
    """Bring the node to ``target``, confirming every step by reading the state back.

    Raises:
        FatalDriverError: a step's state was not reached within ``confirm.timeout``.
        DriverError: sending a command or reading the state failed.
    """
    operation = OPERATION_NAMES[target]
    for step in PLANS[target]:
        if control.read() == step.reaches:
            continue
        control.send(step.command)
        _await(control, step, bmc=bmc, operation=operation, confirm=confirm)


def _await(
    control: PowerControl, step: Step, *, bmc: BmcRef, operation: str, confirm: Confirmation
) -> None:
    deadline = confirm.clock() + confirm.timeout
    last: PowerState | None = None
    failure: RetryableDriverError | None = None
    while True:
        try:
            last = control.read()
            failure = None
        except RetryableDriverError as exc:
            # BMCs often stop answering for a moment while the node changes state.
            failure = exc
        if last == step.reaches and failure is None:
            return
        if confirm.clock() >= deadline:
            break
        confirm.sleep(confirm.poll_interval)
    if failure is not None:
        raise failure
    raise bmc_error(
        bmc,
        operation,
        f"the BMC accepted '{step.command.value}' but the node did not reach "
        f"'{step.reaches.value}' within {confirm.timeout:g} s (it is '{last}')",
        retryable=False,
    )
