"""Clean, service and deploy steps: choosing them, checking requested ones (deploy
steps: :mod:`metalcast.conductor.deploy_steps`), running them.

A node's step list lives in ``driver_internal_info["<kind>_steps"]`` with the index of
the last step started in ``"<kind>_step_index"``, so that a step that waits for the
agent can be resumed where it stopped; :func:`staged` reads them as one
:class:`StagedSteps`, and only this module writes them (and the node task, which
drops them when an operation fails).  While a step runs, the node's ``clean_step``
(``service_step``, ``deploy_step``) field shows it, as Ironic's does; a deploy step
also gets a history row as it starts.  Work a step hands to the agent goes to the
agent booted for the operation (for a deploy step, the deploy's); work it asks of
the conductor (the end of a ``direct`` deploy) is carried out by
:func:`metalcast.conductor.direct.carry_out`.  What a step reports it
changed (a :class:`~metalcast.drivers.base.StepOutcome`, e.g. the RAID configuration it
applied) is recorded as soon as it returns.

Errors::

    InvalidInput     (400) a requested step does not exist for the node's interfaces
    OperationFailed  a step failed
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from metalcast.conductor import agent_state, direct, firmware, raid
from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.db import events
from metalcast.db.models import Node
from metalcast.drivers.base import (
    INTERFACE_CLASSES,
    AgentPhase,
    StepOutcome,
    StepProgress,
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
    """Check the clean or service steps an operator asked for, in the order asked
    (deploy steps: :mod:`metalcast.conductor.deploy_steps`).

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
            out.append(hold_step(iface, args, number=len(out) + 1, kind=kind))
            continue
        spec = known.get((iface, name))
        if spec is None:
            names = ", ".join(sorted(f"{i}.{n}" for i, n in known)) or "none"
            raise InvalidInput(
                f"Node {node.uuid} has no {kind} step '{iface}.{name}' for its interfaces. "
                f"Available {kind} steps: {names}."
            )
        _check_args(rt, node, spec, args)
        # the args stay sealed while staged; the driver gets them in clear
        out.append(as_dict(spec, rt.secret_box.seal(args)))
    return out


def _check_args(rt: Runtime, node: Node, spec: StepSpec, args: Mapping[str, Any]) -> None:
    """Let the step's interface check its arguments' shape.  Raises InvalidInput."""
    impl = node.interface(spec.interface)
    if impl is not None:
        rt.registry.interface(node.driver, spec.interface, impl).check_step_args(spec.name, args)


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


def hold_step(iface: str, args: Mapping[str, Any], *, number: int, kind: str) -> dict[str, Any]:
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
    booting = False
    for index in range(planned.index + 1, len(planned.steps)):
        step = planned.steps[index]
        task.update(**{field: step})
        _store(task, kind=kind, steps=StagedSteps(planned.steps, index))
        if kind == "deploy":  # the history shows each deploy step as it starts
            task.save(event=f"Deploy step {_named(step)} started", event_type="deploy")
        else:
            task.save()
        if step["step"] == HOLD_STEP:
            task.process_event(Event.HOLD)
            return Ran.HELD
        outcome = _perform(task, step, kind=kind, booting=booting)
        # a deploy step that only boots the agent goes on with the next step when that
        # one runs in the agent: its commands wait for the agent in its queue (the
        # default deploy hands the image write to the agent's first heartbeat)
        booting = kind == "deploy" and _only_boots(outcome) and _in_band(task, planned, index + 1)
        if outcome.result == StepResult.WAIT and not booting:
            return Ran.WAIT
    finish(task, kind=kind)
    return Ran.DONE


def _only_boots(outcome: StepOutcome) -> bool:
    """Whether a step waits only for the agent it boots (no command for it)."""
    work = outcome.agent
    return (
        outcome.result == StepResult.WAIT
        and work is not None
        and not work.commands
        and not work.write_instance
    )


def _in_band(task: NodeTask, planned: StagedSteps, index: int) -> bool:
    """Whether the staged deploy step at ``index`` runs in the ramdisk agent."""
    if index >= len(planned.steps):
        return False
    return _spec_requires_ramdisk(task, planned.steps[index])


