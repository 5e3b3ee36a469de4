"""The conductor client interface: everything the API may ask of a conductor.

The API never imports the conductor; it calls a :class:`ConductorClient`.  In the
all-in-one server that is :class:`metalcast.rpc.local.LocalConductorClient`, which
calls the conductor in-process, the only client there is: no call crosses processes
yet.

Every method may raise (see :mod:`metalcast.errors`): ``NotFound`` (404),
``InvalidInput`` / ``InvalidTransition`` (400), ``Conflict`` / ``NodeLocked`` (409),
``NoFreeWorker`` / ``ServiceUnavailable`` (503).  Asynchronous methods return once the
work is accepted (the node is locked and its work state recorded); the API answers
202 then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from metalcast.context import RequestContext
from metalcast.db.models import (
    Allocation,
    JSONDict,
    Node,
    Port,
    Portgroup,
    VolumeConnector,
    VolumeTarget,
)
from metalcast.reports import AgentReport


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """The body of PUT /v1/nodes/{node}/states/provision, validated."""

    verb: str
    # secrets: left out of the repr, which a log line or a traceback may show
    configdrive: str | dict[str, Any] | None = field(default=None, repr=False)
    clean_steps: list[dict[str, Any]] | None = None
    deploy_steps: list[dict[str, Any]] | None = None
    service_steps: list[dict[str, Any]] | None = None
    rescue_password: str | None = field(default=None, repr=False)
    disable_ramdisk: bool | None = None


@dataclass(frozen=True, slots=True)
class InterfaceValidation:
    result: bool | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConsoleInfo:
    """What GET /v1/nodes/{node}/states/console says."""

    enabled: bool
    #: how to reach it (``{"type": ..., "url": ...}``), None while it is disabled
    info: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HardwareTypeInfo:
    """What GET /v1/drivers says of one hardware type."""

    name: str
    hosts: list[str]
    #: per interface: enabled implementations (first = default)
    interfaces: Mapping[str, list[str]] = field(default_factory=dict)


class ConductorClient(Protocol):
    """The conductor's API, as the API layer sees it."""

    # ---- nodes ---------------------------------------------------------------
    def create_node(self, values: JSONDict, *, context: RequestContext) -> Node:
        """Validate the driver and interfaces, fill defaults, insert the node.

        ``values`` are column values (``driver_info`` in clear; it is encrypted here).
        """

    def update_node(
        self,
        node_id: int,
        values: JSONDict,
        *,
        context: RequestContext,
        reset_interfaces: bool = False,
    ) -> Node:
        """Write changed fields under the node's lock; checks the driver and
        interfaces when they change, that the node's state allows the change, and
        that a new name or instance UUID is free (409).  On a driver change the node
        keeps its interfaces (400 naming one the new driver lacks) unless
        ``reset_interfaces``, which resets those not in ``values`` to the new
        driver's defaults."""

    def destroy_node(self, node_id: int, *, context: RequestContext) -> None:
        """Delete a node (and its ports) if its state and protection allow it."""

    def change_provision_state(
        self, node_id: int, request: ProvisionRequest, *, context: RequestContext
    ) -> None:
        """Start the transition ``request.verb`` asks for.  Asynchronous."""

    def change_power_state(
        self, node_id: int, target: str, *, timeout: float | None, context: RequestContext
    ) -> None:
        """Start a power action.  Asynchronous."""

    def set_maintenance(
        self, node_id: int, enabled: bool, *, reason: str | None, context: RequestContext
    ) -> None: ...

    def validate(self, node_id: int, *, context: RequestContext) -> dict[str, InterfaceValidation]:
        """Ask every interface what it is missing."""

    # ---- management -----------------------------------------------------------
    def get_boot_device(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        """``{"boot_device": ..., "persistent": ...}``."""

    def set_boot_device(
        self, node_id: int, device: str, *, persistent: bool, context: RequestContext
    ) -> None: ...

    def get_supported_boot_devices(self, node_id: int, *, context: RequestContext) -> list[str]: ...

    def inject_nmi(self, node_id: int, *, context: RequestContext) -> None: ...

    def get_sensors_data(self, node_id: int, *, context: RequestContext) -> dict[str, Any]: ...

    # ---- console, RAID -------------------------------------------------------------
    def get_console(self, node_id: int, *, context: RequestContext) -> ConsoleInfo:
        """Whether the console is enabled, and how to reach it.  Raises InvalidInput
        (400) when the node has no console interface."""

    def set_console_mode(self, node_id: int, enabled: bool, *, context: RequestContext) -> None:
        """Start enabling or disabling the console.  Asynchronous; InvalidInput (400)
        when the node has no console interface."""

    def set_target_raid_config(
        self, node_id: int, config: JSONDict, *, context: RequestContext
    ) -> None:
        """Store the node's target RAID configuration once its RAID interface accepts
        it (InvalidInput, 400); ``{}`` clears it.  NotFound (404) when the node's
        RAID interface is no-raid."""

    # ---- traits, vifs, vendor ---------------------------------------------------
    def set_traits(
        self, node_id: int, traits: list[str], *, replace: bool, context: RequestContext
    ) -> None:
        """Replace the node's traits, or add to them when ``replace`` is false."""

    def remove_traits(
        self, node_id: int, traits: list[str] | None, *, context: RequestContext
    ) -> None:
        """Remove the named traits (all of them when ``traits`` is None)."""

    def vif_list(self, node_id: int, *, context: RequestContext) -> list[dict[str, Any]]: ...

    def vif_attach(self, node_id: int, vif: JSONDict, *, context: RequestContext) -> None: ...

    def vif_detach(self, node_id: int, vif_id: str, *, context: RequestContext) -> None: ...

    def vendor_methods(self, node_id: int, *, context: RequestContext) -> dict[str, Any]: ...

    def vendor_passthru(
        self, node_id: int, method: str, args: JSONDict, *, context: RequestContext
    ) -> Any: ...

    # ---- the ramdisk agent ---------------------------------------------------------
    def agent_lookup(self, node_id: int, *, context: RequestContext) -> str:
        """The agent token of the node's current deployment: new at the first lookup,
        ``******`` afterwards.  Conflict (409) when no agent is expected."""

    def agent_heartbeat(
        self, node_id: int, report: AgentReport, *, context: RequestContext
    ) -> dict[str, Any]:
        """Record the agent's heartbeat; the reply for the agent (``ack``, its next
        ``command``, ``heartbeat_interval``).  Conflict (409) when the node is not in
        a state where an agent is expected, or is locked; Forbidden (403) for a bad
        token."""

    # ---- ports and portgroups (they change what the node boots from) ----------
    def create_port(self, values: JSONDict, *, context: RequestContext) -> Port: ...

    def update_port(self, port_id: int, values: JSONDict, *, context: RequestContext) -> Port: ...

    def destroy_port(self, port_id: int, *, context: RequestContext) -> None: ...

    def create_portgroup(self, values: JSONDict, *, context: RequestContext) -> Portgroup: ...

    def update_portgroup(
        self, portgroup_id: int, values: JSONDict, *, context: RequestContext
    ) -> Portgroup: ...

    def destroy_portgroup(self, portgroup_id: int, *, context: RequestContext) -> None: ...

    # ---- volume connectors and targets (changed only while the node is off) ----
    def create_volume_connector(
        self, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector: ...

    def update_volume_connector(
        self, connector_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector:
        """Raises InvalidInput (400) unless the node is powered off."""

    def destroy_volume_connector(self, connector_id: int, *, context: RequestContext) -> None:
        """Raises InvalidInput (400) unless the node is powered off."""

    def create_volume_target(
        self, values: JSONDict, *, context: RequestContext
    ) -> VolumeTarget: ...

    def update_volume_target(
        self, target_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeTarget:
        """Raises InvalidInput (400) unless the node is powered off."""

    def destroy_volume_target(self, target_id: int, *, context: RequestContext) -> None:
        """Raises InvalidInput (400) unless the node is powered off."""

    # ---- allocations (they take and free nodes) --------------------------------
    def create_allocation(
        self, values: JSONDict, *, node_id: int | None, context: RequestContext
    ) -> Allocation:
        """Store an allocation (column values; ``candidate_nodes`` as UUIDs) and
        return it ``allocating``: a conductor finds it a node right after, ending it
        ``active`` or ``error``.  With ``node_id`` (backfill, 1.58) the deployed node
        is recorded as its at once and the allocation returned ``active``;
        InvalidInput (400) when the node does not match, Conflict (409) when it has
        another instance or allocation."""

    def destroy_allocation(self, allocation_id: int, *, context: RequestContext) -> None:
        """Delete an allocation and free its node.  Conflict (409) while the node is
        active and not in maintenance."""

    # ---- drivers ----------------------------------------------------------------
    def list_hardware_types(self) -> list[HardwareTypeInfo]: ...

    def driver_properties(self, hardware_type: str) -> dict[str, str]:
        """Every ``driver_info`` key the type's default interfaces take, with its
        description ("Required." first when it is required).  Raises NotFound."""

    def raid_logical_disk_properties(self, hardware_type: str) -> dict[str, str]:
        """What a logical disk of a target RAID configuration may say, described, for
        the type's default RAID interface.  Raises NotFound (no such type, or no RAID)."""

    def driver_vendor_methods(self, hardware_type: str) -> dict[str, Any]:
        """The type's own vendor passthru methods, described.  Raises NotFound."""

    def driver_vendor_passthru(
        self, hardware_type: str, method: str, *, args: JSONDict, http_method: str
    ) -> Any:
        """Call one of the type's own vendor methods.  Raises NotFound, InvalidInput
        (unknown method, HTTP method it does not take, bad arguments)."""

    # ---- the service ----------------------------------------------------------------
    def is_accepting_work(self) -> bool:
        """False while the conductor shuts down."""
