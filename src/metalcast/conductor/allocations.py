"""Allocations: a node found for a request, taken atomically, and given back.

An allocation asks for a node by resource class, traits, candidate nodes and, when
it has an owner, the project that must own or lease the node.  As in Ironic it is
processed asynchronously: it is stored ``allocating`` and handed to the conductor's
:class:`~metalcast.conductor.allocator.Allocator`, which ends it ``active`` (the node's
``instance_uuid`` is the allocation's UUID) or ``error`` (``last_error`` says what did
not match).  A backfill (API 1.58) records an already deployed node at once.
Deleting an allocation frees its node; undeploying a node deletes its allocation.

Errors::

    InvalidInput        (400) a backfill whose node does not match the request
    Conflict            (409) deleting the allocation of an active node; a node
                              already associated elsewhere; a taken name or UUID
    NotFound            (404) no such allocation or node
    NodeLocked          (409) another task holds the node's lock
    ServiceUnavailable  (503) the conductor is shutting down
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

import sqlalchemy as sa

from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo
from metalcast.db.allocations import NodeRequest
from metalcast.db.models import Allocation, JSONDict, Node
from metalcast.errors import Conflict, InvalidInput, ServiceUnavailable
from metalcast.states import UPDATE_ALLOWED, ProvisionState

PS = ProvisionState
_log = logging.getLogger(__name__)


def request_of(allocation: Allocation) -> NodeRequest:
    """What ``allocation`` asks of a node."""
    return NodeRequest(
        resource_class=allocation.resource_class,
        traits=tuple(allocation.traits),
        candidates=tuple(allocation.candidate_nodes),
        owner=allocation.owner,
    )


def _named(allocation: Allocation) -> str:
    return f"{allocation.uuid} ({allocation.name})" if allocation.name else allocation.uuid


def record(rt: Runtime, conn: sa.Connection, node_id: int, *, event: str, user: str | None) -> None:
    """A row in the node's history, in the caller's transaction: a node's history says
    when it was allocated and freed, and by whom."""
    repo.add_history(
        conn, node_id, event=event, event_type="allocation", conductor=rt.hostname, user=user
    )


def failure(allocation: Allocation, error: str) -> str:
    """The ``last_error`` of a failed allocation (Ironic's wording)."""
    return f"Failed to process allocation {allocation.uuid}: {error}."


# --------------------------------------------------------------------------- create


def create(rt: Runtime, values: JSONDict, *, conductor_id: int | None) -> Allocation:
    """Store a new allocation, ``allocating``, for the allocator of conductor
    ``conductor_id`` to process.

    Raises:
        ServiceUnavailable: the conductor is shutting down.
        Conflict: the UUID or name is taken.
    """
    if not rt.workers.accepting:
        raise ServiceUnavailable("The conductor is shutting down; retry on another one.")
    values = {**values, "state": repo_alloc.ALLOCATING, "conductor_affinity": conductor_id}
    with rt.db.begin() as conn:
        return repo_alloc.create_allocation(conn, values)


def backfill(rt: Runtime, values: JSONDict, *, node_id: int, user: str) -> Allocation:
    """Record the deployed node ``node_id`` as a new allocation's, at once (1.58).

    Raises:
        InvalidInput: the node is not active, or does not match the request.
        Conflict: the node has another instance or allocation; taken name or UUID.
        NodeLocked, NotFound: from the node's lock.
    """
    with acquire(rt, node_id, user=user, purpose="allocation backfilling") as task:
        node = task.node
        with rt.db.read() as conn:
            traits = repo.get_traits(conn, node.id)
        _check_backfill(node, values, traits=traits)
        with rt.db.begin() as conn:
            allocation = repo_alloc.create_allocation(conn, values)
            repo_alloc.associate(conn, allocation, node_id=node.id)
            allocation = repo_alloc.get_allocation_by_id(conn, allocation.id)
            event = f"backfilled into allocation {_named(allocation)} by {user}"
            record(rt, conn, node.id, event=event, user=user)
    _log.info("node %s backfilled into allocation %s", node.uuid, allocation.uuid)
    return allocation


def _check_backfill(node: Node, values: JSONDict, *, traits: Sequence[str]) -> None:
    if node.allocation_id is not None:
        raise Conflict(f"Node {node.uuid} already has an allocation; delete it first.")
    uuid = values.get("uuid")
    if node.instance_uuid is not None and node.instance_uuid != uuid:
        raise Conflict(f"Node {node.uuid} is associated with instance {node.instance_uuid}.")
    errors = []
    if node.provision_state != PS.ACTIVE:
        errors.append(
            f'Node must be in the "active" state, but the current state is "{node.provision_state}"'
        )
    wanted = values.get("resource_class")
    if wanted and node.resource_class != wanted:
        errors.append(
            f"Resource class {node.resource_class} does not match the requested "
            f"resource class {wanted}"
        )
    missing = sorted(set(values.get("traits") or ()) - set(traits))
    if missing:
        errors.append(f"The node lacks the requested traits {', '.join(missing)}")
    candidates = values.get("candidate_nodes") or []
    if candidates and node.uuid not in candidates:
        errors.append(
            f"Candidate nodes must be empty or contain the target node, but got "
            f"{', '.join(candidates)}"
        )
    if errors:
        raise InvalidInput(
            f"Cannot backfill an allocation for node {node.uuid}: {'; '.join(errors)}."
        )


# --------------------------------------------------------------------------- delete


def destroy(rt: Runtime, allocation_id: int, *, user: str) -> None:
    """Delete an allocation and free its node (``instance_uuid`` cleared), under the
    node's lock when it has one.

    Raises:
        Conflict: the node is active, or busy in a state where it may not change,
            and not in maintenance (undeploy it first).
        NodeLocked, NotFound: from the node's lock.
    """
    with rt.db.read() as conn:
        allocation = repo_alloc.get_allocation_by_id(conn, allocation_id)
    if allocation.node_id is None:
        with rt.db.begin() as conn:
            repo_alloc.destroy_allocation(conn, allocation.id)
        return
    with acquire(rt, allocation.node_id, user=user, purpose="allocation deletion") as task:
        check_deallocation(task.node, allocation)
        with rt.db.begin() as conn:
            repo_alloc.destroy_allocation(conn, allocation.id)
            event = f"allocation {_named(allocation)} deleted by {user}; node freed"
            record(rt, conn, task.node.id, event=event, user=user)
        task.node.allocation_id = task.node.instance_uuid = None
    _log.info("allocation %s deleted; node %s freed", allocation.uuid, task.node.uuid)


def check_deallocation(node: Node, allocation: Allocation) -> None:
    """Refuse to take a node from its allocation while it runs an instance (Ironic's
    rule: always allowed in maintenance).  Raises Conflict."""
    if node.maintenance:
        return
    state = PS(node.provision_state)
    if node.target_provision_state and state not in UPDATE_ALLOWED:
        raise Conflict(
            f"Cannot remove allocation {allocation.uuid} for node {node.uuid}, because the "
            f"node is in state {state.value} where updates are not allowed (and "
            "maintenance mode is off)"
        )
    if state == PS.ACTIVE:
        raise Conflict(
            f"Cannot remove allocation {allocation.uuid} for node {node.uuid}, because the "
            "node is active (and maintenance mode is off); undeploy it first"
        )


def free_node(task: NodeTask) -> None:
    """Delete the allocation of the locked node, if it has one (undeploy, or a PATCH
    removing ``instance_uuid``): the node loses ``allocation_id`` and
    ``instance_uuid``."""
    if task.node.allocation_id is None:
        return
    with task.rt.db.begin() as conn:
        allocation = repo_alloc.allocation_of_node(conn, task.node.id)
        if allocation is not None:
            repo_alloc.destroy_allocation(conn, allocation.id)
            event = f"allocation {_named(allocation)} deleted with the instance by {task.user}"
            record(task.rt, conn, task.node.id, event=event, user=task.user)
    task.node.allocation_id = task.node.instance_uuid = None
    if allocation is not None:
        task.log.info("%s: allocation %s deleted", task.uuid, allocation.uuid)


# --------------------------------------------------------------------------- allocate


def allocate(rt: Runtime, allocation_id: int) -> None:
    """Find and take a node for an allocating allocation, or record why none.

    Never raises (it runs in the allocator's threads): an unexpected error becomes
    the allocation's ``last_error``.
    """
    try:
        with rt.db.read() as conn:
            allocation = repo_alloc.get_allocation_by_id(conn, allocation_id)
        if allocation.state != repo_alloc.ALLOCATING:
            return
        _allocate(rt, allocation)
    except repo_alloc.AllocationGone:
        _log.info("allocation %s was deleted while it was processed", allocation_id)
    except Exception as exc:  # boundary: an allocation must never stay allocating
        _log.exception("allocation %s failed", allocation_id)
        with rt.db.begin() as conn:
            repo_alloc.fail_allocation(
                conn, allocation_id, f"Unexpected exception during allocation: {exc}"
            )


def _allocate(rt: Runtime, allocation: Allocation) -> None:
    request = request_of(allocation)
    with rt.db.read() as conn:
        found = repo_alloc.candidate_nodes(conn, request)
        if not found:
            _fail(rt, allocation, explain(conn, request))
            return
    order = _ordered(found, name=allocation.name)
    attempts = 1 + rt.settings.node_locked_retry_attempts
    for attempt in range(attempts):
        locked = _try_nodes(rt, allocation, order, request=request)
        if locked is None:
            return
        if not locked:
            _fail(rt, allocation, _taken_message(len(found), request))
            return
        order = locked
        if attempt + 1 < attempts:
            time.sleep(rt.settings.node_locked_retry_interval)
    _fail(rt, allocation, f"could not reserve any of {len(order)} suitable nodes: locked")


def _ordered(found: list[tuple[int, str, str | None]], *, name: str | None) -> list[int]:
    """Candidates in random order, so that parallel allocations try different nodes
    first; a node named like the allocation first (Ironic's rule)."""
    shuffled = list(found)
    random.shuffle(shuffled)
    shuffled.sort(key=lambda node: node[2] != name if name else False)
    return [node_id for node_id, _, _ in shuffled]


def _try_nodes(
    rt: Runtime, allocation: Allocation, order: list[int], *, request: NodeRequest
) -> list[int] | None:
    """Try to take each node in ``order``; None once one is taken, else the nodes
    that still match but were locked (worth another try)."""
    locked: list[int] = []
    for node_id in order:
        try:
            with rt.db.begin() as conn:
                if repo_alloc.take_node(conn, allocation, node_id=node_id, request=request):
                    owner = f" of project {allocation.owner}" if allocation.owner else ""
                    event = f"allocated to allocation {_named(allocation)}{owner}"
                    record(rt, conn, node_id, event=event, user=None)
                    _log.info("allocation %s took node %s", allocation.uuid, node_id)
                    return None
        except sa.exc.IntegrityError:
            _fail(
                rt,
                allocation,
                f"its UUID {allocation.uuid} is already the instance_uuid of another node",
            )
            return None
        with rt.db.read() as conn:
            if repo_alloc.still_matches(conn, node_id, request):
                locked.append(node_id)
    return locked


def _fail(rt: Runtime, allocation: Allocation, error: str) -> None:
    with rt.db.begin() as conn:
        failed = repo_alloc.fail_allocation(conn, allocation.id, failure(allocation, error))
    if failed:
        _log.warning("allocation %s failed: %s", allocation.uuid, error)


def _taken_message(count: int, request: NodeRequest) -> str:
    return (
        f"none of the {count} node(s) matching {_matched(request)} could be taken: other "
        "allocations took them, or they changed, while this one was processed"
    )


# ---------------------------------------------------------------------------- why not


def _matched(request: NodeRequest) -> str:
    text = f"resource class {request.resource_class}"
    if request.traits:
        text += f" and traits {', '.join(request.traits)}"
    return text


def _where(request: NodeRequest) -> str:
    """`` among the 2 candidate node(s) owned or leased by project p1``, or ``""``."""
    parts = []
    if request.candidates:
        parts.append(f" among the {len(request.candidates)} candidate node(s)")
    if request.owner is not None:
        parts.append(f" owned or leased by project {request.owner}")
    return "".join(parts)


def explain(conn: sa.Connection, request: NodeRequest) -> str:
    """Why no node matches ``request``: the first of scope (candidates, owner),
    resource class, traits and availability that leaves no node, with counts."""
    scope = repo_alloc.scope(request)
    if not repo_alloc.count_nodes(conn, scope):
        where = _where(request)
        return f"there is no node{where}" if where else "there are no nodes"
    with_class = [*scope, repo_alloc.resource_class_is(request)]
    in_class = repo_alloc.count_nodes(conn, with_class)
    if not in_class:
        return f"no node{_where(request)} has resource class {request.resource_class}"
    matched = [*with_class, *repo_alloc.has_traits(request)]
    count = repo_alloc.count_nodes(conn, matched)
    if not count:
        missing = repo_alloc.missing_traits(conn, request)
        text = (
            f"none of the {in_class} node(s){_where(request)} with resource class "
            f"{request.resource_class} has all the traits {', '.join(request.traits)}"
        )
        return text + (f" (none has {', '.join(missing)})" if missing else "")
    reasons = []
    for reason, condition in repo_alloc.UNAVAILABLE.items():
        busy = repo_alloc.count_nodes(conn, [*matched, condition])
        if busy:
            reasons.append(f"{busy} {reason}")
    return (
        f"none of the {count} node(s){_where(request)} matching {_matched(request)} is "
        f"free: {'; '.join(reasons)}"
    )
