"""Inspection, rescue, unrescue and servicing."""

from __future__ import annotations

from metalcast.conductor import direct, inspection, steps
from metalcast.conductor.flows import Flow, ProvisionOptions
from metalcast.conductor.interfaces import call
from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import InspectInterface, RescueInterface, StepOutcome, StepResult
from metalcast.errors import InvalidInput
from metalcast.states import Event, ProvisionState


def _stage_inspect(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    task.update(inspection_started_at=task.rt.clock.now(), inspection_finished_at=None)


def inspect(task: NodeTask) -> None:
    """inspecting → manageable, merging what was found into the node's properties
    (or inspect wait when an agent will report).  Raises OperationFailed."""
    inspected = call(
        task, InspectInterface, "inspect hardware", lambda i, ctx: i.inspect_hardware(ctx)
    )
    if isinstance(inspected, StepOutcome):
        if inspected.agent is not None:
            direct.hand_over(task, inspected.agent)
        if inspected.inventory is not None:  # read out of band: as an agent's
            refused = inspection.receive(task, inspected.inventory)
            if refused is not None:
                task.fail(refused)
                return
        inspected = (inspected.result, {})
    result, found = inspected
    if result == StepResult.WAIT:
        task.process_event(Event.WAIT)
        return
    task.update(
        properties={**task.node.properties, **found},
        inspection_finished_at=task.rt.clock.now(),
    )
    task.process_event(Event.DONE)


def _stage_rescue(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    if not options.rescue_password:
        raise InvalidInput("A non-empty 'rescue_password' is required to rescue a node.")
    task.update(
        instance_info={**task.node.instance_info, "rescue_password": options.rescue_password}
    )


def rescue(task: NodeTask) -> None:
    """rescuing → rescue (or rescue wait).  Raises OperationFailed."""
    if call(task, RescueInterface, "rescue", lambda i, ctx: i.rescue(ctx)) == StepResult.WAIT:
        task.process_event(Event.WAIT)
        return
    task.process_event(Event.DONE)


def unrescue(task: NodeTask) -> None:
    """unrescuing → active.  Raises OperationFailed."""
    call(task, RescueInterface, "unrescue", lambda i, ctx: i.unrescue(ctx))
    info = dict(task.node.instance_info)
    info.pop("rescue_password", None)
    task.update(instance_info=info)
    task.process_event(Event.DONE)


def _stage_service(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    planned = steps.requested(task.rt, task.node, steps=options.service_steps, kind="service")
    steps.stage(task, planned, kind="service")


def service(task: NodeTask) -> None:
    """servicing → active after the requested service steps (or service wait).
    Raises OperationFailed."""
    ran = steps.run(task, kind="service")
    if ran is steps.Ran.WAIT:
        task.process_event(Event.WAIT)
    elif ran is steps.Ran.DONE:
        task.process_event(Event.DONE)


def resume_service(task: NodeTask) -> None:
    """service wait (after an unhold) → servicing, and on with the next step.
    Raises OperationFailed."""
    if task.state == ProvisionState.SERVICEWAIT:
        task.process_event(Event.RESUME)
        service(task)


INSPECTING = Flow(work=inspect, stage=_stage_inspect)
RESCUING = Flow(work=rescue, stage=_stage_rescue)
UNRESCUING = Flow(work=unrescue)
SERVICING = Flow(work=service, stage=_stage_service)
