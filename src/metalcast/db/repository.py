"""Reads and writes of nodes, traits, history, ports, portgroups, chassis and
conductors.  Functions take a connection; the caller owns the transaction
(``Database.begin()``), so several writes commit together.  Volume resources live in
:mod:`metalcast.db.volumes`, BIOS settings in :mod:`metalcast.db.bios`, the row
mechanics they all share (paging, inserts, unique checks) in :mod:`metalcast.db.rows`.

Errors raised: ``NotFound`` (404) for a missing row, ``Conflict`` (409) for a
duplicate name, UUID or MAC, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import (
    Chassis,
    Conductor,
    HistoryEvent,
    JSONDict,
    Node,
    NodeBrief,
    Port,
    Portgroup,
    from_row,
)
from metalcast.db.rows import Page as Page
from metalcast.db.rows import canonical_uuid as canonical_uuid
from metalcast.db.rows import is_logical_name as is_logical_name
from metalcast.db.rows import is_uuid as is_uuid
from metalcast.db.rows import is_uuid_like as is_uuid_like
from metalcast.db.rows import new_uuid as new_uuid
from metalcast.db.rows import utcnow as utcnow
from metalcast.db.sealing import SEALED_COLUMNS
from metalcast.errors import Conflict, InvalidInput, NotFound
from metalcast.hashring import Member, Rings

#: the node columns holding secrets (sealed), which history texts are scrubbed of
SEALED_NODE_COLUMNS = SEALED_COLUMNS["nodes"]

# ----------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class NodeFilters:
    """Ironic's node list filters.  ``None`` means "do not filter on this"."""

    provision_state: str | None = None
    driver: str | None = None
    maintenance: bool | None = None
    associated: bool | None = None
    resource_class: str | None = None
    owner: str | None = None
    lessee: str | None = None
    conductor_group: str | None = None
    fault: str | None = None
    chassis_id: int | None = None
    retired: bool | None = None
    instance_uuid: str | None = None
    description_contains: str | None = None
    reserved: bool | None = None
    #: policy scoping: only nodes this project owns or leases
    project: str | None = None
    ids: Sequence[int] | None = field(default=None)
    #: leave out the nodes in these provision states (the power sync's)
    not_in_states: frozenset[str] | None = None
    #: only nodes whose console is (not) enabled (the conductor's console reopening)
    console_enabled: bool | None = None
    instance_name: str | None = None
    #: nodes in one of these shards
    shards: tuple[str, ...] | None = None
    #: nodes with a shard (True) or without (False)
    sharded: bool | None = None
    #: the children of the node of this UUID
    parent_node: str | None = None
    #: False: only nodes without a parent (unless ``parent_node`` is given), as
    #: Ironic's lists do without ``include_children``
    include_children: bool = True


def _node_where(query: sa.Select[Any], f: NodeFilters) -> sa.Select[Any]:
    n = t.nodes.c
    equal = {
        "provision_state": n.provision_state,
        "driver": n.driver,
        "maintenance": n.maintenance,
        "resource_class": n.resource_class,
        "owner": n.owner,
        "lessee": n.lessee,
        "conductor_group": n.conductor_group,
        "fault": n.fault,
        "chassis_id": n.chassis_id,
        "retired": n.retired,
        "instance_uuid": n.instance_uuid,
        "console_enabled": n.console_enabled,
        "instance_name": n.instance_name,
    }
    for name, col in equal.items():
        value = getattr(f, name)
        if value is not None:
            query = query.where(col == value)
    if f.associated is not None:
        query = query.where(
            n.instance_uuid.isnot(None) if f.associated else n.instance_uuid.is_(None)
        )
    if f.reserved is not None:
        query = query.where(n.reservation.isnot(None) if f.reserved else n.reservation.is_(None))
    return _node_where_more(query, f)


