"""Ports, portgroups and VIFs: what a node network-boots from and is attached to.

A VIF attached to a node is recorded on one of its free ports, in
``internal_info["tenant_vif_port_id"]``, as Ironic does, when the node's network
interface records VIFs; with one that does not (``noop``), attaching and detaching
change nothing and no VIF is listed, as with Ironic's noop interface.  Ports cannot be added to,
moved to or from, or re-addressed on an active node unless it is in maintenance.
All ports of a portgroup share one physical network (API 1.34).

Errors::

    InvalidInput   (400) missing node, port of another node's portgroup, no free port for
                         a VIF, VIF not attached
    Conflict       (409) duplicate MAC; active node; VIF already attached;
                         a port whose physical network differs from its portgroup's
    NotFound       (404) no such node, port or portgroup
    NodeLocked     (409) another task holds the node's lock
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from metalcast.conductor.interfaces import interface_of
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.db import repository as repo
from metalcast.db.models import JSONDict, Node, NodeBrief, Port, Portgroup
from metalcast.drivers.base import NetworkInterface
from metalcast.errors import Conflict, InvalidInput
from metalcast.states import ProvisionState

VIF_KEY = "tenant_vif_port_id"


def _node_id(values: JSONDict) -> int:
    node_id = values.get("node_id")
    if not isinstance(node_id, int):
        raise InvalidInput("A port or portgroup needs the node it belongs to (node_uuid).")
    return node_id


def _check_changeable(node: Node | NodeBrief, what: str) -> None:
    if node.provision_state == ProvisionState.ACTIVE and not node.maintenance:
        raise Conflict(
            f"Cannot {what} node {node.uuid} while it is active; put it in maintenance first."
        )


def _check_portgroup(rt: Runtime, portgroup_id: int | None, *, node_id: int) -> None:
    if portgroup_id is None:
        return
    with rt.db.read() as conn:
        group = repo.get_portgroup_by_id(conn, portgroup_id)
    if group.node_id != node_id:
        raise InvalidInput(
            f"Portgroup {group.uuid} belongs to another node; a port can only join a "
            "portgroup of its own node."
        )


def _check_physnet(
    rt: Runtime, port_id: int | None, *, portgroup_id: int | None, physnet: str | None
) -> None:
    """Every port of a portgroup is on the same physical network (API 1.34): a port
    may join, or change network within, a portgroup only if it matches the others."""
    if portgroup_id is None:
        return
    with rt.db.read() as conn:
        members = repo.list_ports(conn, repo.Page(limit=10_000), portgroup_id=portgroup_id)
        group = repo.get_portgroup_by_id(conn, portgroup_id)
    others = {p.physical_network for p in members if p.id != port_id}
    if others and others != {physnet}:
        theirs = ", ".join(sorted(str(n) for n in others))
        raise Conflict(
            f"Port with physical network {physnet} cannot become a member of portgroup "
            f"{group.uuid}, whose ports are on physical network {theirs}."
        )


def create_port(rt: Runtime, values: JSONDict, *, user: str) -> Port:
    """Add a port to a node.

    Raises:
        InvalidInput, NotFound: no or unknown node; portgroup of another node.
        Conflict: the MAC is taken, or the node is active.
    """
    with rt.db.read() as conn:
        node = repo.get_node_brief_by_id(conn, _node_id(values))
    _check_changeable(node, "add a port to")
    _check_portgroup(rt, values.get("portgroup_id"), node_id=node.id)
    _check_physnet(
        rt,
        None,
        portgroup_id=values.get("portgroup_id"),
        physnet=values.get("physical_network"),
    )
    with rt.db.begin() as conn:
        return repo.create_port(conn, values)


def update_port(rt: Runtime, port_id: int, *, values: JSONDict, user: str) -> Port:
    """Change a port under its node's lock.

    Raises:
        InvalidInput, NotFound, Conflict, NodeLocked: see the module docstring.
    """
    with rt.db.read() as conn:
        port = repo.get_port_by_id(conn, port_id)
    with acquire(rt, port.node_id, user=user, purpose="port update") as task:
        new_node_id = values.get("node_id", port.node_id)
        if new_node_id != port.node_id:
            _check_changeable(task.node, "move a port away from")
            with rt.db.read() as conn:
                _check_changeable(repo.get_node_by_id(conn, new_node_id), "move a port to")
        if "address" in values and str(values["address"]).lower() != port.address:
            _check_changeable(task.node, "change a port address of")
        group_id = values.get("portgroup_id", port.portgroup_id)
        _check_portgroup(rt, group_id, node_id=new_node_id)
        if "portgroup_id" in values or "physical_network" in values:
            physnet = values.get("physical_network", port.physical_network)
            _check_physnet(rt, port.id, portgroup_id=group_id, physnet=physnet)
        with rt.db.begin() as conn:
            repo.update_port(conn, port.id, values)
            return repo.get_port_by_id(conn, port.id)


def destroy_port(rt: Runtime, port_id: int, *, user: str) -> None:
    """Delete a port.

    Raises:
        Conflict: a VIF is attached and the node is active (not in maintenance).
        NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        port = repo.get_port_by_id(conn, port_id)
    with acquire(rt, port.node_id, user=user, purpose="port delete") as task:
        vif = port.internal_info.get(VIF_KEY)
        if vif:
            _check_changeable(task.node, f"delete port {port.uuid} (VIF {vif} attached) of")
        with rt.db.begin() as conn:
            repo.destroy_port(conn, port.id)


