"""Everything the API may ask of a conductor, one typed request per operation.

The API builds a request and hands it to its conductor client
(:class:`metalcast.rpc.client.ConductorClient`: ``client.call(request, context=...)``);
the conductor executes it
(:meth:`metalcast.conductor.service.ConductorService.execute`).  Each request class
names its result type: ``ChangePowerState`` is a ``Call[None]``, ``CreateNode`` a
``Call[Node]``, so ``client.call(CreateNode(values), context=ctx)`` is typed ``Node``.

Requests hold plain data only (ints, floats, strings, bools, JSON objects and lists,
and the small frozen dataclasses below and in :mod:`metalcast.reports`), so that they
cross a process boundary as they are: :mod:`metalcast.rpc.codec` encodes them for the
conductor processes (``metalcast conductor``); the all-in-one server hands them over
in-process.  Fields that may carry secrets (node ``driver_info``, a
config drive, a rescue password, vendor method arguments, volume target properties)
are left out of the repr, which a log line or a traceback may show.

Executing a request may raise (see :mod:`metalcast.errors`): ``NotFound`` (404),
``InvalidInput`` / ``InvalidTransition`` (400), ``Conflict`` / ``NodeLocked`` (409),
``NoFreeWorker`` / ``ServiceUnavailable`` (503).  Asynchronous operations (provision
and power changes, console mode) return once the work is accepted (the node is locked
and its work state recorded); the API answers 202 then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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
from metalcast_agent.protocol import HeartbeatReply

T = TypeVar("T", covariant=True)


class Call(Generic[T]):
    """A request to a conductor whose result is a ``T``."""

    __slots__ = ()


# ---- what some requests carry or answer -------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """The body of PUT /v1/nodes/{node}/states/provision, validated."""

    verb: str
    configdrive: str | dict[str, Any] | None = field(default=None, repr=False)
    clean_steps: list[dict[str, Any]] | None = None
    deploy_steps: list[dict[str, Any]] | None = None
    service_steps: list[dict[str, Any]] | None = None
    rescue_password: str | None = field(default=None, repr=False)
    disable_ramdisk: bool | None = None
    #: the runbook asked for (its name or UUID); once the API has put its steps in
    #: ``clean_steps`` or ``service_steps``: its name and UUID, for the node's history
    runbook: str | None = None


@dataclass(frozen=True, slots=True)
class InterfaceValidation:
    """What one interface says of a node in ``node validate``."""

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
    #: the live conductors serving it
    hosts: list[str]
    #: per interface: enabled implementations (first = default)
    interfaces: Mapping[str, list[str]] = field(default_factory=dict)


# ---- nodes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateNode(Call[Node]):
    """Validate the driver and interfaces, fill defaults, insert the node.  ``values``
    are column values (``driver_info`` in clear; the conductor encrypts it)."""

    values: JSONDict = field(repr=False)


@dataclass(frozen=True, slots=True)
class UpdateNode(Call[Node]):
    """Write changed fields under the node's lock; checks the driver and interfaces
    when they change, that the node's state allows the change, and that a new name or
    instance UUID is free (409).  On a driver change the node keeps its interfaces
    (400 naming one the new driver lacks) unless ``reset_interfaces``, which resets
    those not in ``values`` to the new driver's defaults."""

    node_id: int
    values: JSONDict = field(repr=False)
    reset_interfaces: bool = False


@dataclass(frozen=True, slots=True)
class DestroyNode(Call[None]):
    """Delete a node (and its ports) if its state and protection allow it."""

    node_id: int


@dataclass(frozen=True, slots=True)
class ChangeProvisionState(Call[None]):
    """Start the transition ``request.verb`` asks for.  Asynchronous."""

    node_id: int
    request: ProvisionRequest


@dataclass(frozen=True, slots=True)
class ChangePowerState(Call[None]):
    """Start a power action (a :class:`metalcast.states.PowerTarget` value).
    Asynchronous."""

    node_id: int
    target: str
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ChangeBootMode(Call[None]):
    """Set the boot mode ("uefi" or "bios") through the BMC.  Asynchronous."""

    node_id: int
    mode: str


@dataclass(frozen=True, slots=True)
class ChangeSecureBoot(Call[None]):
    """Turn UEFI secure boot on or off through the BMC.  Asynchronous."""

    node_id: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class SetMaintenance(Call[None]):
    """Put a node in maintenance (with a reason) or take it out."""

    node_id: int
    enabled: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Validate(Call[dict[str, InterfaceValidation]]):
    """Ask every interface what it is missing."""

    node_id: int


# ---- management --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetBootDevice(Call[dict[str, Any]]):
    """``{"boot_device": ..., "persistent": ...}``."""

    node_id: int


@dataclass(frozen=True, slots=True)
class SetBootDevice(Call[None]):
    """Set the device the node boots from next (or always, ``persistent``)."""

    node_id: int
    device: str
    persistent: bool = False


@dataclass(frozen=True, slots=True)
class GetSupportedBootDevices(Call[list[str]]):
    """The boot devices the node's management interface can set."""

    node_id: int


