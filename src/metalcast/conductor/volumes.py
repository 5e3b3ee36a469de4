"""Volume connectors and targets: the remote volumes a node boots from or attaches.

As in Ironic, a connector or target may be created at any time, but changed or
deleted only while its node is powered off (the storage interface attaches volumes
when the node powers on, so changing them under a running node would leave it
using stale ones).  Changes and deletions run under the node's lock.

Errors::

    InvalidInput   (400) missing node; the node is not powered off
    Conflict       (409) duplicate type and connector ID, or boot index on the node
    NotFound       (404) no such node, connector or target
    NodeLocked     (409) another task holds the node's lock
"""

from __future__ import annotations

from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import acquire
from metalcast.db import repository as repo
from metalcast.db import volumes
from metalcast.db.models import JSONDict, Node, VolumeConnector, VolumeTarget
from metalcast.errors import InvalidInput
from metalcast.states import PowerState


def _node_of(rt: Runtime, values: JSONDict) -> Node:
    node_id = values.get("node_id")
    if not isinstance(node_id, int):
        raise InvalidInput("A volume connector or target needs the node it belongs to.")
    with rt.db.read() as conn:
        return repo.get_node_by_id(conn, node_id)


def _check_powered_off(node: Node, action: str, *, what: str) -> None:
    """``action`` ("volume connector deletion", as Ironic names it) on ``what`` needs
    the node powered off.  Raises InvalidInput with Ironic's message, and what to do."""
    if node.power_state != PowerState.OFF:
        raise InvalidInput(
            f'The requested action "{action}" can not be performed on node "{node.uuid}" '
            f'while it is in state "{node.power_state}": power it off first ({what}).'
        )


def _check_new_node(rt: Runtime, values: JSONDict, *, current: int, action: str, what: str) -> None:
    """A connector or target moved to another node: that node must be off too."""
    new_id = values.get("node_id", current)
    if new_id != current:
        _check_powered_off(_node_of(rt, values), action, what=what)


# ------------------------------------------------------------------------ connectors


def create_connector(rt: Runtime, values: JSONDict, *, user: str) -> VolumeConnector:
    """Add a volume connector to a node.

    Raises:
        InvalidInput, NotFound: no or unknown node.
        Conflict: the type and connector ID are taken.
    """
    _node_of(rt, values)
    with rt.db.begin() as conn:
        return volumes.create_volume_connector(conn, values)


def update_connector(
    rt: Runtime, connector_id: int, *, values: JSONDict, user: str
) -> VolumeConnector:
    """Change a connector while its node (and the node it moves to) is powered off.

    Raises:
        InvalidInput: a node is not powered off.
        Conflict, NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        connector = volumes.get_volume_connector_by_id(conn, connector_id)
    action, what = "volume connector update", f"volume connector {connector.uuid}"
    with acquire(rt, connector.node_id, user=user, purpose="volume connector update") as task:
        _check_powered_off(task.node, action, what=what)
        _check_new_node(rt, values, current=connector.node_id, action=action, what=what)
        with rt.db.begin() as conn:
            volumes.update_volume_connector(conn, connector.id, values)
            return volumes.get_volume_connector_by_id(conn, connector.id)


def destroy_connector(rt: Runtime, connector_id: int, *, user: str) -> None:
    """Delete a connector while its node is powered off.

    Raises:
        InvalidInput: the node is not powered off.
        NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        connector = volumes.get_volume_connector_by_id(conn, connector_id)
    with acquire(rt, connector.node_id, user=user, purpose="volume connector delete") as task:
        what = f"volume connector {connector.uuid}"
        _check_powered_off(task.node, "volume connector deletion", what=what)
        with rt.db.begin() as conn:
            volumes.destroy_volume_connector(conn, connector.id)


# --------------------------------------------------------------------------- targets


def create_target(rt: Runtime, values: JSONDict, *, user: str) -> VolumeTarget:
    """Add a volume target to a node.

    Raises:
        InvalidInput, NotFound: no or unknown node.
        Conflict: the node already has a target at that boot index.
    """
    _node_of(rt, values)
    with rt.db.begin() as conn:
        return volumes.create_volume_target(conn, values)


def update_target(rt: Runtime, target_id: int, *, values: JSONDict, user: str) -> VolumeTarget:
    """Change a target while its node (and the node it moves to) is powered off.

    Raises:
        InvalidInput: a node is not powered off.
        Conflict, NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        target = volumes.get_volume_target_by_id(conn, target_id)
    action, what = "volume target update", f"volume target {target.uuid}"
    with acquire(rt, target.node_id, user=user, purpose="volume target update") as task:
        _check_powered_off(task.node, action, what=what)
        _check_new_node(rt, values, current=target.node_id, action=action, what=what)
        with rt.db.begin() as conn:
            volumes.update_volume_target(conn, target.id, values)
            return volumes.get_volume_target_by_id(conn, target.id)


def destroy_target(rt: Runtime, target_id: int, *, user: str) -> None:
    """Delete a target while its node is powered off.

    Raises:
        InvalidInput: the node is not powered off.
        NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        target = volumes.get_volume_target_by_id(conn, target_id)
    with acquire(rt, target.node_id, user=user, purpose="volume target delete") as task:
        what = f"volume target {target.uuid}"
        _check_powered_off(task.node, "volume target deletion", what=what)
        with rt.db.begin() as conn:
            volumes.destroy_volume_target(conn, target.id)
