"""Node records: create, update, destroy, maintenance and traits.

Errors::

    InvalidInput   (400) unknown driver, interface or field; bad traits
    Conflict       (409) the node's state forbids the change; duplicate name
    NodeProtected  (403) deleting a protected node
    NotFound       (404) no such node or trait
    NodeLocked     (409) another task holds the node's lock
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from metalcast.conductor import sources
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire, try_acquire
from metalcast.context import current_request_id, project_of
from metalcast.db import allocations as repo_alloc
from metalcast.db import events, tables
from metalcast.db import repository as repo
from metalcast.db.models import JSONDict, Node
from metalcast.errors import Conflict, InvalidInput, NodeProtected
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.states import DELETE_ALLOWED, UPDATE_ALLOWED, WAIT, ProvisionState

PS = ProvisionState
#: columns only the conductor writes
_CONDUCTOR_ONLY = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "reservation",
        "provision_state",
        "target_provision_state",
        "provision_updated_at",
        "power_state",
        "target_power_state",
        "clean_step",
        "deploy_step",
        "service_step",
        "conductor_affinity",
        "allocation_id",
        "health",
    }
)
_INTERFACE_FIELDS = frozenset(f"{name}_interface" for name in INTERFACE_NAMES)
_MAX_TRAITS = 50
#: where a new node may start: enroll, or (old API microversions) available
_INITIAL_STATES = frozenset({PS.ENROLL.value, PS.MANAGEABLE.value, PS.AVAILABLE.value})


def _check_fields(values: Mapping[str, Any], *, creating: bool) -> None:
    allowed = set(tables.nodes.c.keys()) - _CONDUCTOR_ONLY
    if creating:
        allowed |= {"provision_state"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidInput(f"Cannot set node field(s): {', '.join(unknown)}.")


def create_node(rt: Runtime, values: JSONDict, *, user: str, admin: bool = False) -> Node:
    """Insert a node with its driver's default interfaces filled in (the repository
    encrypts its secrets); it starts in ``values["provision_state"]`` (default ``enroll``).
    ``admin``: the caller is a system administrator (:mod:`.sources`).

    Raises:
        InvalidInput: unknown driver, interface or field, or a bad initial state.
        NoValidHost: no live conductor serves the node's conductor group and driver.
        Conflict: the UUID, name or instance UUID is taken.
    """
    _check_fields(values, creating=True)
    values = dict(values)
    driver = values.get("driver")
    if not isinstance(driver, str) or not driver:
        raise InvalidInput("A node needs a 'driver' (its hardware type).")
    requested = {n: values.get(f"{n}_interface") for n in INTERFACE_NAMES}
    for name, impl in rt.registry.resolve_interfaces(driver, requested).items():
        values[f"{name}_interface"] = impl
    values["driver_info"] = _object("driver_info", values.get("driver_info") or {})
    values["driver_internal_info"] = sources.track(
        values.get("driver_internal_info") or {},
        before={},
        after=values.get("instance_info") or {},
        admin=admin,
    )
    if rt.ring is not None:
        rt.ring.check_served(group=str(values.get("conductor_group") or ""), hardware_type=driver)
    state = values.get("provision_state") or PS.ENROLL.value
    if state not in _INITIAL_STATES:
        raise InvalidInput(f"A node cannot be created in provision state '{state}'.")
    values.update(provision_state=state, provision_updated_at=rt.clock.now())
    with rt.db.begin() as conn:
        node = repo.create_node(conn, values)
        repo.add_history(
            conn,
            node,
            event=f"created in state '{state}' with driver {driver} by {user}",
            event_type="created",
            conductor=rt.hostname,
            user=user,
            project=project_of(user),
        )
        events.record_created(conn, node, request_id=current_request_id())
    return node


def update_node(
    rt: Runtime,
    node_id: int,
    *,
    values: JSONDict,
    user: str,
    reset_interfaces: bool = False,
    admin: bool = False,
) -> Node:
    """Write the changed fields under the node's lock, checking driver and interface
    changes against the node's state, the unique name and instance UUID, and keeping
    masked secrets as stored.  ``admin``: the caller is a system administrator, which
    decides how the image sources it changes are fetched (:mod:`.sources`).

    On a driver change the node keeps its interfaces, each of which the new hardware
    type must support, unless ``reset_interfaces``: then every interface not in
    ``values`` takes the new type's default (Ironic's ``reset_interfaces``, 1.45).

    Raises:
        InvalidInput: unknown field, driver or interface; an interface the new driver
            does not support; ``reset_interfaces`` without a driver change.
        NoValidHost: no live conductor serves the new conductor group and driver.
        Conflict: the node's state forbids the change; instance already associated;
            the name or instance UUID is another node's.
        NodeLocked, NotFound: from the lock.
    """
    _check_fields(values, creating=False)
    # anywhere: a node of a group without a live conductor can be moved to one
    with acquire(rt, node_id, user=user, purpose="node update", anywhere=True) as task:
        node = task.node
        changes = {k: v for k, v in values.items() if getattr(node, k) != v}
        if rt.ring is not None and {"conductor_group", "driver"} & set(changes):
            rt.ring.check_served(
                group=changes.get("conductor_group", node.conductor_group),
                hardware_type=changes.get("driver", node.driver),
            )
        if reset_interfaces and "driver" not in changes:
            raise InvalidInput(
                "The reset_interfaces parameter can only be used when changing the node's driver."
            )
        if "driver_info" in changes:
            # a masked secret sent back is kept as stored by the repository
            changes["driver_info"] = _object("driver_info", changes["driver_info"])
        if "driver" in changes or _INTERFACE_FIELDS & set(changes):
            given = {k: v for k, v in values.items() if k in _INTERFACE_FIELDS}
            changes.update(
                _interface_changes(rt, node, changes={**changes, **given}, reset=reset_interfaces)
            )
        _check_associated(node, changes)
        _check_protected(node, changes)
        _check_retired(node, changes)
        if "instance_info" in changes:
            changes["driver_internal_info"] = sources.track(
                changes.get("driver_internal_info", node.driver_internal_info),
                before=node.instance_info,
                after=changes["instance_info"],
                admin=admin,
            )
        changes = {k: v for k, v in changes.items() if getattr(node, k) != v}
        if not changes:
            return node
        with rt.db.begin() as conn:
            _check_allocation(conn, node, changes)
            repo.update_node(conn, node.id, changes)  # checks the unique name, instance UUID
            updated = repo.get_node_by_id(conn, node.id)
            _record_update(conn, before=node, after=updated)
            return updated


def _record_update(conn: sa.Connection, *, before: Node, after: Node) -> None:
    """An event for the watched fields a node update changed (owner, lessee, ...)."""
    changes = events.diff(events.watched(before), events.watched(after))
    if changes:
        events.record(
            conn, after, type=events.UPDATED, changes=changes, request_id=current_request_id()
        )


def _object(name: str, value: Any) -> JSONDict:
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be an object.")
    return value


def _interface_changes(rt: Runtime, node: Node, *, changes: JSONDict, reset: bool) -> JSONDict:
    state = PS(node.provision_state)
    if state not in UPDATE_ALLOWED and not node.maintenance:
        fields = ", ".join(sorted(k for k in changes if k == "driver" or k in _INTERFACE_FIELDS))
        raise Conflict(
            f"Cannot change {fields} of node {node.uuid} in provision state '{state.value}'. "
            f"Allowed in: {', '.join(sorted(s.value for s in UPDATE_ALLOWED))}, "
            "or in maintenance mode."
        )
    driver = str(changes.get("driver", node.driver))
    requested: dict[str, str | None] = {}
    for name in INTERFACE_NAMES:
        key = f"{name}_interface"
        if key in changes:
            requested[name] = changes[key]
        elif not reset:
            requested[name] = node.interface(name)
    if driver != node.driver and not reset:
        _check_kept(rt, node, driver=driver, kept=set(requested) - _named(changes))
    resolved = rt.registry.resolve_interfaces(driver, requested)
    return {f"{name}_interface": impl for name, impl in resolved.items()}


def _named(changes: JSONDict) -> set[str]:
    return {name for name in INTERFACE_NAMES if f"{name}_interface" in changes}


def _check_kept(rt: Runtime, node: Node, *, driver: str, kept: set[str]) -> None:
    """Refuse a driver change that leaves the node with an interface the new
    hardware type does not support, naming it.  Raises InvalidInput."""
    hw = rt.registry.hardware_type(driver)
    for name in sorted(kept):
        impl = node.interface(name)
        supported = hw.names(name)
        if impl is not None and impl not in supported:
            raise InvalidInput(
                f"Hardware type '{driver}' does not support {name}_interface '{impl}' of node "
                f"{node.uuid} (supported: {', '.join(supported)}). Set {name}_interface in "
                "the same request, or add ?reset_interfaces=True to reset the interfaces "
                "not given to the new driver's defaults."
            )


def _check_associated(node: Node, changes: JSONDict) -> None:
    new = changes.get("instance_uuid")
    if new and node.instance_uuid and new != node.instance_uuid:
        raise Conflict(
            f"Node {node.uuid} is associated with instance {node.instance_uuid}; "
            "clear instance_uuid first."
        )


def _check_allocation(conn: sa.Connection, node: Node, changes: JSONDict) -> None:
    """What Ironic does for an allocated node: its owner stays while the allocation
    has one; removing ``instance_uuid`` deletes the allocation (only where updates
    are allowed or in maintenance).  Raises Conflict."""
    if node.allocation_id is None or not {"owner", "instance_uuid"} & set(changes):
        return
    allocation = repo_alloc.allocation_of_node(conn, node.id)
    if allocation is None:
        return
    if "owner" in changes and allocation.owner is not None:
        raise Conflict(
            f'Cannot update owner of node "{node.uuid}" while it is allocated to an '
            "allocation with an owner."
        )
    if "instance_uuid" in changes and changes["instance_uuid"] is None:
        state = PS(node.provision_state)
        if state not in UPDATE_ALLOWED and not node.maintenance:
            raise Conflict(
                f"Node {node.uuid} with an allocation can not have instance_uuid removed "
                "unless it is in one of allowed "
                f"({', '.join(sorted(s.value for s in UPDATE_ALLOWED))}) states or in "
                f"maintenance mode. Current state is '{state.value}'."
            )
        repo_alloc.destroy_allocation(conn, allocation.id)


def _check_protected(node: Node, changes: JSONDict) -> None:
    if changes.get("protected") and node.provision_state not in (PS.ACTIVE, PS.RESCUE):
        raise Conflict(
            f"Node {node.uuid} cannot be protected in provision state "
            f"'{node.provision_state}'; only active nodes can."
        )
    if changes.get("protected_reason") and not (changes.get("protected") or node.protected):
        raise InvalidInput("protected_reason can only be set on a protected node.")
    if changes.get("protected") is False:
        changes["protected_reason"] = None


def _check_retired(node: Node, changes: JSONDict) -> None:
    """Ironic's rules (1.61): an ``available`` node cannot be retired (it could be
    allocated meanwhile: move it to ``manageable`` first); a reason needs the flag;
    clearing the flag clears the reason."""
    if changes.get("retired") and not node.retired and node.provision_state == PS.AVAILABLE:
        raise Conflict(
            f"Node {node.uuid} can not have 'retired' set in provision state 'available'; "
            "move it to manageable first (target 'manage')."
        )
    if changes.get("retired_reason") and not changes.get("retired", node.retired):
        raise InvalidInput("The retired_reason field can only be set when retired is True.")
    if changes.get("retired") is False:
        changes["retired_reason"] = None


def destroy_node(rt: Runtime, node_id: int, *, user: str) -> None:
    """Delete the node with its ports, portgroups, traits and history.

    Raises:
        NodeProtected: the node is protected.
        Conflict: its state forbids deletion.
        NodeLocked, NotFound: from the lock.
    """
    with acquire(rt, node_id, user=user, purpose="node delete", anywhere=True) as task:
        node = task.node
        if node.protected:
            raise NodeProtected(node.uuid)
        state = PS(node.provision_state)
        if state not in DELETE_ALLOWED and not node.maintenance:
            raise Conflict(
                f"Node {node.uuid} is in state '{state.value}'; {_delete_hint(state)} "
                "(or put it in maintenance)."
            )
        with rt.db.begin() as conn:
            repo.destroy_node(conn, node.id)
            events.record(
                conn,
                node,
                type=events.DELETED,
                changes={"provision_state": {"old": node.provision_state, "new": None}},
                request_id=current_request_id(),
            )
        task.released = True  # the row, and with it the lock, is gone
    rt.discard_config_drive(node.uuid)


def _delete_hint(state: ProvisionState) -> str:
    if state in WAIT:
        return "abort it first"
    if state in (PS.ACTIVE, PS.DEPLOYFAIL, PS.ERROR, PS.RESCUE, PS.RESCUEFAIL, PS.UNRESCUEFAIL):
        return "undeploy it first"
    if state == PS.SERVICEFAIL:
        return "abort servicing, then undeploy it first"
    return "wait until it reaches a stable state, then move it to manageable"


def set_maintenance(
    rt: Runtime, node_id: int, *, enabled: bool, reason: str | None, user: str
) -> None:
    """Turn maintenance mode on or off (no lock needed: a stuck node must be
    markable).  Turning it off clears ``fault``.  Raises NotFound."""
    values: JSONDict = {"maintenance": enabled, "maintenance_reason": reason if enabled else None}
    if not enabled:
        values["fault"] = None
    text = f"maintenance {'on' if enabled else 'off'} by {user}"
    if enabled and reason:
        text += f": {reason}"
    with rt.db.begin() as conn:
        node = repo.get_node_by_id(conn, node_id)
        stored = repo.update_node(conn, node.id, values)  # the reason scrubbed
        before = events.watched(node)
        changes = events.diff(before, {**before, **stored})
        if changes:
            events.record(
                conn, node, type=events.UPDATED, changes=changes, request_id=current_request_id()
            )
        repo.add_history(
            conn,
            node.id,
            event=text,
            event_type="maintenance",
            conductor=rt.hostname,
            user=user,
            project=project_of(user),
        )
    if not enabled and "power_sync_failures" in node.driver_internal_info:
        _reset_power_sync_failures(rt, node_id, user=user)


def _reset_power_sync_failures(rt: Runtime, node_id: int, *, user: str) -> None:
    task = try_acquire(rt, node_id, user=user, purpose="maintenance off")
    if isinstance(task, NodeTask):
        with task:
            task.set_internal(power_sync_failures=None)
            task.save()


def _check_traits(traits: list[str]) -> None:
    for trait in traits:
        if not isinstance(trait, str) or not trait or len(trait) > 255:
            raise InvalidInput(f"Invalid trait {trait!r}: 1 to 255 characters expected.")


def set_traits(rt: Runtime, node_id: int, *, traits: list[str], replace: bool, user: str) -> None:
    """Replace the node's traits, or add to them.

    Raises:
        InvalidInput: a bad trait, or more than 50.
        NodeLocked, NotFound: from the lock.
    """
    _check_traits(traits)
    with acquire(rt, node_id, user=user, purpose="set traits") as task, rt.db.begin() as conn:
        current = [] if replace else repo.get_traits(conn, task.node.id)
        wanted = sorted(set(current) | set(traits))
        if len(wanted) > _MAX_TRAITS:
            raise InvalidInput(f"A node can have at most {_MAX_TRAITS} traits.")
        repo.set_traits(conn, task.node.id, wanted)


def remove_traits(rt: Runtime, node_id: int, *, traits: list[str] | None, user: str) -> None:
    """Remove the named traits (all when ``traits`` is None).

    Raises:
        NotFound: the node lacks one of them (nothing removed then).
        NodeLocked: from the lock.
    """
    with acquire(rt, node_id, user=user, purpose="remove traits") as task, rt.db.begin() as conn:
        if traits is None:
            repo.set_traits(conn, task.node.id, [])
            return
        for trait in traits:
            repo.remove_trait(conn, task.node.id, trait)
