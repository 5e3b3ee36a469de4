"""RAID: the target configuration operators set, and what steps report applied.

An operator sets a node's ``target_raid_config`` (checked by the node's RAID
interface; ``{}`` clears it); the RAID interface's clean steps
(``create_configuration``, ``delete_configuration``) apply it and report the
result, which :func:`record_applied` stores as ``raid_config`` with the time, as
Ironic does, updating ``properties.local_gb`` from a sized root volume.

Errors::

    InvalidInput   (400) a malformed target RAID configuration
    NotFound       (404) the node's (or hardware type's) RAID interface is "no-raid";
                         Ironic answers 404 too, RAID being optional
    NodeLocked, NotFound: from the lock
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.conductor.interfaces import default_interface, interface_of, unsupported
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.db.models import JSONDict
from metalcast.drivers import raid, raid_agent
from metalcast.drivers.base import RAIDInterface
from metalcast.errors import InvalidInput, NotFound
from metalcast_agent.protocol import SOFTWARE_RAID, CommandSpec

#: the agent's commands whose result is the node's software RAID configuration (or
#: that destroy it: erase_metadata and erase_devices wipe the md superblocks at the
#: end of every disk)
AGENT_COMMANDS = frozenset(
    {"create_raid_configuration", "delete_raid_configuration", "erase_metadata", "erase_devices"}
)


def set_target_raid_config(rt: Runtime, node_id: int, *, config: JSONDict, user: str) -> None:
    """Store ``config`` as the node's target RAID configuration, under its lock,
    once its RAID interface accepts it; ``{}`` clears it (no check then).

    Raises:
        InvalidInput: the RAID interface refuses ``config``.
        NotFound: the node's RAID interface is a no-raid one (or no such node).
        NodeLocked: another task holds the lock.
    """
    with acquire(rt, node_id, user=user, purpose="set target RAID config") as task:
        if config:
            iface = interface_of(rt, task.node, cls=RAIDInterface)
            if not iface.implemented:
                raise NotFound(unsupported(task, "raid"))
            iface.validate_raid_config(config)
        task.update(target_raid_config=dict(config))
        what = f"set to {_summary(config)}" if config else "cleared"
        task.save(event=f"target RAID configuration {what} by {user}", event_type="raid")


def logical_disk_properties(rt: Runtime, hardware_type: str) -> dict[str, str]:
    """What a logical disk may say, described, for the hardware type's default RAID
    interface.

    Raises:
        NotFound: no such hardware type, or its default RAID interface is no-raid.
    """
    iface = default_interface(rt, hardware_type, cls=RAIDInterface)
    if not iface.implemented:
        raise NotFound(
            f"Driver {hardware_type} does not support RAID: its default raid interface is "
            f"'{iface.name}'."
        )
    return iface.logical_disk_properties()


def record_applied(task: NodeTask, config: Mapping[str, Any]) -> None:
    """Save ``config`` as the node's current RAID configuration (stamped
    ``last_updated``; ``{}``: none), and a sized root volume's size as
    ``properties.local_gb``, with a history row.

    Raises:
        TaskParked: the conductor is shutting down and parked this task.
    """
    applied = dict(config)
    if applied:
        applied["last_updated"] = task.rt.clock.now().isoformat()
    task.update(raid_config=applied)
    root = raid.root_volume(applied)
    size = None if root is None else root.get("size_gb")
    if isinstance(size, int) and not isinstance(size, bool):
        task.update(properties={**task.node.properties, "local_gb": size})
    what = f"is {_summary(applied)}" if applied else "was deleted"
    task.save(event=f"RAID configuration {what}", event_type="raid")


def record_from_agent(
    task: NodeTask, command: CommandSpec, result: Mapping[str, Any], *, summary: str = ""
) -> str | None:
    """Record what the agent's software RAID command ``command`` did to the node's
    RAID configuration, with ``summary`` after the history line's "succeeded"; the
    failure message when its report is malformed.

    Raises:
        TaskParked: the conductor is shutting down and parked this task.
    """
    name = command["name"]
    if name == "create_raid_configuration":
        try:
            applied = raid_agent.applied_config(command["args"], result)
        except InvalidInput as exc:
            return f"The agent's {name} report is not usable: {exc.message}"
        record_applied(task, applied)
    elif _wiped(task, command):
        record_applied(task, {})
    task.save(event=f"Agent: {name} succeeded{summary}", event_type="deploy")
    return None


def _wiped(task: NodeTask, command: CommandSpec) -> bool:
    """Whether ``command`` removed the node's software RAID: deleting it, or wiping
    the md superblocks at the end of every disk (erase_metadata or erase_devices of
    all disks)."""
    if command["name"] == "delete_raid_configuration":
        return True
    return command["args"].get("devices") is None and _software(task.node.raid_config)


def _software(config: Mapping[str, Any] | None) -> bool:
    disks = (config or {}).get("logical_disks") or []
    return any(isinstance(d, dict) and d.get("controller") == SOFTWARE_RAID for d in disks)


def _summary(config: Mapping[str, Any]) -> str:
    disks = config.get("logical_disks") or []
    levels = ", ".join(
        f"RAID {d.get('raid_level')} of {d.get('size_gb')} GiB"
        for d in disks
        if isinstance(d, dict)
    )
    return f"{len(disks)} logical disk(s): {levels}" if levels else f"{len(disks)} logical disk(s)"
