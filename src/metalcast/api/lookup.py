"""Finding the resource a URL names, with the caller's right to see it checked.

Nodes are found by UUID or name.  Every object is checked as Ironic checks it: first
``baremetal:node:get`` on the node (the object's own node for ports, portgroups and
volume resources): refused, the object "could not be found" (404), whoever asks;
then the rule of the action on the same node: refused, 403.  An allocation is checked
the same way against its ``owner`` project, with ``baremetal:allocation:get`` first.

Errors: ``NotFound`` (404), ``Forbidden`` (403), ``InvalidInput`` (400: a node named
in a request body that does not exist, or that the caller may not link to).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from metalcast.api import policy
from metalcast.api.endpoint import Call
from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db import volumes
from metalcast.db.models import (
    Allocation,
    Node,
    NodeBrief,
    Port,
    Portgroup,
    VolumeConnector,
    VolumeTarget,
)
from metalcast.errors import InvalidInput, NotFound

NODE_GET = "baremetal:node:get"
ALLOCATION_GET = "baremetal:allocation:get"


def target(node: Node | NodeBrief | NodeOwners) -> dict[str, str]:
    """The policy target of ``node``."""
    return policy.node_target(node.owner, node.lessee)


def node(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Node:
    """The node ``ident`` names, if the caller may see it and perform ``action`` on it.

    Raises:
        NotFound: no such node, or the caller may not see it.
        Forbidden: the caller sees it but ``action`` refuses.
    """
    found = repo.get_node(conn, ident)
    _checked(call, found, ident, action)
    return found


def node_brief(conn: sa.Connection, call: Call, *, ident: str, action: str) -> NodeBrief:
    """:func:`node` for an action that needs only a :class:`NodeBrief` of it (its
    id, UUID, state and flags).  Raises as :func:`node`."""
    found = repo.get_node_brief(conn, ident)
    _checked(call, found, ident, action)
    return found


def node_columns(
    conn: sa.Connection, call: Call, *, ident: str, action: str, columns: tuple[str, ...]
) -> sa.RowMapping:
    """:func:`node` for a view that shows a few columns: those (with ``uuid``,
    ``owner`` and ``lessee``, which the checks need).  Raises as :func:`node`."""
    found = repo.get_node_columns(conn, ident, (*columns, *_CHECKED))
    _checked(call, NodeOwners(found["uuid"], found["owner"], found["lessee"]), ident, action)
    return found


#: what the checks of a node need of it
_CHECKED = ("uuid", "owner", "lessee")


@dataclass(frozen=True, slots=True)
class NodeOwners:
    """Who a node is for: what its checks need."""

    uuid: str
    owner: str | None
    lessee: str | None


def _checked(call: Call, found: Node | NodeBrief | NodeOwners, ident: str, action: str) -> None:
    call.audit.node(uuid=found.uuid)
    call.audit.resource(found.uuid)
    _check(call, found, action=action, hide=f"Node {ident} could not be found.")


def port(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Port:
    """The port ``ident`` names, if the caller may perform ``action`` on its node."""
    found = repo.get_port(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    _check(
        call, _parent(conn, found.node_id), action=action, hide=f"Port {ident} could not be found."
    )
    return found


def portgroup(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Portgroup:
    """The portgroup ``ident`` names, if the caller may act on its node."""
    found = repo.get_portgroup(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    hide = f"Portgroup {ident} could not be found."
    _check(call, _parent(conn, found.node_id), action=action, hide=hide)
    return found


def volume_connector(
    conn: sa.Connection, call: Call, *, ident: str, action: str
) -> VolumeConnector:
    """The volume connector ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_connector(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    hide = f"Volume connector {ident} could not be found."
    _check(call, _parent(conn, found.node_id), action=action, hide=hide)
    return found


def volume_target(conn: sa.Connection, call: Call, *, ident: str, action: str) -> VolumeTarget:
    """The volume target ``ident`` names, if the caller may act on its node."""
    found = volumes.get_volume_target(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    hide = f"Volume target {ident} could not be found."
    _check(call, _parent(conn, found.node_id), action=action, hide=hide)
    return found


def _parent(conn: sa.Connection, node_id: int) -> Node:
    return repo.get_node_by_id(conn, node_id)


def _note(call: Call, uuid: str, *, node_id: int | None) -> None:
    """Tell the audit log which resource (and node) the request addresses."""
    call.audit.resource(uuid)
    if node_id is not None:
        call.audit.node(node_id=node_id)


def _check(call: Call, found: Node | NodeBrief | NodeOwners, *, action: str, hide: str) -> None:
    # always the right to see the node first: who may not see it learns nothing more
    node_target = target(found)
    call.enforce(NODE_GET, node_target, hide=hide)
    if action != NODE_GET:
        call.enforce(action, node_target)


def listed_node_ids(conn: sa.Connection, call: Call, kind: str) -> list[int] | None:
    """Ids of the nodes whose ``kind`` objects (ports, portgroups, volume resources)
    a listing may show: None for all (``baremetal:<kind>:list_all``), else the nodes
    the caller's project owns or leases.

    Raises:
        Forbidden: the caller may not list ``kind`` objects at all.
    """
    project = call.list_scope(kind)
    if project is None:
        return None
    n = t.nodes.c
    rows = conn.execute(sa.select(n.id).where(sa.or_(n.owner == project, n.lessee == project)))
    return [r.id for r in rows]


def node_to_create_on(conn: sa.Connection, call: Call, *, ident: str, action: str) -> NodeBrief:
    """The node named in a create request's body, if ``action`` (a create rule) lets
    the caller create things on it.

    As in Ironic, the rule is checked against the node's owner and lessee before the
    node's existence is told: a caller the rule refuses gets 403 whether or not the
    node exists.

    Raises:
        Forbidden: the rule refuses (on this node, or on a node without owner).
        InvalidInput: the node does not exist.
    """
    try:
        found: NodeBrief | None = repo.get_node_brief(conn, ident)
    except NotFound as exc:
        found, missing = None, exc.message
    call.enforce(action, target(found) if found else policy.node_target(None, None))
    if found is None:
        raise InvalidInput(missing)
    return found


def node_to_link(conn: sa.Connection, call: Call, *, ident: str, current: Node, field: str) -> Node:
    """The node a PATCH moves a port, portgroup or volume resource to.

    Ironic's ``authorize_node_link``: the caller must see the new node, and it must
    have the owner of the current one; either way the refusal does not tell whether
    the node exists.

    Raises:
        InvalidInput: the node does not exist, the caller may not see it, or its
            owner differs from the current node's.
    """
    refusal = InvalidInput(
        f"Unable to apply the requested {field} '{ident}'. Requested value was invalid."
    )
    try:
        found = repo.get_node(conn, ident)
        call.enforce(NODE_GET, target(found), hide="")
    except NotFound:
        raise refusal from None
    if found.owner != current.owner:
        raise refusal
    return found


def allocation(conn: sa.Connection, call: Call, *, ident: str, action: str) -> Allocation:
    """The allocation ``ident`` (UUID or name) names, if the caller may see it and
    perform ``action`` on it (Ironic's ``check_allocation_policy_and_retrieve``).

    Raises:
        NotFound: no such allocation, or ``baremetal:allocation:get`` refuses the
            caller on it.
        Forbidden: the caller sees it but ``action`` refuses.
    """
    found = repo_alloc.get_allocation(conn, ident)
    _note(call, found.uuid, node_id=found.node_id)
    allocation_target = policy.allocation_target(found.owner)
    call.enforce(ALLOCATION_GET, allocation_target, hide=f"Allocation {ident} could not be found.")
    if action != ALLOCATION_GET:
        call.enforce(action, allocation_target)
    return found


def node_named(conn: sa.Connection, call: Call, *, ident: str) -> Node:
    """A node an allocation request names (``?node=``, a backfill's ``node``, the
    node of ``GET /v1/nodes/{node}/allocation``), if the caller may see it.

    Ironic answers 400 for a node that does not exist there; a node the caller may
    not see gets the same answer, so that it tells nothing about other projects'
    nodes (Ironic's 404 for those would).

    Raises:
        InvalidInput: the node does not exist, or the caller may not see it.
    """
    hide = f"Node {ident} could not be found."
    try:
        found = repo.get_node(conn, ident)
        call.enforce(NODE_GET, target(found), hide=hide)
    except NotFound:
        raise InvalidInput(hide) from None
    return found
