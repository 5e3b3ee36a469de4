"""Auto-discovery: a machine no node knows reports its inventory and is enrolled.

With ``boot.discovery`` on, a machine whose MAC no port has that network-boots on
the provisioning network gets the deploy ramdisk; its agent finds no node by its
MACs and posts its inventory to ``POST /v1/continue_inspection`` (Ironic's
endpoint; the agent has no token, so the endpoint is public).  :func:`discover`
then, in this order:

1. checks the inventory exactly as in-band inspection does
   (:func:`metalcast.conductor.inventory.check`: size, shape, control characters,
   at most 64 NICs) and that it names at least one NIC, each MAC once;
2. takes one of the ``discovery.max_per_minute`` discoveries this conductor accepts;
3. in one transaction, refuses a machine any of whose MACs is a port already (a
   known machine, or a second report of one just discovered: nothing is changed,
   and which node is not said), else creates the node (``discovery.driver``, its
   BMC address from the inventory unless absent or loopback, the credentials of
   ``[discovery]`` sealed like any ``driver_info`` secret), stores the inventory,
   creates a port for every NIC (the one it booted from ``pxe_enabled``) and
   records ``created`` in its history and events;
4. under the new node's lock sets its properties from the inventory as inspection
   does and applies the inspection rules (a rule may set ``driver_info``, the BMC
   credentials included); a rule that fails the node leaves it in ``enroll`` with
   the reason in ``last_error``;
5. with ``discovery.state`` ``manageable``, starts the ``manage`` verb (``verifying``
   checks the BMC; a node whose BMC does not answer stays in ``enroll``).

The agent is told only the new node's UUID; it then powers its machine off.
Nothing here ever changes an existing node.

Errors::

    InvalidInventory    (400) the inventory is refused; nothing was stored
    InvalidInput        (400) the report is not {"inventory": {...}, ...} or has no NIC
    AlreadyEnrolled     (409) a NIC of the machine is a port already
    DiscoveryThrottled  (503) more than ``discovery.max_per_minute`` reports
    NoValidHost         (503) no conductor serves the discovery driver
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from metalcast.conductor import inspection
from metalcast.conductor import inventory as inv
from metalcast.conductor.flows import ProvisionOptions
from metalcast.conductor.provision import change_provision_state
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import acquire
from metalcast.config import DiscoverySettings
from metalcast.context import current_request_id
from metalcast.db import events, inventories
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.errors import Conflict, InvalidInput, MetalcastError, ServiceUnavailable

log = logging.getLogger("metalcast.conductor.discovery")

#: plugin data stored with a discovered node's inventory (ironic-inspector's flag);
#: nothing else of the report is kept but the inventory
PLUGIN_DATA: dict[str, object] = {"auto_discovered": True}
#: the ``driver_info`` key prefix of the hardware types that have a BMC address
_BMC_PREFIX = {"ipmi": "ipmi", "redfish": "redfish"}
WINDOW = 60.0
#: the answer while ``boot.discovery`` is off: the same as for any unknown path
DISCOVERY_OFF = "The resource could not be found."


class AlreadyEnrolled(Conflict):
    """A NIC of the reporting machine is a port of a node already."""

    def __init__(self) -> None:
        super().__init__(
            "This machine was not enrolled: a NIC of it is a port of a node already "
            "(it is known, or was discovered before). Nothing was changed; a known "
            "machine boots the deploy ramdisk only when metalcast provisions it."
        )


class DiscoveryThrottled(ServiceUnavailable):
    """More discoveries than ``discovery.max_per_minute``."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"More than {limit} machines reported for discovery within a minute; "
            "this report was not taken. The agent tries again later."
        )