def _node_where_more(query: sa.Select[Any], f: NodeFilters) -> sa.Select[Any]:
    n = t.nodes.c
    if f.shards is not None:
        query = query.where(n.shard.in_(f.shards))
    if f.sharded is not None:
        query = query.where(n.shard.isnot(None) if f.sharded else n.shard.is_(None))
    if not f.include_children:
        query = query.where(
            n.parent_node == f.parent_node if f.parent_node else n.parent_node.is_(None)
        )
    elif f.parent_node is not None:
        query = query.where(n.parent_node == f.parent_node)
    if f.description_contains is not None:
        # case-insensitive on every database (SQLite's LIKE is, PostgreSQL's is not)
        query = query.where(n.description.icontains(f.description_contains, autoescape=True))
    if f.project is not None:
        query = query.where(sa.or_(n.owner == f.project, n.lessee == f.project))
    if f.not_in_states:
        query = query.where(n.provision_state.notin_(sorted(f.not_in_states)))
    if f.ids is not None:
        query = query.where(n.id.in_(list(f.ids)))
    return query


def create_node(conn: sa.Connection, values: JSONDict) -> Node:
    """Insert a node; ``values`` are column values (``uuid`` generated if absent).

    Raises:
        Conflict: the UUID, name or instance UUID is taken.
    """
    values = {"uuid": new_uuid(), **values}
    for key in ("driver_info", "driver_internal_info", "properties", "instance_info", "extra"):
        values.setdefault(key, {})
    return from_row(Node, rows.insert_unique(conn, t.nodes, "node", values))


def get_node(conn: sa.Connection, ident: str) -> Node:
    """The node with UUID or name ``ident``.  Raises ``NotFound``."""
    return from_row(Node, rows.get_by_ident(conn, t.nodes, ident, "Node"))


def get_node_by_id(conn: sa.Connection, node_id: int) -> Node:
    return rows.by_id(conn, t.nodes, Node, node_id, "Node")


#: the columns of a :class:`NodeBrief`
_BRIEF = tuple(f.name for f in fields(NodeBrief))


def get_node_brief(conn: sa.Connection, ident: str) -> NodeBrief:
    """:func:`get_node`, for checks: the few columns of a :class:`NodeBrief`.
    Raises ``NotFound``."""
    return NodeBrief(**rows.get_columns_by_ident(conn, t.nodes, ident, "Node", columns=_BRIEF))


def get_node_columns(conn: sa.Connection, ident: str, columns: tuple[str, ...]) -> sa.RowMapping:
    """:func:`get_node`, only ``columns`` of it (for a view that shows a few).
    Raises ``NotFound``."""
    return rows.get_columns_by_ident(conn, t.nodes, ident, "Node", columns=columns)


def get_node_brief_by_id(conn: sa.Connection, node_id: int) -> NodeBrief:
    """:func:`get_node_by_id`, for checks.  Raises ``NotFound``."""
    return rows.by_id(conn, t.nodes, NodeBrief, node_id, "Node", columns=_BRIEF)


def list_nodes(conn: sa.Connection, filters: NodeFilters, page: Page) -> list[Node]:
    """A page of nodes matching ``filters``."""
    query = rows.paginate(conn, t.nodes, _node_where(sa.select(t.nodes), filters), page)
    return [from_row(Node, r) for r in conn.execute(query).mappings()]


