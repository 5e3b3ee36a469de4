"""Finding the resource a URL names, with the caller's right to see it checked.

Nodes are found by UUID or name; a node the caller may not see is "not found".
Ports, portgroups, volume connectors and volume targets inherit the visibility of
their node.

Errors: ``NotFound`` (404), ``Forbidden`` (403).
"""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.api import policy
from metalcast.api.endpoint import Call
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db import volumes
from metalcast.db.models import Node, Port, Portgroup, VolumeConnector, VolumeTarget
from metalcast.errors import InvalidInput, NotFound


def target(node: Node) -> policy.NodeTarget:
    return policy.NodeTarget(uuid=node.uuid, owner=node.owner, lessee=node.lessee)


def node(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Node:
    """The node ``ident`` names, if the caller may perform ``action`` on it."""
    found = repo.get_node(conn, ident)
    call.audit.node(uuid=found.uuid)
    call.audit.resource(found.uuid)
    policy.enforce(call.context, action, node=target(found))
    return found


def port(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Port:
    """The port ``ident`` names, if the caller may perform ``action`` on its node."""
    found = repo.get_port(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=f"Port {ident}")
    return found


def portgroup(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Portgroup:
    """The portgroup ``ident`` names, if the caller may act on its node."""
    found = repo.get_portgroup(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=f"Portgroup {ident}")
    return found


def volume_connector(
    conn: sa.Connection, call: Call, *, ident: str, action: str
) -> VolumeConnector:
    """The volume connector ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_connector(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    what = f"Volume connector {ident}"
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=what)
    return found


def volume_target(conn: sa.Connection, call: Call, *, ident: str, action: str) -> VolumeTarget:
    """The volume target ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_target(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    what = f"Volume target {ident}"
    _check_owner_node(conn, call, node_id=found.node_id, action=action, what=what)
    return found


def _note(call: Call, uuid: str, *, node_id: int | None) -> None:
    """Tell the audit log which resource (and node) the request addresses."""
    call.audit.resource(uuid)
    if node_id is not None:
        call.audit.node(node_id=node_id)


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
