"""Clean and service steps: choosing them, checking requested ones, running them.

A node's step list lives in ``driver_internal_info["<kind>_steps"]`` with the index of
the last step started in ``"<kind>_step_index"``, so that a step that waits for the
agent can be resumed where it stopped; :func:`staged` reads them as one
:class:`StagedSteps`, and only this module writes them (and the node task, which
drops them when an operation fails).  While a step runs, the node's ``clean_step``
(or ``service_step``) field shows it, as Ironic's does.  What a step reports it
changed (a :class:`~metalcast.drivers.base.StepOutcome`, e.g. the RAID configuration it
applied) is recorded as soon as it returns.

Errors::

    InvalidInput     (400) a requested step does not exist for the node's interfaces
    OperationFailed  a step failed
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metalcast.conductor import direct, raid
from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.db.models import Node
from metalcast.drivers.base import (
    INTERFACE_CLASSES,
    StepOutcome,
    StepResult,
    StepSpec,
)
from metalcast.errors import InvalidInput
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.states import Event

#: the reserved step that stops an operation in its hold state until the operator's
#: ``unhold`` (Ironic's, API 1.85); any interface may name it, it takes no arguments
HOLD_STEP = "hold"


class Ran(enum.Enum):
    """How :func:`run` left the staged steps."""

    DONE = "done"  #: all ran
    WAIT = "wait"  #: one waits for the agent or the BMC
    HELD = "held"  #: a hold step: the node is in its hold state


#: the node field that shows the running step, per kind of step
STEP_FIELD: Mapping[str, str] = {
    "clean": "clean_step",
    "service": "service_step",
    "deploy": "deploy_step",
}


@dataclass(frozen=True, slots=True)
class StagedSteps:
    """The steps an operation of one kind runs, and the index of the last started."""

    steps: tuple[dict[str, Any], ...] = ()
    index: int = -1

    @property
    def started(self) -> bool:
        """Whether a step was started."""
        return self.index >= 0


def staged(info: Mapping[str, Any], *, kind: str) -> StagedSteps:
    """The ``kind`` steps staged in ``info`` (a node's ``driver_internal_info``)."""
    listed = info.get(f"{kind}_steps")
    index = info.get(f"{kind}_step_index")
    return StagedSteps(
        steps=tuple(s for s in listed if isinstance(s, dict)) if isinstance(listed, list) else (),
        index=index if isinstance(index, int) and not isinstance(index, bool) else -1,
    )


def _store(task: NodeTask, *, kind: str, steps: StagedSteps | None) -> None:
    """Write (or with ``None`` remove) the ``kind`` steps (saved with the next save)."""
    if steps is None:
        task.set_internal(**{f"{kind}_steps": None, f"{kind}_step_index": None})
    else:
        task.set_internal(**{f"{kind}_steps": list(steps.steps), f"{kind}_step_index": steps.index})


def node_interfaces(node: Node) -> dict[str, str]:
    """The node's implementation of every interface it has one for."""
    out: dict[str, str] = {}
    for name in INTERFACE_NAMES:
        impl = node.interface(name)
        if impl:
            out[name] = impl
    return out


def as_dict(spec: StepSpec, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A step as stored on the node and shown by the API."""
    return {
        "interface": spec.interface,
        "step": spec.name,
        "priority": spec.priority,
        "abortable": spec.abortable,
        "args": dict(args or {}),
    }


def available(rt: Runtime, node: Node, *, kind: str) -> list[StepSpec]:
    """Every ``kind`` step of the node's interfaces, highest priority first.

    Raises:
        InvalidInput: the node's driver or an interface is unknown.
    """
    return rt.registry.steps(node.driver, node_interfaces(node), kind)


def automated(rt: Runtime, node: Node, *, kind: str = "clean") -> list[dict[str, Any]]:
    """The steps automated ``kind`` runs: priority above 0, highest first."""
    return [as_dict(s) for s in available(rt, node, kind=kind) if s.priority > 0]


def requested(
    rt: Runtime, node: Node, *, steps: list[dict[str, Any]] | None, kind: str
) -> list[dict[str, Any]]:
    """Check the steps an operator asked for, in the order asked.

    Raises:
        InvalidInput: no steps, a malformed step, or one the node's interfaces lack.
    """
    if not steps:
        raise InvalidInput(f"A non-empty list of {kind}_steps is required for {kind}ing.")
    known = {(s.interface, s.name): s for s in available(rt, node, kind=kind)}
    out: list[dict[str, Any]] = []
    for item in steps:
        iface, name, args = item.get("interface"), item.get("step"), item.get("args") or {}
        if not isinstance(iface, str) or not isinstance(name, str) or not isinstance(args, dict):
            # the step is not echoed: its args may hold secrets
            raise InvalidInput(
                f"Invalid {kind} step number {len(out) + 1}: expected "
                '{"interface": <name>, "step": <name>, "args": {...}}.'
            )
        if name == HOLD_STEP and kind in ("clean", "service"):
            out.append(_hold(iface, args, number=len(out) + 1, kind=kind))
            continue
        spec = known.get((iface, name))
        if spec is None:
            names = ", ".join(sorted(f"{i}.{n}" for i, n in known)) or "none"
            raise InvalidInput(
                f"Node {node.uuid} has no {kind} step '{iface}.{name}' for its interfaces. "
                f"Available {kind} steps: {names}."
            )
        # the args stay sealed while staged; the driver gets them in clear
        out.append(as_dict(spec, rt.secret_box.seal(args)))
    return out


#: kind -> the driver_internal_info key set while its steps run without the ramdisk
NO_RAMDISK = {"clean": "cleaning_disable_ramdisk", "service": "service_disable_ramdisk"}


def check_without_ramdisk(task: NodeTask, planned: list[dict[str, Any]], *, kind: str) -> None:
    """Raises InvalidInput: a planned step runs in the ramdisk agent, which
    ``disable_ramdisk`` turns off."""
    specs = {(s.interface, s.name): s for s in available(task.rt, task.node, kind=kind)}
    needing = [
        f"{item['interface']}.{item['step']}"
        for item in planned
        if specs[(str(item["interface"]), str(item["step"]))].requires_ramdisk
    ]
    if needing:
        raise InvalidInput(
            f"{kind.capitalize()} step(s) {', '.join(needing)} of node {task.uuid} run in the "
            f"ramdisk agent, which disable_ramdisk turns off; {kind} without disable_ramdisk, "
            "or ask only for steps that run without the ramdisk."
        )


def _hold(iface: str, args: Mapping[str, Any], *, number: int, kind: str) -> dict[str, Any]:
    """The reserved hold step as staged.  Raises InvalidInput."""
    if iface not in INTERFACE_NAMES or args:
        raise InvalidInput(
            f"Invalid {kind} step number {number}: the reserved step 'hold' takes no "
            f"arguments and an interface among {', '.join(INTERFACE_NAMES)}."
        )
    return {"interface": iface, "step": HOLD_STEP, "priority": 0, "abortable": True, "args": {}}


def stage(task: NodeTask, steps: list[dict[str, Any]], *, kind: str) -> None:
    """Record the steps the task will run (saved with the next save)."""
    _store(task, kind=kind, steps=StagedSteps(tuple(steps)))


def run(task: NodeTask, *, kind: str) -> Ran:
    """Run the staged steps after the last one started; WAIT when one waits, HELD
    when a hold step moved the node to its hold state.

    Raises:
        OperationFailed: a step failed.
    """
    planned = staged(task.node.driver_internal_info, kind=kind)
    field = STEP_FIELD[kind]
    for index in range(planned.index + 1, len(planned.steps)):
        step = planned.steps[index]
        task.update(**{field: step})
        _store(task, kind=kind, steps=StagedSteps(planned.steps, index))
        task.save()
        if step["step"] == HOLD_STEP:
            task.process_event(Event.HOLD)
            return Ran.HELD
        cls = INTERFACE_CLASSES[step["interface"]]
        name = str(step["step"])
        outcome = call(
            task,
            cls,
            f"run {kind} step '{name}'",
            lambda i, ctx, name=name: i.perform_step(ctx, name),  # type: ignore[misc]
            args=step.get("args") or {},
        )
        _apply(task, outcome)
        no_ramdisk = NO_RAMDISK.get(kind)
        if outcome.agent is not None and no_ramdisk in task.node.driver_internal_info:
            raise OperationFailed(
                cls.interface_type,
                task.node.interface(cls.interface_type),
                f"run {kind} step '{name}'",
                "the step needs the ramdisk agent, which disable_ramdisk turned off",
            )
        if outcome.agent is not None:
            direct.hand_over(task, outcome.agent)
        if outcome.result == StepResult.WAIT:
            return Ran.WAIT
    finish(task, kind=kind)
    return Ran.DONE


def _apply(task: NodeTask, outcome: StepOutcome) -> None:
    """Record what a step reports it changed on the node."""
    if outcome.raid_config is not None:
        raid.record_applied(task, outcome.raid_config)


def finish(task: NodeTask, *, kind: str) -> None:
    """Forget the step list and the running step (saved with the next save)."""
    task.update(**{STEP_FIELD[kind]: None})
    _store(task, kind=kind, steps=None)