@dataclass(frozen=True, slots=True)
class InjectNmi(Call[None]):
    """Send the node a non-maskable interrupt."""

    node_id: int


@dataclass(frozen=True, slots=True)
class GetVirtualMedia(Call[list[dict[str, Any]]]):
    """The node's virtual CDs and DVDs (``media_types``, ``inserted``, ``image``)."""

    node_id: int


@dataclass(frozen=True, slots=True)
class AttachVirtualMedia(Call[None]):
    """Insert ``image_url`` (http/https, no credentials: the API checked) into the
    node's virtual ``device_type``."""

    node_id: int
    device_type: str
    image_url: str


@dataclass(frozen=True, slots=True)
class DetachVirtualMedia(Call[None]):
    """Eject the node's virtual ``device_types`` (empty: all)."""

    node_id: int
    device_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListIndicators(Call[dict[str, dict[str, dict[str, Any]]]]):
    """The node's indicators: component -> name -> ``{"readonly", "states"}``."""

    node_id: int


@dataclass(frozen=True, slots=True)
class GetIndicatorState(Call[str]):
    """The state of the node's indicator ``name`` of ``component``."""

    node_id: int
    component: str
    name: str


@dataclass(frozen=True, slots=True)
class SetIndicatorState(Call[None]):
    """Set the node's indicator ``name`` of ``component`` to ``state``."""

    node_id: int
    component: str
    name: str
    state: str


@dataclass(frozen=True, slots=True)
class GetSensorsData(Call[dict[str, Any]]):
    """The node's sensor readings, by sensor type."""

    node_id: int


# ---- console, RAID -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetConsole(Call[ConsoleInfo]):
    """Whether the console is enabled, and how to reach it.  InvalidInput (400) when
    the node has no console interface."""

    node_id: int


@dataclass(frozen=True, slots=True)
class SetConsoleMode(Call[None]):
    """Start enabling or disabling the console.  Asynchronous; InvalidInput (400) when
    the node has no console interface."""

    node_id: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class ConsoleChunk:
    """Console output from ``offset`` on (``data`` base64-encoded), where the next
    read starts, how many bytes before ``offset`` are no longer kept, and whether a
    console still feeds the log."""

    data: str
    offset: int
    next_offset: int
    missed: int = 0
    open: bool = True


@dataclass(frozen=True, slots=True)
class ReadConsole(Call[ConsoleChunk]):
    """The node's console output from ``offset`` (None: all the log keeps), waiting
    up to ``wait`` seconds for some.  InvalidInput (400) without a console interface."""

    node_id: int
    offset: int | None = None
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class WriteConsole(Call[None]):
    """Type ``data`` (base64) at the node's console.  InvalidInput (400) when it is not
    enabled or takes no input."""

    node_id: int
    data: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CheckConsoleToken(Call[bool]):
    """Whether ``token`` (from GET .../states/console) opens this node's websocket
    console now."""

    node_id: int
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SetTargetRaidConfig(Call[None]):
    """Store the node's target RAID configuration once its RAID interface accepts it
    (InvalidInput, 400); ``{}`` clears it.  NotFound (404) when the node's RAID
    interface is no-raid."""

    node_id: int
    config: JSONDict


# ---- traits, vifs, vendor ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetTraits(Call[None]):
    """Replace the node's traits, or add to them when ``replace`` is false."""

    node_id: int
    traits: list[str]
    replace: bool = True


@dataclass(frozen=True, slots=True)
class RemoveTraits(Call[None]):
    """Remove the named traits (all of them when ``traits`` is None)."""

    node_id: int
    traits: list[str] | None = None


@dataclass(frozen=True, slots=True)
class VifList(Call[list[dict[str, Any]]]):
    """The VIFs attached to the node's ports and portgroups."""

    node_id: int


@dataclass(frozen=True, slots=True)
class VifAttach(Call[None]):
    """Attach a VIF (``{"id": ...}`` and options) to a free port or portgroup."""

    node_id: int
    vif: JSONDict


@dataclass(frozen=True, slots=True)
class VifDetach(Call[None]):
    """Detach a VIF from the node."""

    node_id: int
    vif_id: str


@dataclass(frozen=True, slots=True)
class VendorMethods(Call[dict[str, Any]]):
    """The vendor passthru methods of the node's vendor interface, described."""

    node_id: int


@dataclass(frozen=True, slots=True)
class VendorPassthru(Call[Any]):
    """Call one of the node's vendor passthru methods; its JSON result."""

    node_id: int
    method: str
    args: JSONDict = field(default_factory=dict, repr=False)


# ---- the ramdisk agent -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLookup(Call[str]):
    """The agent token of the node's current deployment: new at the first lookup,
    ``******`` afterwards.  Conflict (409) when no agent is expected."""

    node_id: int


@dataclass(frozen=True, slots=True)
class AgentHeartbeat(Call[HeartbeatReply]):
    """Record the agent's heartbeat; the reply for the agent (``ack``, its next
    ``command``, ``heartbeat_interval``).  Conflict (409) when the node is not in a
    state where an agent is expected, or is locked; Forbidden (403) for a bad token."""

    node_id: int
    report: AgentReport


