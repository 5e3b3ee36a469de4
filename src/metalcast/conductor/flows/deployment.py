"""Verification, deployment, rebuild, undeployment and adoption."""

from __future__ import annotations

from dataclasses import replace

from metalcast.conductor import (
    agent_state,
    allocations,
    bios,
    boot_mode,
    direct,
    firmware,
    sources,
)
from metalcast.conductor.flows import Flow, ProvisionOptions
from metalcast.conductor.flows.cleaning import run_cleaning, stage_automated
from metalcast.conductor.interfaces import call
from metalcast.conductor.power import get_power, set_power
from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import (
    BootInterface,
    DeployInterface,
    ManagementInterface,
    PowerInterface,
    StepOutcome,
    StepResult,
)
from metalcast.states import Event, PowerTarget


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
    if options.configdrive is not None:
        before = task.node.instance_info
        after = {**before, "configdrive": options.configdrive}
        task.update(instance_info=after)
        info = sources.track(
            task.node.driver_internal_info, before=before, after=after, admin=options.admin
        )
        task.update(driver_internal_info=info)


#: what ``deploy_step`` (API 1.44) shows while the deploy interface writes the instance
DEPLOY_STEP = {"interface": "deploy", "step": "deploy", "priority": 100, "args": {}}


def deploy(task: NodeTask) -> None:
    """deploying → active (or wait call-back when the deploy waits for the agent).
    ``deploy_step`` shows the deploy while it runs or waits.  Raises OperationFailed."""
    set_power(task, PowerTarget.OFF)
    call(task, BootInterface, "prepare the instance boot", lambda i, ctx: i.prepare_instance(ctx))
    task.update(deploy_step=dict(DEPLOY_STEP))
    task.save()
    outcome = StepOutcome.of(call(task, DeployInterface, "deploy", lambda i, ctx: i.deploy(ctx)))
    if outcome.agent is not None:
        direct.hand_over(task, outcome.agent)
    if outcome.result == StepResult.WAIT:
        task.process_event(Event.WAIT)
        return
    set_power(task, PowerTarget.ON)
    task.update(deploy_step=None)
    task.process_event(Event.DONE)


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
    task.set_internal(deploy_steps=None, **{sources.TENANT_SOURCES: None})
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