def list_node_rows(
    conn: sa.Connection, filters: NodeFilters, *, page: Page, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """A page of nodes matching ``filters`` as plain ``{column: value}`` rows holding
    only ``columns``: what list views render, without the cost of building
    :class:`Node` records and of reading columns nobody shows.

    Raises:
        InvalidInput: an unknown column or sort key, or a marker that is not a node.
    """
    unknown = sorted(set(columns) - set(t.nodes.c.keys()))
    if unknown:
        raise InvalidInput(f"Unknown node column(s): {', '.join(unknown)}.")
    selected = sa.select(*(t.nodes.c[name] for name in columns))
    result = conn.execute(rows.paginate(conn, t.nodes, _node_where(selected, filters), page))
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def shard_counts(conn: sa.Connection) -> list[tuple[str | None, int]]:
    """Each shard with its number of nodes (``None``: the nodes without one), the
    largest first."""
    n = t.nodes.c
    query = sa.select(n.shard, sa.func.count(n.id)).group_by(n.shard)
    found = [(row[0], int(row[1])) for row in conn.execute(query)]
    return sorted(found, key=lambda pair: (-pair[1], pair[0] or ""))


def count_nodes(conn: sa.Connection, filters: NodeFilters) -> int:
    query = _node_where(sa.select(sa.func.count()).select_from(t.nodes), filters)
    return int(conn.execute(query).scalar_one())


def update_node(conn: sa.Connection, node_id: int, values: JSONDict) -> JSONDict:
    """Write ``values`` into the node's row; the values as written (free text
    scrubbed, secrets sealed).

    Raises:
        Conflict: a new name or instance UUID is taken.
    """
    rows.check_unique(conn, t.nodes, "node", values, exclude_id=node_id)
    return rows.update(conn, t.nodes, node_id, values)


def save_node(
    conn: sa.Connection, node: Node, fields: Iterable[str], *, holder: str | None = None
) -> bool:
    """Write the named ``fields`` of ``node`` back to its row; ``node`` then holds
    them as stored (secrets sealed, free text scrubbed).  With ``holder``, only while
    ``holder`` holds the node's lock: False (nothing written) when it does not.

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = {name: getattr(node, name) for name in fields}
    node.updated_at = utcnow()
    if holder is None:
        written = rows.update(conn, t.nodes, node.id, values)
    else:
        written = rows.written(conn, t.nodes, values, row_id=node.id)
        unknown = written.keys() - t.nodes.c.keys()
        if unknown:  # as rows.update refuses them: they would be dropped silently
            raise sa.exc.CompileError(f"Unconsumed column names: {', '.join(sorted(unknown))}")
        params = {"updated_at": node.updated_at, **written, "node_id_": node.id, "holder_": holder}
        if conn.execute(rows.statement(_update_held), params).rowcount != 1:
            return False
    for name, value in written.items():
        setattr(node, name, value)
    return True


def _update_held() -> sa.Update:
    n = t.nodes.c
    return sa.update(t.nodes).where(
        n.id == sa.bindparam("node_id_"), n.reservation == sa.bindparam("holder_")
    )


def destroy_node(conn: sa.Connection, node_id: int) -> None:
    """Delete a node with everything that belongs to it: ports, portgroups, volume
    connectors and targets, BIOS settings, firmware components, traits, history and
    its allocation (as Ironic does; the API allows this only outside active states or
    in maintenance)."""
    owned = (
        t.allocations,
        t.ports,
        t.portgroups,
        t.volume_connectors,
        t.volume_targets,
        t.bios_settings,
        t.firmware_components,
        t.node_inventories,
        t.node_traits,
        t.node_history,
    )
    for table in owned:
        conn.execute(sa.delete(table).where(table.c.node_id == node_id))
    conn.execute(sa.delete(t.nodes).where(t.nodes.c.id == node_id))


def reserve_node(conn: sa.Connection, node_id: int, host: str) -> str | None:
    """Take the node's exclusive lock for ``host``.

    Returns ``None`` on success, else the host that holds the lock.
    """
    got = lock_node(conn, node_id, host)
    return None if isinstance(got, Node) else got


def lock_node(conn: sa.Connection, node_id: int, host: str) -> Node | str:
    """Take the node's exclusive lock for ``host``: the node as locked (one statement,
    ``UPDATE … RETURNING``), else the host that holds the lock.

    Raises:
        NotFound: no such node.
    """
    n = t.nodes.c
    row = conn.execute(rows.statement(_reserve), {"node_id": node_id, "host": host})
    locked = row.mappings().first()
    if locked is not None:
        return from_row(Node, locked)
    holder = conn.execute(sa.select(n.reservation).where(n.id == node_id)).scalar()
    if holder is None:
        # the lock was released between the two statements, or the node is gone
        exists = conn.execute(sa.select(n.id).where(n.id == node_id)).first()
        if exists is None:
            raise NotFound(f"Node {node_id} could not be found.")
        return lock_node(conn, node_id, host)
    return str(holder)


def release_node(conn: sa.Connection, node_id: int, host: str) -> bool:
    """Release the lock ``host`` holds on the node.  False if it did not hold it."""
    result = conn.execute(rows.statement(_release), {"node_id": node_id, "host": host})
    return result.rowcount == 1


def _reserve() -> sa.Update:
    n = t.nodes.c
    return (
        sa.update(t.nodes)
        .where(n.id == sa.bindparam("node_id"), n.reservation.is_(None))
        .values(reservation=sa.bindparam("host"))
        .returning(*t.nodes.c)
    )


def _release() -> sa.Update:
    n = t.nodes.c
    return (
        sa.update(t.nodes)
        .where(n.id == sa.bindparam("node_id"), n.reservation == sa.bindparam("host"))
        .values(reservation=None)
    )


def steal_node(conn: sa.Connection, node_id: int, *, host: str, holder: str) -> bool:
    """Move the node's lock from ``holder`` (a dead conductor) to ``host``; False when
    ``holder`` does not hold it any more (another conductor took it, or it was
    released)."""
    n = t.nodes.c
    result = conn.execute(
        sa.update(t.nodes).where(n.id == node_id, n.reservation == holder).values(reservation=host)
    )
    return result.rowcount == 1


def lock_holder(conn: sa.Connection, node_id: int) -> str | None:
    """Who holds the node's lock now (None: nobody, or no such node)."""
    n = t.nodes.c
    holder = conn.execute(sa.select(n.reservation).where(n.id == node_id)).scalar()
    return None if holder is None else str(holder)


