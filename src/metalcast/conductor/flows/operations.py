"""Inspection, rescue, unrescue and servicing."""

from __future__ import annotations

from metalcast.conductor import direct, inspection, steps
from metalcast.conductor import rescue as rescue_mode
from metalcast.conductor.flows import Flow, ProvisionOptions
from metalcast.conductor.interfaces import call
from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import InspectInterface, RescueInterface, StepOutcome, StepResult
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
    # hashed here: the plain password is never written anywhere
    rescue_mode.stage_password(task, options.rescue_password)


def rescue(task: NodeTask) -> None:
    """rescuing → rescue (or rescue wait, the agent booted to set the password and
    start SSH).  Raises OperationFailed."""
    done = call(task, RescueInterface, "rescue", lambda i, ctx: i.rescue(ctx))
    if isinstance(done, StepOutcome):
        if done.agent is not None:
            direct.hand_over(task, done.agent)
        done = done.result
    if done == StepResult.WAIT:
        task.process_event(Event.WAIT)
        return
    task.process_event(Event.DONE)


def unrescue(task: NodeTask) -> None:
    """unrescuing → active: the rescue system ends, the node boots its instance again.
    Raises OperationFailed."""
    call(task, RescueInterface, "unrescue", lambda i, ctx: i.unrescue(ctx))
    rescue_mode.boot_instance(task)  # the password's hash goes with the transition
    task.process_event(Event.DONE)


#: driver_internal_info key: this servicing runs without the ramdisk (Ironic's name)
_NO_RAMDISK = steps.NO_RAMDISK["service"]


def _stage_service(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    """Raises InvalidInput: a requested step does not exist, or (Ironic 1.108) needs
    the ramdisk that ``disable_ramdisk`` turns off."""
    planned = steps.requested(task.rt, task.node, steps=options.service_steps, kind="service")
    no_ramdisk = bool(options.disable_ramdisk)
    if no_ramdisk:
        steps.check_without_ramdisk(task, planned, kind="service")
    steps.stage(task, planned, kind="service")
    task.set_internal(**{_NO_RAMDISK: True if no_ramdisk else None})


def service(task: NodeTask) -> None:
    """servicing → active after the requested service steps (or service wait).
    Raises OperationFailed."""
    ran = steps.run(task, kind="service")
    if ran is steps.Ran.WAIT:
        task.process_event(Event.WAIT)
    elif ran is steps.Ran.DONE:
        task.set_internal(**{_NO_RAMDISK: None})
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
