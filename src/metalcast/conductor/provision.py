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

from collections.abc import Mapping

from metalcast import states
from metalcast.conductor import steps
from metalcast.conductor.flows import Flow, ProvisionOptions, cleaning, deployment, operations
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.conductor.workers import start_async
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.errors import InvalidInput, NodeProtected
from metalcast.states import WAIT, WORK, Event, ProvisionState

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
    with rt.db.read() as conn:
        node = repo.get_node_by_id(conn, node_id)
    if event == Event.ABORT:
        abort(rt, node, user=user)
        return
    _check_allowed(node, event)
    target = states.advance(PS(node.provision_state), event)
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

    start_async(rt, node_id, user=user, purpose=verb, begin=begin, work=flow.work)


def _check_allowed(node: Node, event: Event) -> None:
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
    (``service failed`` goes back to ``active``).

    Raises:
        InvalidInput: the node is running work that cannot be aborted.
        InvalidTransition: nothing to abort in this state.
        NodeLocked, NotFound: from the lock.
    """
    state = PS(node.provision_state)
    if state in WORK:
        raise InvalidInput(_running_message(node, state))
    states.advance(state, Event.ABORT)
    with acquire(rt, node.id, user=user, purpose="abort") as task:
        if task.state in WORK:
            raise InvalidInput(_running_message(task.node, task.state))
        reason = None
        if task.state in WAIT:
            reason = f"{_OPERATION.get(task.state, 'Operation')} aborted by {user}."
        for kind in ("clean", "deploy", "service"):
            steps.finish(task, kind=kind)
        task.process_event(Event.ABORT, reason=reason)


_OPERATION: Mapping[ProvisionState, str] = {
    PS.CLEANWAIT: "Cleaning",
    PS.INSPECTWAIT: "Inspection",
    PS.DEPLOYWAIT: "Deployment",
    PS.RESCUEWAIT: "Rescue",
    PS.SERVICEWAIT: "Servicing",
}


def _running_message(node: Node, state: ProvisionState) -> str:
    step = node.clean_step or node.service_step or node.deploy_step
    what = f"step '{step.get('interface')}.{step.get('step')}'" if step else "its work"
    return (
        f"Node {node.uuid} is in state '{state.value}' running {what}, which cannot be "
        "aborted; wait until it finishes or reaches a wait state, then abort."
    )