def clear_power_target(conn: sa.Connection, node_id: int, *, target: str, last_error: str) -> bool:
    """Clear the ``target_power_state`` ``target`` of an unlocked node, recording
    ``last_error``; False when the node is locked or its target changed meanwhile."""
    n = t.nodes.c
    values = rows.written(
        conn, t.nodes, {"target_power_state": None, "last_error": last_error}, row_id=node_id
    )
    result = conn.execute(
        sa.update(t.nodes)
        .where(n.id == node_id, n.reservation.is_(None), n.target_power_state == target)
        .values(updated_at=utcnow(), **values)
    )
    return result.rowcount == 1


def reserved_by(conn: sa.Connection, host: str) -> list[Node]:
    """Every node whose lock ``host`` holds."""
    rows = conn.execute(sa.select(t.nodes).where(t.nodes.c.reservation == host)).mappings()
    return [from_row(Node, r) for r in rows]


def count_nodes_by_state(conn: sa.Connection) -> list[tuple[str, str | None, bool, int]]:
    """How many nodes there are of each (provision state, power state, maintenance):
    one grouped query, for the metrics."""
    n = t.nodes.c
    columns = (n.provision_state, n.power_state, n.maintenance)
    query = sa.select(*columns, sa.func.count()).group_by(*columns)
    return [(str(p), w, bool(m), int(c)) for p, w, m, c in conn.execute(query)]


def nodes_in_states(conn: sa.Connection, states: Iterable[str]) -> list[Node]:
    rows = conn.execute(
        sa.select(t.nodes).where(t.nodes.c.provision_state.in_(list(states)))
    ).mappings()
    return [from_row(Node, r) for r in rows]


def nodes_booted_by(
    conn: sa.Connection, conductor_ids: Iterable[int], *, states: Iterable[str]
) -> list[Node]:
    """The nodes in ``states`` whose boot the conductors ``conductor_ids`` prepared
    (``conductor_affinity``)."""
    n = t.nodes.c
    query = sa.select(t.nodes).where(
        n.provision_state.in_(list(states)), n.conductor_affinity.in_(list(conductor_ids))
    )
    return [from_row(Node, r) for r in conn.execute(query).mappings()]


# ---------------------------------------------------------------------------- traits


def get_traits(conn: sa.Connection, node_id: int) -> list[str]:
    nt = t.node_traits.c
    query = sa.select(nt.trait).where(nt.node_id == node_id).order_by(nt.trait)
    return [str(r) for r in conn.execute(query).scalars()]


def traits_for(conn: sa.Connection, node_ids: Sequence[int]) -> dict[int, list[str]]:
    """Traits of many nodes at once (for list responses)."""
    out: dict[int, list[str]] = {i: [] for i in node_ids}
    if not node_ids:
        return out
    for node_id, trait in conn.execute(rows.statement(_traits_of), {"ids": list(node_ids)}):
        out[node_id].append(trait)
    return out


def _traits_of() -> sa.Select[Any]:
    nt = t.node_traits.c
    ids: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
    return sa.select(nt.node_id, nt.trait).where(nt.node_id.in_(ids)).order_by(nt.trait)


def set_traits(conn: sa.Connection, node_id: int, traits: Iterable[str]) -> None:
    conn.execute(sa.delete(t.node_traits).where(t.node_traits.c.node_id == node_id))
    rows = [{"node_id": node_id, "trait": trait} for trait in sorted(set(traits))]
    if rows:
        conn.execute(sa.insert(t.node_traits), rows)


def add_trait(conn: sa.Connection, node_id: int, trait: str) -> None:
    if trait not in get_traits(conn, node_id):
        conn.execute(sa.insert(t.node_traits).values(node_id=node_id, trait=trait))


