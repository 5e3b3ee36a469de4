"""Verification, deployment, rebuild, undeployment and adoption."""

from __future__ import annotations

from dataclasses import replace

from metalcast.conductor import (
    agent_state,
    allocations,
    bios,
    boot_mode,
    deploy_steps,
    direct,
    firmware,
    sources,
    steps,
)
from metalcast.conductor.flows import Flow, ProvisionOptions
from metalcast.conductor.flows.cleaning import run_cleaning, stage_automated
from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.power import get_power, set_power
from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import (
    AgentPhase,
    BootInterface,
    DeployInterface,
    ManagementInterface,
    PowerInterface,
)
from metalcast.errors import InvalidInput
from metalcast.states import Event, PowerTarget, ProvisionState


def verify(task: NodeTask) -> None:
    """enroll → verifying → manageable: the BMC is reachable with these credentials;
    the BIOS settings, firmware components, boot mode and secure boot state are cached.  Raises
    OperationFailed (the node goes back to enroll)."""
    call(task, PowerInterface, "validate", lambda i, ctx: i.validate(ctx))
    call(task, ManagementInterface, "validate", lambda i, ctx: i.validate(ctx))
    task.update(power_state=get_power(task).value)
    bios.refresh(task)
    firmware.refresh(task)
    boot_mode.read(task)
    task.process_event(Event.DONE)


def _stage_deploy(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    """Raises InvalidInput: a requested deploy step is malformed or unknown, or the
    instance traits are not the node's."""
    user = deploy_steps.requested(task.rt, task.node, options.deploy_steps)
    deploy_steps.check_instance_traits(task.rt, task.node)
    if options.configdrive is not None:
        before = task.node.instance_info
        after = {**before, "configdrive": options.configdrive}
        task.update(instance_info=after)
        info = sources.track(
            task.node.driver_internal_info, before=before, after=after, admin=options.admin
        )
        task.update(driver_internal_info=info)
    steps.finish(task, kind="deploy")  # what an earlier deploy left is not resumed
    agent_state.store(task, replace(agent_state.of(task), prepared=()))
    task.set_internal(**{deploy_steps.USER_STEPS: user or None})


def deploy(task: NodeTask) -> None:
    """deploying → active: the deploy steps (:mod:`metalcast.conductor.deploy_steps`)
    in order, waiting (wait call-back) while one waits for the agent, holding (deploy
    hold) at a hold step.  ``deploy_step`` shows the step running or waited for.
    Raises OperationFailed (a template's step the node cannot run included)."""
    user = task.node.driver_internal_info.get(deploy_steps.USER_STEPS) or []
    try:  # planned first: a template the node cannot run fails before the node is touched
        planned = deploy_steps.plan(task, user)
    except InvalidInput as exc:
        raise OperationFailed("deploy", task.node.interface("deploy"), "plan", exc.message) from exc
    set_power(task, PowerTarget.OFF)
    call(task, BootInterface, "prepare the instance boot", lambda i, ctx: i.prepare_instance(ctx))
    steps.stage(task, planned, kind="deploy")
    task.set_internal(**{deploy_steps.USER_STEPS: None})
    task.save(event=f"Deploy steps: {deploy_steps.summary(planned)}", event_type="deploy")
    run_deploy(task)


def run_deploy(task: NodeTask) -> None:
    """Run the staged deploy steps after the last one started; ``active`` once all
    ran.  Raises OperationFailed."""
    planned = steps.staged(task.node.driver_internal_info, kind="deploy").steps
    boots = any((s.get("interface"), s.get("step")) == BOOT_INSTANCE for s in planned)
    bios_changed = any(s.get("interface") == "bios" for s in planned)
    ran = steps.run(task, kind="deploy")
    if ran is steps.Ran.WAIT:
        task.process_event(Event.WAIT)
    if ran is not steps.Ran.DONE:
        return
    if agent_state.of(task).phase is not None:
        direct.forget(task)  # a deploy that left out deploy.tear_down_agent
    if not boots:  # no step powered the instance on (a fake deploy)
        set_power(task, PowerTarget.ON)
    if bios_changed:
        bios.refresh(task)  # a BIOS deploy step changed them
    task.process_event(Event.DONE)


def resume_deploy(task: NodeTask) -> None:
    """wait call-back (the agent ran what it was handed, or an unhold) → deploying,
    and on with the next step.  Raises OperationFailed."""
    if task.state != ProvisionState.DEPLOYWAIT:
        return
    agent = agent_state.of(task)
    if agent.phase is AgentPhase.DEPLOY and agent.up:
        agent_state.store(task, replace(agent, resumed=True))
    task.process_event(Event.RESUME)
    run_deploy(task)


#: the step that powers the instance on, when the deploy interface has it
BOOT_INSTANCE = ("deploy", "boot_instance")


def _stage_undeploy(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    stage_automated(task)


def undeploy(task: NodeTask) -> None:
    """deleting → cleaning (automated) → available; the node's allocation is deleted
    once the instance is torn down.  Raises OperationFailed."""
    call(task, DeployInterface, "tear down", lambda i, ctx: i.tear_down(ctx))
    set_power(task, PowerTarget.OFF)
    call(task, BootInterface, "clean up the instance boot", lambda i, ctx: i.clean_up_instance(ctx))
    # the allocation goes with the instance, as in Ironic (it clears instance_uuid)
    allocations.free_node(task)
    task.update(instance_info={}, instance_uuid=None, allocation_id=None, deploy_step=None)
    agent_state.store(task, replace(agent_state.of(task), last_heartbeat=None))
    steps.finish(task, kind="deploy")
    task.set_internal(**{deploy_steps.USER_STEPS: None, sources.TENANT_SOURCES: None})
    task.rt.discard_config_drive(task.uuid)
    task.process_event(Event.CLEAN)
    run_cleaning(task)


def adopt(task: NodeTask) -> None:
    """adopting → active: take over a node that already runs its workload.
    Raises OperationFailed."""
    call(task, PowerInterface, "validate", lambda i, ctx: i.validate(ctx))
    call(task, DeployInterface, "validate", lambda i, ctx: i.validate(ctx))
    call(task, DeployInterface, "take over", lambda i, ctx: i.take_over(ctx))
    task.update(power_state=get_power(task).value)
    task.process_event(Event.DONE)


VERIFYING = Flow(work=verify)
DEPLOYING = Flow(work=deploy, stage=_stage_deploy)
DELETING = Flow(work=undeploy, stage=_stage_undeploy)
ADOPTING = Flow(work=adopt)
