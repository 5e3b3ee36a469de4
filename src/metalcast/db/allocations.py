"""Reads and writes of allocations, and the one statement that gives a node to one.

A node goes to an allocation only through :func:`take_node`: a single conditional
``UPDATE nodes ... WHERE`` every condition of the match still holds and nobody holds
the node (no instance, no allocation, no lock).  The database runs it atomically, so
two allocations, in one process or in several sharing the database, never get the
same node: the second ``UPDATE`` matches no row and the caller tries its next
candidate.  Functions take a connection; the caller owns the transaction.  Every
write passes :func:`metalcast.db.sealing.protect` (``extra`` sealed, ``last_error``
scrubbed), through :mod:`metalcast.db.rows` or, for the conditional updates, directly.

Errors raised: ``NotFound`` (404) for a missing allocation, ``Conflict`` (409) for a
taken name or UUID, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metalcast.db import events, rows, sealing
from metalcast.db import tables as t
from metalcast.db.models import Allocation, JSONDict, from_row
from metalcast.db.rows import Page, new_uuid, utcnow
from metalcast.errors import Conflict, NotFound

ALLOCATING = "allocating"
ACTIVE = "active"
ERROR = "error"
STATES = (ALLOCATING, ACTIVE, ERROR)


# ------------------------------------------------------------------------- records


def create_allocation(conn: sa.Connection, values: JSONDict) -> Allocation:
    """Insert an allocation (``uuid`` generated, ``state`` allocating, unless given).

    Raises:
        Conflict: the UUID or the name is taken.
    """
    values = {
        "uuid": new_uuid(),
        "state": ALLOCATING,
        "traits": [],
        "candidate_nodes": [],
        "extra": {},
        **values,
    }
    _check_free(conn, values, exclude_id=None)
    return get_allocation_by_id(conn, rows.insert(conn, t.allocations, values))


def _check_free(conn: sa.Connection, values: JSONDict, *, exclude_id: int | None) -> None:
    messages = {
        "uuid": "An allocation with UUID {} already exists.",
        "name": "An allocation with name {} already exists.",
    }
    for key, message in messages.items():
        value = values.get(key)
        if value is not None:
            rows.check_free(
                conn,
                t.allocations,
                {key: value},
                exclude_id=exclude_id,
                message=message.format(value),
            )


def get_allocation(conn: sa.Connection, ident: str) -> Allocation:
    """The allocation with UUID or name ``ident``.  Raises ``NotFound``."""
    return from_row(Allocation, rows.get_by_ident(conn, t.allocations, ident, "Allocation"))


def get_allocation_by_id(conn: sa.Connection, allocation_id: int) -> Allocation:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.allocations, Allocation, allocation_id, "Allocation")


def allocation_of_node(conn: sa.Connection, node_id: int) -> Allocation | None:
    """The allocation holding node ``node_id``, if any."""
    query = sa.select(t.allocations).where(t.allocations.c.node_id == node_id)
    row = conn.execute(query).mappings().first()
    return None if row is None else from_row(Allocation, row)


@dataclass(frozen=True, slots=True)
class AllocationFilters:
    """Ironic's allocation list filters; ``None`` means "do not filter on this"."""

    node_id: int | None = None
    resource_class: str | None = None
    state: str | None = None
    owner: str | None = None
    conductor_affinity: int | None = None