def remove_trait(conn: sa.Connection, node_id: int, trait: str) -> None:
    """Raises ``NotFound`` when the node does not have ``trait``."""
    nt = t.node_traits.c
    result = conn.execute(sa.delete(t.node_traits).where(nt.node_id == node_id, nt.trait == trait))
    if result.rowcount == 0:
        raise NotFound(f"Node {node_id} does not have trait {trait}.")


# ---------------------------------------------------------------------------- history


def add_history(
    conn: sa.Connection,
    node: Node | int,
    *,
    event: str,
    event_type: str,
    severity: str = "INFO",
    conductor: str | None = None,
    user: str | None = None,
    project: str | None = None,
) -> None:
    """Record one event in the node's history, its text scrubbed of secrets (URL
    passwords, ``password=…``, the node's own secrets): ``user`` and ``project`` name
    the caller whose request led to it.  ``node``: the node as the caller holds it
    (its secrets are then not read again), or its id."""
    known = None
    states: dict[str, Any] = {}
    if isinstance(node, Node):
        node_id, known = node.id, {c: getattr(node, c) for c in SEALED_NODE_COLUMNS}
        states = _history_states(node)
    else:
        node_id = node
    values = {
        **states,
        "uuid": new_uuid(),
        "node_id": node_id,
        "severity": severity,
        "event_type": event_type,
        "event": event,
        "conductor": conductor,
        "user": user,
        "project": project,
    }
    rows.insert(conn, t.node_history, values, node=known)


def _history_states(node: Node) -> dict[str, Any]:
    """The node's provision state and target when an event is recorded, and how long
    ago its provision state last changed (Ironic's ``duration_seconds``)."""
    since = node.provision_updated_at
    return {
        "state": node.provision_state,
        "target_provision_state": node.target_provision_state,
        "duration_seconds": None
        if since is None
        else max(0, int((utcnow() - since).total_seconds())),
    }


def list_history(conn: sa.Connection, node_id: int, page: Page | None = None) -> list[HistoryEvent]:
    query = sa.select(t.node_history).where(t.node_history.c.node_id == node_id)
    query = rows.paginate(conn, t.node_history, query, page or Page(limit=10_000))
    return [from_row(HistoryEvent, r) for r in conn.execute(query).mappings()]


