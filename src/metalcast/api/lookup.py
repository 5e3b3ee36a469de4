"""Finding the resource a URL names, with the caller's right to see it checked.

Nodes are found by UUID or name; a node the caller may not see is "not found".
Ports, portgroups, volume connectors and volume targets inherit the visibility of
their node.  An allocation belongs to its ``owner`` project: another project's (or
an ownerless one, which is the admins') is "not found".

Errors: ``NotFound`` (404), ``Forbidden`` (403).
"""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.api import policy
from metalcast.api.endpoint import Call
from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db import volumes
from metalcast.db.models import Allocation, Node, Port, Portgroup, VolumeConnector, VolumeTarget
from metalcast.errors import InvalidInput, NotFound


def target(node: Node) -> policy.NodeTarget:
    return policy.NodeTarget(uuid=node.uuid, owner=node.owner, lessee=node.lessee)


def node(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Node:
    """The node ``ident`` names, if the caller may perform ``action`` on it."""
    found = repo.get_node(conn, ident)
    policy.enforce(call.context, action, node=target(found))
    return found


def port(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Port:
    """The port ``ident`` names, if the caller may perform ``action`` on its node."""
    found = repo.get_port(conn, ident)
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=f"Port {ident}")
    return found


def portgroup(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Portgroup:
    """The portgroup ``ident`` names, if the caller may act on its node."""
    found = repo.get_portgroup(conn, ident)
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=f"Portgroup {ident}")
    return found


def volume_connector(
    conn: sa.Connection, call: Call, *, ident: str, action: str
) -> VolumeConnector:
    """The volume connector ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_connector(conn, ident)
    what = f"Volume connector {ident}"
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=what)
    return found


def volume_target(conn: sa.Connection, call: Call, *, ident: str, action: str) -> VolumeTarget:
    """The volume target ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_target(conn, ident)
    what = f"Volume target {ident}"
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=what)
    return found


def project_node_ids(conn: sa.Connection, call: Call) -> list[int] | None:
    """Ids of the nodes a non-admin caller's project owns or leases (``None`` for an
    admin: no limit), for scoping lists of what belongs to nodes."""
    project = policy.project_scope(call.context)
    if project is None:
        return None
    n = t.nodes.c
    rows = conn.execute(sa.select(n.id).where(sa.or_(n.owner == project, n.lessee == project)))
    return [r.id for r in rows]


def _check_owner_node(
    conn: sa.Connection, call: Call, *, node_id: int, action: str, what: str
) -> None:
    if call.context.is_admin:
        return
    parent = repo.get_node_by_id(conn, node_id)
    try:
        policy.enforce(call.context, action, node=target(parent))
    except NotFound:
        raise NotFound(f"{what} could not be found.") from None


def node_in_body(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Node:
    """Like :func:`node`, for a node named in a request body (missing: 400)."""
    try:
        return node(conn, call, ident=ident, action=action)
    except NotFound as exc:
        raise InvalidInput(exc.message) from None


def allocation_target(found: Allocation) -> policy.NodeTarget:
    """Policy's view of an allocation: its owner project is the one that may act."""
    return policy.NodeTarget(uuid=found.uuid, owner=found.owner, lessee=None)


def check_allocation(call: Call, found: Allocation, *, action: str, what: str) -> None:
    """Raise unless the caller may perform ``action`` on ``found``.

    Raises:
        NotFound: the caller may not see the allocation (saying ``what``).
        Forbidden: the caller sees it but may not perform ``action``.
    """
    try:
        policy.enforce(call.context, "allocation:get", node=allocation_target(found))
    except NotFound:
        raise NotFound(f"{what} could not be found.") from None
    policy.enforce(call.context, action, node=allocation_target(found))


def allocation(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Allocation:
    """The allocation ``ident`` (UUID or name) names, if the caller may perform
    ``action`` on it."""
    found = repo_alloc.get_allocation(conn, ident)
    check_allocation(call, found, action=action, what=f"Allocation {ident}")
    return found
