"""Cleaning: automated (on provide and after undeploy) and manual (the clean verb).

Automated cleaning runs every clean step with a priority above 0, highest first,
unless it is disabled (the node's ``automated_clean``, else the conductor's setting);
it ends in ``available``, or ``manageable`` for a retired node (Ironic 1.61).  Manual
cleaning runs the requested steps and ends in ``manageable``; asked with
``disable_ramdisk`` (Ironic 1.70), it runs them without booting the ramdisk agent,
so every step must be one that runs without it.  A requested ``hold`` step stops
cleaning in ``clean hold`` until the operator's ``unhold`` (:func:`resume_cleaning`)
or ``abort`` (:func:`abort_cleaning`).
"""

from __future__ import annotations

from metalcast.conductor import agent_state, bios, direct, firmware, steps
from metalcast.conductor.flows import Flow, ProvisionOptions
from metalcast.conductor.interfaces import call
from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import AgentPhase, DeployInterface, StepOutcome, StepResult
from metalcast.states import Event, ProvisionState


def automated_enabled(task: NodeTask) -> bool:
    """Whether automated cleaning runs for this node."""
    if task.node.automated_clean is not None:
        return task.node.automated_clean
    return task.rt.settings.automated_clean


def stage_automated(task: NodeTask) -> None:
    """Stage the automated clean steps (none when automated cleaning is disabled)."""
    planned = steps.automated(task.rt, task.node) if automated_enabled(task) else []
    steps.stage(task, planned, kind="clean")


#: driver_internal_info key: this cleaning runs without the ramdisk (Ironic's name)
NO_RAMDISK = steps.NO_RAMDISK["clean"]


def _stage(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    """Raises InvalidInput: a requested step does not exist, or needs the ramdisk
    that ``disable_ramdisk`` turns off."""
    no_ramdisk = event == Event.CLEAN and bool(options.disable_ramdisk)
    if event == Event.CLEAN:
        planned = steps.requested(task.rt, task.node, steps=options.clean_steps, kind="clean")
        if no_ramdisk:
            steps.check_without_ramdisk(task, planned, kind="clean")
        steps.stage(task, planned, kind="clean")
    else:
        stage_automated(task)
    task.set_internal(**{NO_RAMDISK: True if no_ramdisk else None})


def run_cleaning(task: NodeTask) -> None:
    """Prepare, run the staged steps, tear down, refresh the cached BIOS settings;
    then ``available`` (automated) or ``manageable`` (manual).  Raises
    OperationFailed."""
    manual = task.node.target_provision_state == ProvisionState.MANAGEABLE.value
    staged = steps.staged(task.node.driver_internal_info, kind="clean")
    planned, started = staged.steps, staged.started
    agent = agent_state.of(task)
    # an interface that prepared by booting the agent: it is up now
    agent_up = agent.phase is AgentPhase.CLEAN and agent.resumed
    no_ramdisk = bool(task.node.driver_internal_info.get(NO_RAMDISK))
    if planned and not started and not agent_up and not no_ramdisk:
        prepared = StepOutcome.of(
            call(task, DeployInterface, "prepare cleaning", lambda i, ctx: i.prepare_cleaning(ctx))
        )
        if prepared.agent is not None:
            direct.hand_over(task, prepared.agent)
        if prepared.result == StepResult.WAIT:
            task.process_event(Event.WAIT)
            return
    if started and (task.node.clean_step or {}).get("abort_after"):
        _abort_after_step(task)
        return
    ran = steps.run(task, kind="clean")
    if ran is steps.Ran.WAIT:
        task.process_event(Event.WAIT)
    if ran is not steps.Ran.DONE:
        return
    if planned and not no_ramdisk:
        call(task, DeployInterface, "tear down cleaning", lambda i, ctx: i.tear_down_cleaning(ctx))
        if agent_state.of(task).phase is AgentPhase.CLEAN:
            direct.leave_ramdisk(task)
    task.set_internal(**{NO_RAMDISK: None})
    bios.refresh(task)  # clean steps may have changed them
    firmware.refresh(task)
    # a retired node is never made available again (Ironic 1.61)
    task.process_event(Event.MANAGE if manual or task.node.retired else Event.DONE)


def resume_cleaning(task: NodeTask) -> None:
    """clean wait (after an unhold) → cleaning, and on with the step after the hold.
    Raises OperationFailed."""
    if task.state == ProvisionState.CLEANWAIT:
        task.process_event(Event.RESUME)
        run_cleaning(task)


def abort_message(task: NodeTask) -> str:
    """Ironic's ``last_error`` of an aborted cleaning, naming the step it stopped at."""
    message = "By request, the clean operation was aborted"
    step = task.node.clean_step
    if step:
        name = f"{step.get('interface')}.{step.get('step')}"
        message += f" during or after the completion of step '{name}'"
    return message + "."


def abort_cleaning(task: NodeTask) -> None:
    """After ``abort`` (the node is in ``clean failed``): tear cleaning down, power
    off, forget the agent and the steps, as a finished cleaning does.  Raises
    OperationFailed."""
    call(task, DeployInterface, "tear down cleaning", lambda i, ctx: i.tear_down_cleaning(ctx))
    if agent_state.of(task).phase is AgentPhase.CLEAN:
        direct.leave_ramdisk(task)
    steps.finish(task, kind="clean")
    task.save(event="Cleaning torn down after the abort")


def _abort_after_step(task: NodeTask) -> None:
    """The step an abort waited for is done: cleaning ends as aborted (torn down
    first: once at rest in ``clean failed`` the task may write nothing more)."""
    reason = abort_message(task)
    abort_cleaning(task)
    task.process_event(Event.FAIL, reason=reason)


CLEANING = Flow(work=run_cleaning, stage=_stage)