class RateLimit:
    """At most ``limit`` takes within any ``WINDOW`` seconds (thread-safe)."""

    def __init__(self, limit: int, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._monotonic = monotonic
        self._taken: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        """Take one.  Raises DiscoveryThrottled when ``limit`` were taken lately."""
        now = self._monotonic()
        with self._lock:
            while self._taken and now - self._taken[0] >= WINDOW:
                self._taken.popleft()
            if len(self._taken) >= self.limit:
                raise DiscoveryThrottled(self.limit)
            self._taken.append(now)


def discover(
    rt: Runtime, settings: DiscoverySettings, limit: RateLimit, report: object, *, user: str
) -> Node:
    """Enroll the machine of ``report`` (Ironic's ``{"inventory": {...}, ...}``); the
    new node, as the discovery left it.  See the module docstring.

    Raises:
        InvalidInventory, InvalidInput, AlreadyEnrolled, DiscoveryThrottled,
        NoValidHost.
    """
    if not isinstance(report, dict) or "inventory" not in report:
        raise InvalidInput('A discovery report is a JSON object with the machine\'s "inventory".')
    inventory = inv.check(report["inventory"])
    macs = inv.macs(inventory)
    if not macs:
        raise inv.InvalidInventory("it lists no NIC, so the machine cannot be told apart")
    if len(set(macs)) != len(macs):
        raise inv.InvalidInventory("it lists one MAC address for two NICs")
    if rt.ring is not None:
        rt.ring.check_served(group=rt.settings.conductor_group, hardware_type=settings.driver)
    limit.take()
    node = _enroll(rt, settings, inventory, user=user)
    log.info(
        "discovered machine enrolled as node %s (driver %s, MACs %s)",
        node.uuid,
        node.driver,
        ", ".join(macs),
    )
    failure = _inspect(rt, node, inventory, user=user)
    if settings.state == "manageable" and failure is None:
        _manage(rt, node, user=user)
    with rt.db.read() as conn:
        return repo.get_node_by_id(conn, node.id)


def driver_info(settings: DiscoverySettings, inventory: inv.Inventory) -> dict[str, Any]:
    """A discovered node's ``driver_info``: its BMC address from the inventory (none
    when absent, not an IP address, or loopback) and the credentials of
    ``settings``, under the keys of ``settings.driver``."""
    prefix = _BMC_PREFIX.get(settings.driver)
    if prefix is None:
        return {}
    info: dict[str, Any] = {}
    address = inv.bmc_address(inventory)
    if address is not None:
        info[f"{prefix}_address"] = address
    if settings.bmc_username is not None:
        info[f"{prefix}_username"] = settings.bmc_username
    if settings.bmc_password is not None:
        info[f"{prefix}_password"] = settings.bmc_password.get_secret_value()
    return info


def _enroll(
    rt: Runtime, settings: DiscoverySettings, inventory: inv.Inventory, *, user: str
) -> Node:
    """The node, its inventory, ports, history and event: all in one transaction,
    or nothing."""
    macs, boot = inv.macs(inventory), inv.boot_mac(inventory)
    values: dict[str, Any] = {
        "driver": settings.driver,
        "driver_info": driver_info(settings, inventory),
        "conductor_group": rt.settings.conductor_group,
        "resource_class": settings.resource_class,
        "provision_state": "enroll",
        "provision_updated_at": rt.clock.now(),
    }
    for name, impl in rt.registry.resolve_interfaces(settings.driver, {}).items():
        values[f"{name}_interface"] = impl
    with rt.db.begin() as conn:
        if inventories.port_owners(conn, macs):
            raise AlreadyEnrolled()
        try:
            node = repo.create_node(conn, values)
            for mac in macs:
                repo.create_port(
                    conn, {"address": mac, "node_id": node.id, "pxe_enabled": mac == boot}
                )
        except Conflict:  # the same machine's other report won the race
            raise AlreadyEnrolled() from None
        inventories.replace_inventory(conn, node.id, inventory, plugin_data=PLUGIN_DATA)
        repo.add_history(
            conn,
            node,
            event=_history_line(node, inventory, macs),
            event_type="discovery",
            conductor=rt.hostname,
            user=user,
        )
        events.record_created(conn, node, request_id=current_request_id())
    return node


def _history_line(node: Node, inventory: inv.Inventory, macs: list[str]) -> str:
    reported = inventory.get("bmc_address")
    bmc = inv.bmc_address(inventory)
    if bmc is not None:
        said = f"BMC address {bmc}"
    elif reported:
        said = "its BMC address ignored (not a usable IP address: loopback or unspecified)"
    else:
        said = "no BMC address reported"
    return (
        f"Discovered: enrolled in state 'enroll' with driver {node.driver} from the "
        f"inventory its agent reported; ports created: {', '.join(macs)}; {said}"
    )


def _inspect(rt: Runtime, node: Node, inventory: inv.Inventory, *, user: str) -> str | None:
    """Properties and inspection rules, as after an in-band inspection; the reason
    the rules failed the node (recorded in its ``last_error``), or None."""
    with acquire(rt, node.id, user=user, purpose="discovery") as task:
        inspection.set_properties(task, inventory)
        task.save(event="Discovery: properties set from the inventory", event_type="discovery")
        failure = inspection.apply_rules(task, inventory, PLUGIN_DATA)
        if failure is not None:
            task.update(last_error=f"Discovery: {failure}")
            task.save(event=f"Discovery: {failure}", event_type="discovery", severity="ERROR")
    return failure


def _manage(rt: Runtime, node: Node, *, user: str) -> None:
    """Start ``manage``; a node that cannot start it stays in ``enroll``, told why."""
    try:
        change_provision_state(rt, node.id, verb="manage", options=ProvisionOptions(), user=user)
    except MetalcastError as exc:
        with acquire(rt, node.id, user=user, purpose="discovery") as task:
            task.update(last_error=f"Discovery: cannot manage the node: {exc.message}")
            task.save(event="Discovery: manage refused", event_type="discovery", severity="ERROR")