@dataclass(frozen=True, slots=True)
class DiscoverMachine(Call[Node]):
    """Enroll the machine whose agent sent ``report`` (``POST
    /v1/continue_inspection``: its inventory) as a new node
    (:mod:`metalcast.conductor.discovery`).  NotFound (404) while discovery is off;
    InvalidInput (400) for a refused inventory; Conflict (409) for a machine a node
    has a NIC of; ServiceUnavailable (503) when too many machines report at once."""

    report: JSONDict


# ---- ports and portgroups (they change what the node boots from) ------------------


@dataclass(frozen=True, slots=True)
class CreatePort(Call[Port]):
    """Insert a port (column values)."""

    values: JSONDict


@dataclass(frozen=True, slots=True)
class UpdatePort(Call[Port]):
    """Write a port's changed fields under its node's lock."""

    port_id: int
    values: JSONDict


@dataclass(frozen=True, slots=True)
class DestroyPort(Call[None]):
    """Delete a port."""

    port_id: int


@dataclass(frozen=True, slots=True)
class CreatePortgroup(Call[Portgroup]):
    """Insert a portgroup (column values)."""

    values: JSONDict


@dataclass(frozen=True, slots=True)
class UpdatePortgroup(Call[Portgroup]):
    """Write a portgroup's changed fields under its node's lock."""

    portgroup_id: int
    values: JSONDict


@dataclass(frozen=True, slots=True)
class DestroyPortgroup(Call[None]):
    """Delete a portgroup."""

    portgroup_id: int


# ---- volume connectors and targets (changed only while the node is off) -----------


@dataclass(frozen=True, slots=True)
class CreateVolumeConnector(Call[VolumeConnector]):
    """Insert a volume connector (column values)."""

    values: JSONDict


@dataclass(frozen=True, slots=True)
class UpdateVolumeConnector(Call[VolumeConnector]):
    """Raises InvalidInput (400) unless the node is powered off."""

    connector_id: int
    values: JSONDict


@dataclass(frozen=True, slots=True)
class DestroyVolumeConnector(Call[None]):
    """Raises InvalidInput (400) unless the node is powered off."""

    connector_id: int


@dataclass(frozen=True, slots=True)
class CreateVolumeTarget(Call[VolumeTarget]):
    """Insert a volume target (column values; its properties may hold credentials)."""

    values: JSONDict = field(repr=False)


@dataclass(frozen=True, slots=True)
class UpdateVolumeTarget(Call[VolumeTarget]):
    """Raises InvalidInput (400) unless the node is powered off."""

    target_id: int
    values: JSONDict = field(repr=False)


@dataclass(frozen=True, slots=True)
class DestroyVolumeTarget(Call[None]):
    """Raises InvalidInput (400) unless the node is powered off."""

    target_id: int


# ---- allocations (they take and free nodes) ---------------------------------------


@dataclass(frozen=True, slots=True)
class CreateAllocation(Call[Allocation]):
    """Store an allocation (column values; ``candidate_nodes`` as UUIDs) and return it
    ``allocating``: a conductor finds it a node right after, ending it ``active`` or
    ``error``.  With ``node_id`` (backfill, 1.58) the deployed node is recorded as its
    at once and the allocation returned ``active``; InvalidInput (400) when the node
    does not match, Conflict (409) when it has another instance or allocation."""

    values: JSONDict
    node_id: int | None = None


@dataclass(frozen=True, slots=True)
class DestroyAllocation(Call[None]):
    """Delete an allocation and free its node.  Conflict (409) while the node is
    active and not in maintenance."""

    allocation_id: int


# ---- drivers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListHardwareTypes(Call[list[HardwareTypeInfo]]):
    """The enabled hardware types with the live conductors that serve them."""


@dataclass(frozen=True, slots=True)
class DriverProperties(Call[dict[str, str]]):
    """Every ``driver_info`` key the type's default interfaces take, with its
    description ("Required." first when it is required).  Raises NotFound."""

    hardware_type: str


@dataclass(frozen=True, slots=True)
class RaidLogicalDiskProperties(Call[dict[str, str]]):
    """What a logical disk of a target RAID configuration may say, described, for the
    type's default RAID interface.  Raises NotFound (no such type, or no RAID)."""

    hardware_type: str


@dataclass(frozen=True, slots=True)
class DriverVendorMethods(Call[dict[str, Any]]):
    """The type's own vendor passthru methods, described.  Raises NotFound."""

    hardware_type: str


@dataclass(frozen=True, slots=True)
class DriverVendorPassthru(Call[Any]):
    """Call one of the type's own vendor methods.  Raises NotFound, InvalidInput
    (unknown method, HTTP method it does not take, bad arguments)."""

    hardware_type: str
    method: str
    http_method: str
    args: JSONDict = field(default_factory=dict, repr=False)


# ---- the service -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IsAcceptingWork(Call[bool]):
    """False while the conductor shuts down."""
