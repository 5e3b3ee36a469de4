"""Provision verbs: check a request, then move the node synchronously (to a stable
state) or start the flow of the work state it enters.

Errors::

    InvalidInput        (400) unknown verb; maintenance; abort of running work;
                              missing or unknown steps; missing rescue password
    InvalidTransition   (400) the verb is not allowed in the node's state
    NodeProtected       (403) undeploy or rebuild of a protected node
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from metalcast import states
from metalcast.conductor import direct, steps
from metalcast.conductor.flows import Flow, ProvisionOptions, cleaning, deployment, operations
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.conductor.workers import start_async
from metalcast.db import repository as repo
from metalcast.db.models import Node, NodeBrief
from metalcast.errors import InvalidInput, NodeProtected
from metalcast.states import HOLD, WAIT, WORK, Event, ProvisionState

PS = ProvisionState

#: the flow that runs in each work state
FLOWS: Mapping[ProvisionState, Flow] = {
    PS.VERIFYING: deployment.VERIFYING,
    PS.CLEANING: cleaning.CLEANING,
    PS.DEPLOYING: deployment.DEPLOYING,
    PS.DELETING: deployment.DELETING,
    PS.INSPECTING: operations.INSPECTING,
    PS.ADOPTING: deployment.ADOPTING,
    PS.RESCUING: operations.RESCUING,
    PS.UNRESCUING: operations.UNRESCUING,
    PS.SERVICING: operations.SERVICING,
}

#: verbs refused while a node is in maintenance (Ironic's NodeInMaintenance)
_NOT_IN_MAINTENANCE = frozenset(
    {
        Event.PROVIDE,
        Event.INSPECT,
        Event.CLEAN,
        Event.DEPLOY,
        Event.REBUILD,
        Event.ADOPT,
        Event.RESCUE,
        Event.UNRESCUE,
        Event.SERVICE,
    }
)

#: verbs refused while a node is protected (1.48): undeploy and rebuild
_NOT_WHEN_PROTECTED = frozenset({Event.DELETE, Event.REBUILD})


def parse_verb(verb: str) -> Event:
    """The event a provision verb raises.  Raises InvalidInput for an unknown verb."""
    try:
        return states.VERBS[verb]
    except KeyError:
        raise InvalidInput(
            f"The requested action '{verb}' is not a valid provision state target. "
            f"Valid targets: {', '.join(sorted(states.VERBS))}."
        ) from None


def change_provision_state(
    rt: Runtime, node_id: int, *, verb: str, options: ProvisionOptions, user: str
) -> None:
    """Carry out provision verb ``verb`` on the node.  Returns once the node is in its
    work state (the work goes on in a worker) or, for moves between stable states,
    once done.

    Raises:
        InvalidInput, InvalidTransition: the request is wrong for this node now.
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """
    event = parse_verb(verb)
    if event in (Event.ABORT, Event.UNHOLD):
        with rt.db.read() as conn:
            node = repo.get_node_by_id(conn, node_id)
        if event == Event.ABORT:
            abort(rt, node, user=user)
        else:
            unhold(rt, node, user=user)
        return
    with rt.db.read() as conn:  # the few columns the checks before the lock need
        brief = repo.get_node_brief_by_id(conn, node_id)
    _check_allowed(brief, event)
    target = states.advance(PS(brief.provision_state), event)
    flow = FLOWS.get(target)
    if flow is None:  # a move between stable states: no driver involved
        with acquire(rt, node_id, user=user, purpose=verb) as task:
            task.release_at_rest = True
            task.process_event(event)
        return

    def begin(task: NodeTask) -> None:
        _check_allowed(task.node, event)
        states.advance(task.state, event)  # the state may have moved since we looked
        flow.stage(task, event, options)
        task.process_event(event)
        if options.runbook is not None:
            _record_runbook(task, options)

    start_async(rt, node_id, user=user, purpose=verb, begin=begin, work=flow.work)


def _record_runbook(task: NodeTask, options: ProvisionOptions) -> None:
    """A history row naming the runbook whose steps the node runs, and the steps."""
    asked = options.clean_steps or options.service_steps or []
    names = ", ".join(f"{s.get('interface')}.{s.get('step')}" for s in asked)
    task.save(event=f"{task.state.value}: running runbook {options.runbook}: {names}")


def _check_allowed(node: Node | NodeBrief, event: Event) -> None:
    if node.protected and event in _NOT_WHEN_PROTECTED:
        raise NodeProtected(node.uuid)
    if node.retired and event == Event.PROVIDE:  # Ironic's NodeIsRetired (1.61)
        raise InvalidInput(
            f"The providing operation can't be performed on node {node.uuid} because it "
            "is retired. Set retired to false first."
        )
    if node.maintenance and event in _NOT_IN_MAINTENANCE:
        raise InvalidInput(
            f"Node {node.uuid} is in maintenance mode; the '{event.value}' action is not "
            "allowed. Take it out of maintenance first."
        )


def abort(rt: Runtime, node: Node, *, user: str) -> None:
    """Abort what the node waits for: it goes to the failure state of its wait state
    (``service failed`` goes back to ``active``).  A rescue is also undone on the
    node's side, as Ironic does: powered off, no ramdisk boot, the password's hash gone.

    Raises:
        InvalidInput: the node is running work that cannot be aborted.
        InvalidTransition: nothing to abort in this state.
        NodeLocked, NotFound: from the lock.
    """
    state = PS(node.provision_state)
    if state in WORK:
        raise InvalidInput(_running_message(node, state))
    states.advance(state, Event.ABORT)
    if state in _CLEANING_PAUSED:
        _abort_cleaning(rt, node.id, user=user)
        return
    with acquire(rt, node.id, user=user, purpose="abort") as task:
        if task.state in WORK:
            raise InvalidInput(_running_message(task.node, task.state))
        reason = None
        if task.state in WAIT | HOLD:
            reason = f"{_OPERATION.get(task.state, 'Operation')} aborted by {user}."
        for kind in ("clean", "deploy", "service"):
            steps.finish(task, kind=kind)
        waited = task.state
        task.process_event(Event.ABORT, reason=reason)
        if waited in _RAMDISK_WAITS:
            direct.end_ramdisk(task, operation=_RAMDISK_WAITS[waited])


#: waits of the ramdisk's agent whose abort or timeout also ends the ramdisk boot
_RAMDISK_WAITS: Mapping[ProvisionState, str] = {
    PS.DEPLOYWAIT: "Deployment",
    PS.DEPLOYHOLD: "Deployment",
    PS.RESCUEWAIT: "Rescue",
    PS.INSPECTWAIT: "Inspection",
}
#: where cleaning waits for the agent or the operator: an abort tears it down
_CLEANING_PAUSED = frozenset({PS.CLEANWAIT, PS.CLEANHOLD})


def _abort_cleaning(rt: Runtime, node_id: int, *, user: str) -> None:
    """Abort cleaning as Ironic does: a step that cannot be interrupted is marked to
    end cleaning once it is done (``abort_after``); otherwise the node goes to
    ``clean failed`` at once and a worker tears cleaning down (ramdisk boot removed,
    power off).  Raises InvalidTransition, NoFreeWorker, NodeLocked, NotFound."""
    with acquire(rt, node_id, user=user, purpose="abort") as task:
        step = task.node.clean_step
        if task.state == PS.CLEANWAIT and step and not step.get("abortable"):
            task.update(clean_step={**step, "abort_after": True})
            task.save(
                event=f"Abort requested by {user}: step '{step.get('interface')}."
                f"{step.get('step')}' cannot be interrupted; cleaning ends when it is done",
                user=user,
            )
            return

    def begin(task: NodeTask) -> None:
        states.advance(task.state, Event.ABORT)  # the state may have moved since
        reason = cleaning.abort_message(task).replace("By request", f"By request of {user}")
        task.process_event(Event.ABORT, reason=reason)

    start_async(rt, node_id, user=user, purpose="abort", begin=begin, work=cleaning.abort_cleaning)


def unhold(rt: Runtime, node: Node, *, user: str) -> None:
    """Release a node from ``deploy hold``, ``clean hold`` or ``service hold``: back to its wait
    state, and a worker goes on with the step after the hold at once (Ironic waits
    for the agent's next heartbeat; metalcast need not, and a hold before any agent
    step has no agent to wait for).

    Raises:
        InvalidTransition: the node is not held.
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """
    states.advance(PS(node.provision_state), Event.UNHOLD)

    def begin(task: NodeTask) -> None:
        states.advance(task.state, Event.UNHOLD)
        task.process_event(Event.UNHOLD)

    resume = _RESUME_AFTER_HOLD.get(PS(node.provision_state), operations.resume_service)
    start_async(rt, node.id, user=user, purpose="unhold", begin=begin, work=resume)


#: what goes on after an unhold, per hold state
_RESUME_AFTER_HOLD: Mapping[ProvisionState, Callable[[NodeTask], None]] = {
    PS.CLEANHOLD: cleaning.resume_cleaning,
    PS.DEPLOYHOLD: deployment.resume_deploy,
    PS.SERVICEHOLD: operations.resume_service,
}

_OPERATION: Mapping[ProvisionState, str] = {
    PS.CLEANWAIT: "Cleaning",
    PS.INSPECTWAIT: "Inspection",
    PS.DEPLOYWAIT: "Deployment",
    PS.DEPLOYHOLD: "Deployment",
    PS.RESCUEWAIT: "Rescue",
    PS.SERVICEWAIT: "Servicing",
    PS.SERVICEHOLD: "Servicing",
}


def _running_message(node: Node, state: ProvisionState) -> str:
    step = node.clean_step or node.service_step or node.deploy_step
    what = f"step '{step.get('interface')}.{step.get('step')}'" if step else "its work"
    return (
        f"Node {node.uuid} is in state '{state.value}' running {what}, which cannot be "
        "aborted; wait until it finishes or reaches a wait state, then abort."
    )