def create_portgroup(rt: Runtime, values: JSONDict, *, user: str) -> Portgroup:
    """Add a portgroup to a node.

    Raises:
        InvalidInput, NotFound: no or unknown node.  Conflict: name/address taken.
    """
    with rt.db.read() as conn:
        repo.get_node_brief_by_id(conn, _node_id(values))
    with rt.db.begin() as conn:
        return repo.create_portgroup(conn, values)


def update_portgroup(rt: Runtime, portgroup_id: int, *, values: JSONDict, user: str) -> Portgroup:
    """Change a portgroup under its node's lock.

    Raises:
        InvalidInput: moving a portgroup that still has ports to another node.
        Conflict, NodeLocked, NotFound: see the module docstring.
    """
    with rt.db.read() as conn:
        group = repo.get_portgroup_by_id(conn, portgroup_id)
    purpose = "portgroup update"
    with acquire(rt, group.node_id, user=user, purpose=purpose), rt.db.begin() as conn:
        new_node = values.get("node_id", group.node_id)
        if new_node != group.node_id:
            repo.get_node_by_id(conn, new_node)
            if repo.list_ports(conn, repo.Page(limit=1), portgroup_id=group.id):
                raise InvalidInput(
                    f"Portgroup {group.uuid} still has ports; remove them from it "
                    "before moving it to another node."
                )
        repo.update_portgroup(conn, group.id, values)
        return repo.get_portgroup_by_id(conn, group.id)


def destroy_portgroup(rt: Runtime, portgroup_id: int, *, user: str) -> None:
    """Delete a portgroup.  Raises InvalidInput while ports belong to it; NodeLocked."""
    with rt.db.read() as conn:
        group = repo.get_portgroup_by_id(conn, portgroup_id)
    purpose = "portgroup delete"
    with acquire(rt, group.node_id, user=user, purpose=purpose), rt.db.begin() as conn:
        repo.destroy_portgroup(conn, group.id)


# ---------------------------------------------------------------------------- VIFs


def _records_vifs(rt: Runtime, node: Node) -> bool:
    return interface_of(rt, node, cls=NetworkInterface).records_vifs


def vif_list(rt: Runtime, node_id: int) -> list[dict[str, Any]]:
    """The VIFs attached to the node: ``[{"id": ...}]``.  Raises NotFound."""
    with rt.db.read() as conn:
        node = repo.get_node_by_id(conn, node_id)
        if not _records_vifs(rt, node):
            return []
        ports = repo.list_ports(conn, repo.Page(limit=10_000), node_id=node_id)
        groups = _portgroups(conn, node_id)
    holders: list[Port | Portgroup] = [*groups, *ports]
    return [{"id": h.internal_info[VIF_KEY]} for h in holders if h.internal_info.get(VIF_KEY)]


def _portgroups(conn: sa.Connection, node_id: int) -> list[Portgroup]:
    return repo.list_portgroups(conn, repo.Page(limit=10_000), node_id=node_id)