def _spec_requires_ramdisk(task: NodeTask, step: Mapping[str, Any]) -> bool:
    specs = {(s.interface, s.name): s for s in available(task.rt, task.node, kind="deploy")}
    spec = specs.get((str(step["interface"]), str(step["step"])))
    return spec is not None and spec.requires_ramdisk


def _perform(
    task: NodeTask, step: Mapping[str, Any], *, kind: str, booting: bool = False
) -> StepOutcome:
    """Run one step and carry out what it asks of the agent or of the conductor.
    Raises OperationFailed."""
    cls = INTERFACE_CLASSES[step["interface"]]
    name = str(step["step"])
    operation = f"run {kind} step '{name}'"
    if kind == "deploy" and (cls.interface_type, name) == ("deploy", "deploy"):
        operation = "deploy"  # the core step: "failed to deploy", as before steps
    outcome: StepOutcome = call(
        task,
        cls,
        operation,
        lambda i, ctx, name=name: i.perform_step(ctx, name),  # type: ignore[misc]
        args=step.get("args") or {},
        progress=lambda report: record_progress(task, report),
    )
    if PROGRESS_KEY in task.node.driver_internal_info:
        task.set_internal(**{PROGRESS_KEY: None})
    _apply(task, outcome)
    impl = task.node.interface(cls.interface_type)
    no_ramdisk = NO_RAMDISK.get(kind)
    if outcome.agent is not None and no_ramdisk in task.node.driver_internal_info:
        raise OperationFailed(
            cls.interface_type,
            impl,
            operation,
            "the step needs the ramdisk agent, which disable_ramdisk turned off",
        )
    if outcome.agent is not None:
        work = outcome.agent
        if kind == "deploy":
            # an in-band step runs in the agent the deploy booted, whatever phase the
            # interface names (its clean steps' own)
            work = replace(work, phase=AgentPhase.DEPLOY)
            _check_agent_up(task, step, interface=cls.interface_type, impl=impl, booting=booting)
        direct.hand_over(task, work, booting=booting)
    if outcome.instance is not None:
        direct.carry_out(task, outcome.instance)
    return outcome


def _check_agent_up(
    task: NodeTask, step: Mapping[str, Any], *, interface: str, impl: str | None, booting: bool
) -> None:
    """An in-band deploy step needs the agent the deploy booted (after the core
    ``deploy.deploy`` step, before ``deploy.tear_down_agent``).  Raises OperationFailed."""
    if not _spec_requires_ramdisk(task, step):
        return
    agent = agent_state.of(task)
    if agent.phase is AgentPhase.DEPLOY and (agent.resumed or booting):
        return
    raise OperationFailed(
        interface,
        impl,
        f"run deploy step '{step['step']}'",
        f"the step runs in the ramdisk agent, which is not running at its priority "
        f"{step.get('priority')}: give it a priority below the step that boots the ramdisk "
        "(deploy.deploy, 100) and above deploy.tear_down_agent (40)",
    )


def _named(step: Mapping[str, Any]) -> str:
    """``interface.step (priority N)``, as the history names a step."""
    return f"{step.get('interface')}.{step.get('step')} (priority {step.get('priority')})"


#: driver_internal_info key: the running step's last progress report (a step the BMC
#: carries out: a firmware update), ``{"step", "target", "percent", "state"}``
PROGRESS_KEY = events.STEP_PROGRESS_KEY


def record_progress(task: NodeTask, report: StepProgress) -> None:
    """Save a running step's progress on the node (the API shows it in
    ``driver_internal_info.step_progress``).  Raises TaskParked."""
    shown = {
        "step": report.step,
        "target": report.target,
        "percent": report.percent,
        "state": report.state,
    }
    if task.node.driver_internal_info.get(PROGRESS_KEY) != shown:
        task.set_internal(**{PROGRESS_KEY: shown})
        task.save()


def _apply(task: NodeTask, outcome: StepOutcome) -> None:
    """Record what a step reports it changed on the node."""
    if outcome.raid_config is not None:
        raid.record_applied(task, outcome.raid_config)
    if outcome.firmware is not None:
        firmware.record_update(task, outcome.firmware)


def finish(task: NodeTask, *, kind: str) -> None:
    """Forget the step list and the running step (saved with the next save)."""
    task.update(**{STEP_FIELD[kind]: None})
    _store(task, kind=kind, steps=None)
