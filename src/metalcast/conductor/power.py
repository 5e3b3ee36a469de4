"""Power actions: the operator's power verbs, and the helpers flows power nodes with.

A power action is asynchronous: ``target_power_state`` is set while it runs and
cleared after; ``power_state`` is recorded once the BMC confirms it.  A failure is
recorded in ``last_error`` and the node's history; the provision state never changes.
Nodes in maintenance may still be powered, as in Ironic.

Errors::

    InvalidInput    (400) unknown power target or bad timeout
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.conductor.workers import describe, start_async
from metalcast.drivers.base import PowerInterface
from metalcast.errors import Conflict, InvalidInput
from metalcast.states import PowerState, PowerTarget

#: the power state each target leaves the node in
RESULT_OF: Mapping[PowerTarget, PowerState] = {
    PowerTarget.ON: PowerState.ON,
    PowerTarget.OFF: PowerState.OFF,
    PowerTarget.REBOOT: PowerState.ON,
    PowerTarget.SOFT_OFF: PowerState.OFF,
    PowerTarget.SOFT_REBOOT: PowerState.ON,
}


def get_power(task: NodeTask) -> PowerState:
    """The power state the BMC reports.  Raises OperationFailed."""
    return call(task, PowerInterface, "get power state", lambda i, ctx: i.get_power_state(ctx))


def set_power(task: NodeTask, target: PowerTarget, *, timeout: float | None = None) -> None:
    """Carry out ``target`` and note the resulting ``power_state`` (saved with the
    task's next save).  Raises OperationFailed."""
    seconds = timeout or task.rt.settings.power_state_change_timeout
    call(
        task,
        PowerInterface,
        f"set power state to '{target.value}'",
        lambda i, ctx: i.set_power_state(ctx, target, seconds),
    )
    task.update(power_state=RESULT_OF[target].value)


def parse_target(target: str, timeout: float | None) -> PowerTarget:
    """The power target named ``target``.

    Raises:
        InvalidInput: unknown target, or a timeout that is not positive.
    """
    try:
        parsed = PowerTarget(target)
    except ValueError:
        allowed = ", ".join(t.value for t in PowerTarget)
        raise InvalidInput(f"Invalid power target '{target}'. Valid targets: {allowed}.") from None
    if timeout is not None and timeout <= 0:
        raise InvalidInput(f"The power state change timeout must be positive, not {timeout}.")
    return parsed


#: the targets a node with ``disable_power_off`` refuses
_OFF_TARGETS = frozenset({PowerTarget.OFF, PowerTarget.SOFT_OFF})


def change_power_state(
    rt: Runtime, node_id: int, *, target: str, timeout: float | None, user: str
) -> None:
    """Start the power action ``target`` on the node (asynchronous).

    Raises:
        InvalidInput: unknown target or bad timeout.
        Conflict: powering off a node with ``disable_power_off``.
        OperationFailed: the power interface refuses the node's ``driver_info``
            (status 400).
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """
    wanted = parse_target(target, timeout)

    def begin(task: NodeTask) -> None:
        # as Ironic (1.95): a node whose power must stay on is not powered off
        if task.node.disable_power_off and wanted in _OFF_TARGETS:
            raise Conflict(f"Failed to set node power state to {wanted.value}.")
        # as Ironic: driver_info the power interface cannot use is the request's
        # 400, not a failure found later in last_error
        call(task, PowerInterface, "validate", lambda i, ctx: i.check_info(ctx))
        task.update(target_power_state=RESULT_OF[wanted].value, last_error=None)
        task.save()

    start_async(
        rt,
        node_id,
        user=user,
        purpose="power " + wanted.value,
        begin=begin,
        work=functools.partial(_power_action, wanted=wanted, timeout=timeout),
        on_error=functools.partial(_record_power_error, wanted=wanted),
    )


def _power_action(task: NodeTask, *, wanted: PowerTarget, timeout: float | None) -> None:
    before = task.node.power_state
    set_power(task, wanted, timeout=timeout)
    confirmed = get_power(task)
    task.update(power_state=confirmed.value, target_power_state=None)
    if confirmed != RESULT_OF[wanted]:
        raise OperationFailed(
            "power",
            task.node.power_interface,
            f"reach '{RESULT_OF[wanted].value}'",
            f"the BMC reports '{confirmed.value}' after '{wanted.value}'",
        )
    task.save(
        event=f"{before} → {confirmed.value} ({wanted.value}) by {task.user}", event_type="power"
    )


def _record_power_error(task: NodeTask, exc: Exception, *, wanted: PowerTarget) -> None:
    message = f"Failed to change power state to '{wanted.value}': {describe(exc)}"
    task.update(target_power_state=None, last_error=message)
    task.save(event=message, event_type="power", severity="ERROR")