def get_history_event(conn: sa.Connection, node_id: int, event_uuid: str) -> HistoryEvent:
    """Raises ``InvalidInput`` for a UUID not in canonical form, ``NotFound``."""
    event_uuid = canonical_uuid(event_uuid)
    h = t.node_history.c
    row = (
        conn.execute(sa.select(t.node_history).where(h.node_id == node_id, h.uuid == event_uuid))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Node history record {event_uuid} could not be found.")
    return from_row(HistoryEvent, row)


# ------------------------------------------------------------- ports, portgroups, chassis


def create_port(conn: sa.Connection, values: JSONDict) -> Port:
    """Raises ``Conflict`` when the MAC address, name or UUID is taken."""
    values = {
        "uuid": new_uuid(),
        "local_link_connection": {},
        "internal_info": {},
        "extra": {},
        **values,
    }
    if "address" in values:
        values["address"] = str(values["address"]).lower()
    return from_row(Port, rows.insert_unique(conn, t.ports, "port", values))


def get_port(conn: sa.Connection, ident: str) -> Port:
    return from_row(Port, rows.get_by_ident(conn, t.ports, ident, "Port"))


def get_port_by_id(conn: sa.Connection, port_id: int) -> Port:
    return rows.by_id(conn, t.ports, Port, port_id, "Port")


@dataclass(frozen=True, slots=True)
class NodeScope:
    """Ports or portgroups of the nodes in these shards or conductor groups (Ironic's
    ``shard`` and ``conductor_groups`` filters of port and portgroup lists)."""

    shards: tuple[str, ...] | None = None
    conductor_groups: tuple[str, ...] | None = None

    def where(self, node_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        n = t.nodes.c
        nodes = sa.select(n.id)
        if self.shards is not None:
            nodes = nodes.where(n.shard.in_(self.shards))
        if self.conductor_groups is not None:
            nodes = nodes.where(sa.func.lower(n.conductor_group).in_(self.conductor_groups))
        return node_id.in_(nodes)


def list_ports(
    conn: sa.Connection,
    page: Page,
    *,
    node_id: int | None = None,
    portgroup_id: int | None = None,
    address: str | None = None,
    node_ids: Sequence[int] | None = None,
    of_nodes: NodeScope | None = None,
    description_contains: str | None = None,
) -> list[Port]:
    p = t.ports.c
    query = sa.select(t.ports)
    if of_nodes is not None:
        query = query.where(of_nodes.where(p.node_id))
    if description_contains is not None:
        query = query.where(p.description.icontains(description_contains, autoescape=True))
    if node_id is not None:
        query = query.where(p.node_id == node_id)
    if portgroup_id is not None:
        query = query.where(p.portgroup_id == portgroup_id)
    if address is not None:
        query = query.where(p.address == address.lower())
    if node_ids is not None:
        query = query.where(p.node_id.in_(list(node_ids)))
    return rows.records(conn, Port, rows.paginate(conn, t.ports, query, page))


def ports_of_node(conn: sa.Connection, node_id: int) -> list[Port]:
    """Every port of the node, oldest first (what each of its tasks reads)."""
    found = conn.execute(rows.statement(_ports_of_node), {"node_id": node_id}).mappings()
    return [from_row(Port, r) for r in found]


def _ports_of_node() -> sa.Select[Any]:
    p = t.ports.c
    return sa.select(t.ports).where(p.node_id == sa.bindparam("node_id")).order_by(p.id)


def update_port(conn: sa.Connection, port_id: int, values: JSONDict) -> None:
    if "address" in values:
        values = {**values, "address": str(values["address"]).lower()}
    rows.check_unique(conn, t.ports, "port", values, exclude_id=port_id)
    rows.update(conn, t.ports, port_id, values)


def destroy_port(conn: sa.Connection, port_id: int) -> None:
    conn.execute(sa.delete(t.ports).where(t.ports.c.id == port_id))


def create_portgroup(conn: sa.Connection, values: JSONDict) -> Portgroup:
    values = {"uuid": new_uuid(), "properties": {}, "internal_info": {}, "extra": {}, **values}
    if values.get("address"):
        values["address"] = str(values["address"]).lower()
    rows.check_unique(conn, t.portgroups, "portgroup", values)
    return get_portgroup_by_id(conn, rows.insert(conn, t.portgroups, values))


def get_portgroup(conn: sa.Connection, ident: str) -> Portgroup:
    return from_row(Portgroup, rows.get_by_ident(conn, t.portgroups, ident, "Portgroup"))


def get_portgroup_by_id(conn: sa.Connection, portgroup_id: int) -> Portgroup:
    return rows.by_id(conn, t.portgroups, Portgroup, portgroup_id, "Portgroup")


def list_portgroups(
    conn: sa.Connection,
    page: Page,
    *,
    node_id: int | None = None,
    address: str | None = None,
    node_ids: Sequence[int] | None = None,
    of_nodes: NodeScope | None = None,
) -> list[Portgroup]:
    """A page of portgroups; ``node_ids`` limits them to those nodes' (policy
    scoping, applied before paging so pages stay full)."""
    g = t.portgroups.c
    query = sa.select(t.portgroups)
    if of_nodes is not None:
        query = query.where(of_nodes.where(g.node_id))
    if node_id is not None:
        query = query.where(g.node_id == node_id)
    if address is not None:
        query = query.where(g.address == address.lower())
    if node_ids is not None:
        query = query.where(rows.ids_in(g.node_id, node_ids))
    return rows.records(conn, Portgroup, rows.paginate(conn, t.portgroups, query, page))


def update_portgroup(conn: sa.Connection, portgroup_id: int, values: JSONDict) -> None:
    rows.check_unique(conn, t.portgroups, "portgroup", values, exclude_id=portgroup_id)
    rows.update(conn, t.portgroups, portgroup_id, values)


def destroy_portgroup(conn: sa.Connection, portgroup_id: int) -> None:
    """Raises ``InvalidInput`` while ports still belong to the portgroup (Ironic's
    PortgroupNotEmpty is a 400 too)."""
    used = conn.execute(
        sa.select(t.ports.c.id).where(t.ports.c.portgroup_id == portgroup_id)
    ).first()
    if used is not None:
        uuid = get_portgroup_by_id(conn, portgroup_id).uuid
        raise InvalidInput(
            f"Cannot complete the requested action because portgroup {uuid} contains "
            "ports; remove them from it first."
        )
    conn.execute(sa.delete(t.portgroups).where(t.portgroups.c.id == portgroup_id))


def create_chassis(conn: sa.Connection, values: JSONDict) -> Chassis:
    values = {"uuid": new_uuid(), "extra": {}, **values}
    rows.check_unique(conn, t.chassis, "chassis", values)
    return get_chassis_by_id(conn, rows.insert(conn, t.chassis, values))


def get_chassis(conn: sa.Connection, ident: str) -> Chassis:
    return from_row(Chassis, rows.get_by_ident(conn, t.chassis, ident, "Chassis"))


def get_chassis_by_id(conn: sa.Connection, chassis_id: int) -> Chassis:
    return rows.by_id(conn, t.chassis, Chassis, chassis_id, "Chassis")


def list_chassis(conn: sa.Connection, page: Page) -> list[Chassis]:
    return rows.records(conn, Chassis, rows.paginate(conn, t.chassis, sa.select(t.chassis), page))


def update_chassis(conn: sa.Connection, chassis_id: int, values: JSONDict) -> None:
    rows.update(conn, t.chassis, chassis_id, values)


def destroy_chassis(conn: sa.Connection, chassis_id: int) -> None:
    """Raises ``Conflict`` while nodes are in the chassis."""
    used = conn.execute(sa.select(t.nodes.c.id).where(t.nodes.c.chassis_id == chassis_id)).first()
    if used is not None:
        raise Conflict(f"Chassis {chassis_id} contains nodes; remove them from it first.")
    conn.execute(sa.delete(t.chassis).where(t.chassis.c.id == chassis_id))


# ------------------------------------------------------------------------ conductors


def register_conductor(
    conn: sa.Connection,
    *,
    hostname: str,
    conductor_group: str,
    hardware_types: list[str],
    rpc_url: str | None = None,
) -> Conductor:
    """Insert or revive the conductor row for ``hostname`` and mark it online."""
    c = t.conductors.c
    values: JSONDict = {
        "conductor_group": conductor_group,
        "hardware_types": hardware_types,
        "online": True,
        "rpc_url": rpc_url,
        "updated_at": utcnow(),
    }
    existing = conn.execute(sa.select(c.id).where(c.hostname == hostname)).scalar()
    if existing is None:
        rows.insert(conn, t.conductors, {"hostname": hostname, **values})
    else:
        conn.execute(sa.update(t.conductors).where(c.id == existing).values(values))
    return get_conductor(conn, hostname)


def touch_conductor(conn: sa.Connection, hostname: str) -> None:
    c = t.conductors.c
    conn.execute(
        sa.update(t.conductors)
        .where(c.hostname == hostname)
        .values(updated_at=utcnow(), online=True)
    )


def unregister_conductor(conn: sa.Connection, hostname: str) -> None:
    c = t.conductors.c
    conn.execute(sa.update(t.conductors).where(c.hostname == hostname).values(online=False))


def get_conductor(conn: sa.Connection, hostname: str) -> Conductor:
    row = (
        conn.execute(sa.select(t.conductors).where(t.conductors.c.hostname == hostname))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Conductor {hostname} could not be found.")
    return from_row(Conductor, row)


def list_conductors(conn: sa.Connection) -> list[Conductor]:
    """Every registered conductor, oldest first (read for each node document shown)."""
    found = conn.execute(rows.statement(_all_conductors)).mappings()
    return [from_row(Conductor, r) for r in found]


def _all_conductors() -> sa.Select[Any]:
    return sa.select(t.conductors).order_by(t.conductors.c.id)


def conductor_is_alive(conductor: Conductor, *, timeout: float) -> bool:
    """Online and heard from within ``timeout`` seconds."""
    seen = conductor.updated_at or conductor.created_at
    return conductor.online and seen >= utcnow() - timedelta(seconds=timeout)


def conductor_rings(conn: sa.Connection, *, timeout: float) -> Rings:
    """The hash rings of the conductors heard from within ``timeout`` seconds."""
    return Rings(
        Member(c.hostname, c.conductor_group, tuple(c.hardware_types))
        for c in list_conductors(conn)
        if conductor_is_alive(c, timeout=timeout)
    )