def list_allocations(
    conn: sa.Connection, filters: AllocationFilters, page: Page
) -> list[Allocation]:
    """A page of allocations matching ``filters``.

    Raises:
        InvalidInput: unknown sort key, or a marker that is not an allocation.
    """
    a = t.allocations.c
    query = sa.select(t.allocations)
    for name in ("node_id", "resource_class", "state", "owner", "conductor_affinity"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(a[name] == value)
    return rows.records(conn, Allocation, rows.paginate(conn, t.allocations, query, page))


def update_allocation(conn: sa.Connection, allocation_id: int, values: JSONDict) -> None:
    """Write ``values`` (``name``, ``extra``) into the allocation.

    Raises:
        Conflict: the new name is taken.
    """
    _check_free(conn, values, exclude_id=allocation_id)
    rows.update(conn, t.allocations, allocation_id, values)


def fail_allocation(conn: sa.Connection, allocation_id: int, reason: str) -> bool:
    """Mark a still-allocating allocation ``error`` with ``reason``; False when it is
    gone or no longer allocating (deleted meanwhile, or processed elsewhere)."""
    a = t.allocations.c
    # the reason may quote what an unexpected error said: scrubbed like any last_error
    values = sealing.protect(
        conn,
        t.allocations,
        {"state": ERROR, "last_error": reason, "node_id": None, "updated_at": utcnow()},
        row_id=allocation_id,
    )
    result = conn.execute(
        sa.update(t.allocations).where(a.id == allocation_id, a.state == ALLOCATING).values(values)
    )
    return result.rowcount == 1


def destroy_allocation(conn: sa.Connection, allocation_id: int) -> None:
    """Delete the allocation and free its node: the node loses its ``allocation_id``
    and ``instance_uuid`` in the same transaction."""
    n = t.nodes.c
    freed = conn.execute(
        sa.update(t.nodes)
        .where(n.allocation_id == allocation_id)
        .values(allocation_id=None, instance_uuid=None, updated_at=utcnow())
        .returning(n.uuid, n.owner, n.lessee)
    ).all()
    gone = conn.execute(
        sa.delete(t.allocations)
        .where(t.allocations.c.id == allocation_id)
        .returning(t.allocations.c.uuid)
    ).scalar()
    for node in freed:
        _instance_changed(conn, node, old=gone, new=None)


def take_over_allocations(
    conn: sa.Connection, *, dead: Sequence[int], conductor_id: int
) -> list[Allocation]:
    """Move the allocating allocations of the ``dead`` conductors to ``conductor_id``;
    the ones this call moved (a conditional UPDATE each, so two conductors taking over
    at once never both get one)."""
    a = t.allocations.c
    query = sa.select(t.allocations).where(
        a.state == ALLOCATING, a.conductor_affinity.in_(list(dead))
    )
    taken: list[Allocation] = []
    for row in conn.execute(query).mappings().all():
        result = conn.execute(
            sa.update(t.allocations)
            .where(a.id == row["id"], a.conductor_affinity == row["conductor_affinity"])
            .values(conductor_affinity=conductor_id)
        )
        if result.rowcount == 1:
            taken.append(Allocation(**{**row, "conductor_affinity": conductor_id}))
    return taken


def node_uuids(conn: sa.Connection, node_ids: Sequence[int | None]) -> dict[int, str]:
    """UUIDs of the nodes with these ids (for rendering ``node_uuid``)."""
    ids = {i for i in node_ids if i is not None}
    if not ids:
        return {}
    n = t.nodes.c
    return {r.id: r.uuid for r in conn.execute(sa.select(n.id, n.uuid).where(n.id.in_(ids)))}


def allocation_uuids(conn: sa.Connection, ids: Sequence[int | None]) -> dict[int, str]:
    """UUIDs of the allocations with these ids (for rendering ``allocation_uuid``)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    a = t.allocations.c
    return {r.id: r.uuid for r in conn.execute(sa.select(a.id, a.uuid).where(a.id.in_(wanted)))}


# ----------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """What an allocation asks of a node, as SQL conditions can check it."""

    resource_class: str | None
    traits: tuple[str, ...] = ()
    #: UUIDs the node must be one of (empty: any node)
    candidates: tuple[str, ...] = ()
    #: the project that must own or lease the node (None: any)
    owner: str | None = None


def scope(request: NodeRequest) -> list[sa.ColumnElement[bool]]:
    """The candidates and the owner: which nodes the allocation may look at."""
    n = t.nodes.c
    out: list[sa.ColumnElement[bool]] = []
    if request.candidates:
        out.append(n.uuid.in_(list(request.candidates)))
    if request.owner is not None:
        out.append(sa.or_(n.owner == request.owner, n.lessee == request.owner))
    return out


def resource_class_is(request: NodeRequest) -> sa.ColumnElement[bool]:
    return t.nodes.c.resource_class == request.resource_class


def has_traits(request: NodeRequest) -> list[sa.ColumnElement[bool]]:
    """One condition per requested trait: the node has it."""
    nt = t.node_traits.c
    return [
        t.nodes.c.id.in_(sa.select(nt.node_id).where(nt.trait == trait)) for trait in request.traits
    ]


#: why a node that matches the request cannot be taken, and the condition that
#: rules each reason out (what ``free`` means, Ironic's list)
UNAVAILABLE: dict[str, sa.ColumnElement[bool]] = {
    "not in provision state 'available'": t.nodes.c.provision_state != "available",
    "with no known power state": t.nodes.c.power_state.is_(None),
    "in maintenance": t.nodes.c.maintenance.is_(True),
    "retired": t.nodes.c.retired.is_(True),
    "already associated with an instance or allocation": sa.or_(
        t.nodes.c.instance_uuid.isnot(None), t.nodes.c.allocation_id.isnot(None)
    ),
}


def free() -> list[sa.ColumnElement[bool]]:
    """The node is available to be taken: none of :data:`UNAVAILABLE` holds."""
    n = t.nodes.c
    return [
        n.provision_state == "available",
        n.power_state.isnot(None),
        n.maintenance.is_(False),
        n.retired.is_(False),
        n.instance_uuid.is_(None),
        n.allocation_id.is_(None),
    ]


def matching(request: NodeRequest) -> list[sa.ColumnElement[bool]]:
    """Every condition a node must meet to be taken for ``request`` (but the lock)."""
    return [*scope(request), resource_class_is(request), *has_traits(request), *free()]


def candidate_nodes(conn: sa.Connection, request: NodeRequest) -> list[tuple[int, str, str | None]]:
    """``(id, uuid, name)`` of every node that could be taken for ``request`` now."""
    n = t.nodes.c
    query = sa.select(n.id, n.uuid, n.name).where(*matching(request)).order_by(n.id)
    return [(r.id, r.uuid, r.name) for r in conn.execute(query)]


def count_nodes(conn: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]]) -> int:
    """How many nodes meet every condition (for saying why nothing matched)."""
    query = sa.select(sa.func.count()).select_from(t.nodes)
    if conditions:
        query = query.where(*conditions)
    return int(conn.execute(query).scalar_one())


def still_matches(conn: sa.Connection, node_id: int, request: NodeRequest) -> bool:
    """Whether node ``node_id`` meets every condition of ``request`` (locked or not)."""
    return count_nodes(conn, [t.nodes.c.id == node_id, *matching(request)]) == 1


def missing_traits(conn: sa.Connection, request: NodeRequest) -> list[str]:
    """The requested traits no node in scope with the resource class has."""
    nt = t.node_traits.c
    in_scope = sa.select(t.nodes.c.id).where(*scope(request), resource_class_is(request))
    query = sa.select(nt.trait).where(nt.node_id.in_(in_scope)).distinct()
    present = set(conn.execute(query).scalars())
    return [trait for trait in request.traits if trait not in present]


def take_node(
    conn: sa.Connection, allocation: Allocation, *, node_id: int, request: NodeRequest
) -> bool:
    """Give node ``node_id`` to ``allocation`` if it still matches ``request`` and
    nobody holds it; False when it does not (taken, locked or changed meanwhile).

    The node's ``instance_uuid`` becomes the allocation's UUID, its
    ``allocation_id`` the allocation's id, ``instance_info.traits`` the requested
    traits (as Ironic does); the allocation becomes ``active``.  All in the caller's
    transaction: if the allocation is no longer ``allocating`` (deleted meanwhile)
    :class:`AllocationGone` is raised and the caller's transaction rolls back.
    """
    n = t.nodes.c
    now = utcnow()
    taken = conn.execute(
        sa.update(t.nodes)
        .where(n.id == node_id, n.reservation.is_(None), *matching(request))
        .values(instance_uuid=allocation.uuid, allocation_id=allocation.id, updated_at=now)
        .returning(n.uuid, n.owner, n.lessee)
    ).all()
    if len(taken) != 1:
        return False
    _instance_changed(conn, taken[0], old=None, new=allocation.uuid)
    a = t.allocations.c
    marked = conn.execute(
        sa.update(t.allocations)
        .where(a.id == allocation.id, a.state == ALLOCATING)
        .values(node_id=node_id, state=ACTIVE, last_error=None, updated_at=now)
    )
    if marked.rowcount != 1:
        raise AllocationGone(allocation.uuid)
    info: dict[str, Any] = conn.execute(
        sa.select(n.instance_info).where(n.id == node_id)
    ).scalar_one()
    rows.update(
        conn, t.nodes, node_id, {"instance_info": {**info, "traits": list(allocation.traits)}}
    )
    return True


def associate(conn: sa.Connection, allocation: Allocation, *, node_id: int) -> None:
    """Record an already deployed node as ``allocation``'s (backfill, 1.58): the
    caller holds the node's lock and checked that the node is free of others.

    Raises:
        Conflict: the node has another instance or allocation after all.
    """
    n = t.nodes.c
    before = conn.execute(sa.select(n.instance_uuid).where(n.id == node_id)).scalar()
    result = conn.execute(
        sa.update(t.nodes)
        .where(
            n.id == node_id,
            n.allocation_id.is_(None),
            sa.or_(n.instance_uuid.is_(None), n.instance_uuid == allocation.uuid),
        )
        .values(instance_uuid=allocation.uuid, allocation_id=allocation.id, updated_at=utcnow())
        .returning(n.uuid, n.owner, n.lessee)
    ).all()
    if len(result) != 1:
        raise Conflict(f"Node {node_id} is associated with another instance or allocation.")
    if before != allocation.uuid:
        _instance_changed(conn, result[0], old=before, new=allocation.uuid)
    rows.update(conn, t.allocations, allocation.id, {"node_id": node_id, "state": ACTIVE})


def _instance_changed(conn: sa.Connection, node: Any, *, old: str | None, new: str | None) -> None:
    """The event log's row for a node whose ``instance_uuid`` an allocation changed
    (``node``: its uuid, owner and lessee as the UPDATE returned them)."""
    events.record_row(
        conn,
        node_uuid=node.uuid,
        owner=node.owner,
        lessee=node.lessee,
        type=events.UPDATED,
        changes={"instance_uuid": {"old": old, "new": new}},
    )


class AllocationGone(NotFound):
    """The allocation was deleted (or finished elsewhere) while it was processed."""

    def __init__(self, uuid: str) -> None:
        super().__init__(f"Allocation {uuid} could not be found.")
        self.uuid = uuid
