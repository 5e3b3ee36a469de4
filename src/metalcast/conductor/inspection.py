"""In-band inspection: what the conductor does with the inventory an agent reports.

:func:`receive` runs under the node's lock when the heartbeat carrying the
``get_inventory`` result arrives: it checks the inventory
(:mod:`metalcast.conductor.inventory`), refuses it when a NIC's MAC is another
node's port, else stores it, sets ``cpus``, ``memory_mb``, ``local_gb``,
``cpu_arch`` and the ``boot_mode`` capability, and creates a port for every NIC the
node did not have (the one it booted from ``pxe_enabled``), all in one transaction.
A refusal changes nothing but the node's state (``inspect failed``) and
``last_error``.  The inspection rules (:mod:`.inspection_rules`) then run on the
stored inventory and the node; a ``fail`` action, or a rule that cannot apply, fails
the inspection with the reason and none of the rules' changes.  :func:`finish` then
ends the inspection.
"""

from __future__ import annotations

from metalcast.conductor import direct, inspection_rules
from metalcast.conductor import inventory as inv
from metalcast.conductor.task import NodeTask
from metalcast.db import inventories
from metalcast.db import repository as repo
from metalcast.errors import Conflict
from metalcast.states import Event

#: what metalcast records as the plugin data of an inventory (Ironic's inspector
#: plugins' output; metalcast has none yet)
PLUGIN_DATA: dict[str, object] = {}


def receive(task: NodeTask, found: object) -> str | None:
    """Check and store ``found``; the reason it was refused, or ``None``."""
    try:
        inventory = inv.check(found)
    except inv.InvalidInventory as exc:
        return exc.message
    macs = inv.macs(inventory)
    boot = inv.boot_mac(inventory)
    try:
        with task.rt.db.begin() as conn:
            owners = inventories.port_owners(conn, macs)
            if any(owner != task.node.id for owner in owners.values()):
                # which node is not said: the tenant of this one may read the message
                return (
                    "The agent's inventory was refused: a NIC's MAC address belongs "
                    "to a port of another node; nothing was changed."
                )
            inventories.replace_inventory(conn, task.node.id, inventory, plugin_data=PLUGIN_DATA)
            created = [m for m in macs if m not in owners]
            for mac in created:
                repo.create_port(
                    conn, {"address": mac, "node_id": task.node.id, "pxe_enabled": mac == boot}
                )
    except Conflict as exc:  # a port created meanwhile
        return f"The agent's inventory was refused: {exc.message}"
    set_properties(task, inventory)
    ports = ", ".join(created) or "none"
    task.save(
        event=f"Inspection: inventory stored; ports created: {ports}", event_type="inspection"
    )
    return apply_rules(task, inventory)


def apply_rules(
    task: NodeTask, inventory: inv.Inventory, plugin_data: dict[str, object] = PLUGIN_DATA
) -> str | None:
    """Run the inspection rules (:mod:`.inspection_rules`) on what was stored (with
    ``plugin_data``): their changes, or the reason inspection fails (a ``fail``
    action, a rule that cannot apply: none of its changes is written)."""
    outcome = inspection_rules.apply_rules(task, inventory, plugin_data)
    if outcome.failure is not None:
        return f"Inspection rules: {outcome.failure}"
    if outcome.plugin_data != plugin_data:
        with task.rt.db.begin() as conn:
            inventories.replace_inventory(
                conn, task.node.id, inventory, plugin_data=outcome.plugin_data
            )
    return None


def set_properties(task: NodeTask, inventory: inv.Inventory) -> None:
    """``cpus``, ``memory_mb``, ``local_gb``, ``cpu_arch`` and the ``boot_mode``
    capability from ``inventory`` (written by the task's next save)."""
    props = dict(task.node.properties)
    props.update(inv.properties(inventory, hints=props.get("root_device")))
    mode = inv.boot_mode(inventory)
    if mode is not None:
        props["capabilities"] = inv.with_capability(props.get("capabilities"), "boot_mode", mode)
    task.update(properties=props)


def finish(task: NodeTask) -> None:
    """inspect wait → manageable: no more ramdisk boot, power off.
    Raises OperationFailed."""
    direct.leave_ramdisk(task)
    task.update(inspection_finished_at=task.rt.clock.now())
    task.process_event(Event.DONE)