def vif_attach(rt: Runtime, node_id: int, *, vif: JSONDict, user: str) -> None:
    """Attach VIF ``vif["id"]`` to a free port of the node (``vif["port_uuid"]`` picks
    one, ``vif["portgroup_uuid"]`` a portgroup instead: Ironic 1.67); with a network
    interface that records no VIFs, only check the id.

    Raises:
        InvalidInput: no VIF id, the named port is not the node's, or no port is free
            (interfaces that record VIFs).
        Conflict: already attached (interfaces that record VIFs).
        NodeLocked, NotFound: from the lock.
    """
    vif_id = vif.get("id")
    if not isinstance(vif_id, str) or not vif_id:
        raise InvalidInput("A VIF to attach needs an 'id'.")
    with acquire(rt, node_id, user=user, purpose="vif attach") as task:
        if not _records_vifs(rt, task.node):
            _log_unrecorded(task, f"VIF {vif_id} attached")
            return
        ports = task.ports()
        with rt.db.read() as conn:
            groups = _portgroups(conn, node_id)
        holders: list[Port | Portgroup] = [*ports, *groups]
        if any(h.internal_info.get(VIF_KEY) == vif_id for h in holders):
            raise Conflict(f"VIF {vif_id} is already attached to node {task.uuid}.")
        if vif.get("portgroup_uuid") is not None and vif.get("port_uuid") is None:
            group = _named_portgroup(groups, vif["portgroup_uuid"], node_uuid=task.uuid)
            with rt.db.begin() as conn:
                repo.update_portgroup(
                    conn, group.id, {"internal_info": {**group.internal_info, VIF_KEY: vif_id}}
                )
            return
        port = _free_port(ports, vif, node_uuid=task.uuid, vif_id=vif_id)
        with rt.db.begin() as conn:
            repo.update_port(
                conn, port.id, {"internal_info": {**port.internal_info, VIF_KEY: vif_id}}
            )


def _named_portgroup(groups: list[Portgroup], wanted: object, *, node_uuid: str) -> Portgroup:
    """The node's portgroup ``wanted`` (Ironic 1.67's ``portgroup_uuid``), free."""
    match = [g for g in groups if g.uuid == str(wanted).lower()]
    if not match:
        raise InvalidInput(f"Portgroup {wanted} does not belong to node {node_uuid}.")
    if match[0].internal_info.get(VIF_KEY):
        raise Conflict(f"Portgroup {wanted} of node {node_uuid} already has a VIF attached.")
    return match[0]


def _free_port(ports: list[Port], vif: JSONDict, *, node_uuid: str, vif_id: str) -> Port:
    wanted = vif.get("port_uuid")
    if wanted is not None:
        match = [p for p in ports if p.uuid == str(wanted).lower()]
        if not match:
            raise InvalidInput(f"Port {wanted} does not belong to node {node_uuid}.")
        if match[0].internal_info.get(VIF_KEY):
            raise Conflict(f"Port {wanted} of node {node_uuid} already has a VIF attached.")
        return match[0]
    free = [p for p in ports if not p.internal_info.get(VIF_KEY)]
    if not free:  # Ironic's NoFreePhysicalPorts: 400
        raise InvalidInput(
            f"Unable to attach VIF {vif_id}, not enough free physical ports on node {node_uuid}."
        )
    free.sort(key=lambda p: (not p.pxe_enabled, p.id))
    return free[0]


def _log_unrecorded(task: NodeTask, what: str) -> None:
    interface = task.node.interface("network")
    task.log.info("%s: %s; its network interface %r records no VIFs", task.uuid, what, interface)


def vif_detach(rt: Runtime, node_id: int, *, vif_id: str, user: str) -> None:
    """Detach a VIF from the node.

    Raises:
        InvalidInput: the VIF is not attached to this node (interfaces that record
            VIFs; with the others, detaching changes nothing).
        NodeLocked, NotFound: from the lock.
    """
    with acquire(rt, node_id, user=user, purpose="vif detach") as task:
        if not _records_vifs(rt, task.node):
            _log_unrecorded(task, f"VIF {vif_id} detached")
            return
        for port in task.ports():
            if port.internal_info.get(VIF_KEY) == vif_id:
                info = {k: v for k, v in port.internal_info.items() if k != VIF_KEY}
                with rt.db.begin() as conn:
                    repo.update_port(conn, port.id, {"internal_info": info})
                return
        with rt.db.read() as conn:
            groups = _portgroups(conn, node_id)
        for group in groups:
            if group.internal_info.get(VIF_KEY) == vif_id:
                info = {k: v for k, v in group.internal_info.items() if k != VIF_KEY}
                with rt.db.begin() as conn:
                    repo.update_portgroup(conn, group.id, {"internal_info": info})
                return
        raise InvalidInput(f"VIF {vif_id} is not attached to node {task.uuid}.")
