"""The wire types of docs/agent-protocol.md: what the agent sends and understands.

Both sides use this module: the conductor imports it (the one import of the agent
package that pyproject.toml's import contracts allow, as it is standard library only)
for the TypedDicts of a command, a result, a progress report, a heartbeat reply and
an inventory. Parsing an answer raises :class:`~metalcast_agent.errors.ApiError` when
metalcast sent something malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from metalcast_agent.errors import ApiError

API_VERSION = "1.36"  # the first with agent_version in heartbeats
VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
#: what a lookup answers instead of the token after the first lookup of a deployment
MASKED_TOKEN = "******"
#: the header the agent sends its token in with every download (the boot server checks
#: it against the URL's signature; metalcast.agent_downloads.TOKEN_HEADER on that side)
TOKEN_HEADER = "X-Metalcast-Agent-Token"

Status = Literal["succeeded", "failed"]

#: Ironic's root-device hints, which also pick the physical disks of a software RAID
#: logical disk (``physical_disks``)
DEVICE_HINTS = ("name", "size", "model", "vendor", "serial", "wwn", "rotational")
#: the ``controller`` of a software RAID logical disk, as Ironic spells it
SOFTWARE_RAID = "software"
#: the RAID levels software RAID builds: Ironic's name -> (mdadm's level, fewest disks)
SOFTWARE_RAID_LEVELS: dict[str, tuple[str, int]] = {"0": ("0", 2), "1": ("1", 2), "1+0": ("10", 4)}


class CommandSpec(TypedDict):
    """A command handed out in a heartbeat answer."""

    id: str
    name: str
    args: dict[str, object]


class CommandResult(TypedDict):
    """A finished command, sent in every heartbeat until the conductor acks it."""

    id: str
    name: str
    status: Status
    result: dict[str, object]
    error: str | None


class ProgressReport(TypedDict):
    """The running command's progress: bytes done of total, bytes per second so far."""

    id: str
    name: str
    done: int
    total: int | None
    rate: float


class HeartbeatBody(TypedDict, total=False):
    """The JSON body of ``POST /v1/heartbeat/{node_uuid}``."""

    agent_token: str
    agent_version: str
    results: list[CommandResult]
    progress: ProgressReport
    log: list[str]


class HeartbeatReply(TypedDict):
    """The JSON body of a ``202`` heartbeat answer to a metalcast agent."""

    ack: list[str]
    command: CommandSpec | None
    heartbeat_interval: float


class InventoryCpu(TypedDict):
    """The CPUs (Ironic's ``inventory.cpu``)."""

    count: int
    model_name: str | None
    architecture: str
    flags: list[str]
    frequency: str | None


class InventoryMemory(TypedDict):
    """The memory (Ironic's ``inventory.memory``): ``total`` bytes the kernel sees,
    ``physical_mb`` installed."""

    total: int | None
    physical_mb: int | None


class InventoryDisk(TypedDict):
    """A whole disk (an item of Ironic's ``inventory.disks``)."""

    name: str
    size: int
    model: str | None
    serial: str | None
    wwn: str | None
    vendor: str | None
    rotational: bool
    by_path: str | None


@dataclass(frozen=True, slots=True)
class Disk:
    """A whole disk the agent may write to."""

    name: str  # "/dev/vda"
    size: int  # bytes
    model: str | None = None
    serial: str | None = None
    wwn: str | None = None
    vendor: str | None = None
    rotational: bool = False

    def to_json(self, *, by_path: str | None = None) -> InventoryDisk:
        """The disk as the inventory reports it."""
        return InventoryDisk(
            name=self.name,
            size=self.size,
            model=self.model,
            serial=self.serial,
            wwn=self.wwn,
            vendor=self.vendor,
            rotational=self.rotational,
            by_path=by_path,
        )


class InventoryInterface(TypedDict):
    """A NIC (an item of Ironic's ``inventory.interfaces``)."""

    name: str
    mac_address: str
    ipv4_address: str | None
    ipv6_address: str | None
    has_carrier: bool
    speed_mbps: int | None
    #: LLDP TLVs as [type, hex value] pairs, when the agent heard any
    lldp: list[list[object]] | None


class InventorySystem(TypedDict):
    """The DMI system information (Ironic's ``inventory.system_vendor``)."""

    manufacturer: str | None
    product_name: str | None
    serial_number: str | None
    uuid: str | None
    firmware: dict[str, str | None]


class InventoryBoot(TypedDict):
    """How the machine booted (Ironic's ``inventory.boot``)."""

    current_boot_mode: str
    pxe_interface: str | None


class Inventory(TypedDict):
    """The ``get_inventory`` result: Ironic's inventory format."""

    cpu: InventoryCpu
    memory: InventoryMemory
    disks: list[InventoryDisk]
    interfaces: list[InventoryInterface]
    system_vendor: InventorySystem
    boot: InventoryBoot
    bmc_address: str | None
    hostname: str


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """What the agent keeps of a ``200`` lookup answer."""

    node_uuid: str
    token: str | None
    heartbeat_interval: float | None


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    """What the agent keeps of a ``202`` heartbeat answer."""

    ack: tuple[str, ...]
    command: CommandSpec | None
    heartbeat_interval: float | None


def parse_lookup(data: object) -> LookupAnswer:
    """The node UUID, token (``None`` when masked) and interval of a lookup answer."""
    node = _mapping(data, "node") if isinstance(data, dict) else None
    uuid = node.get("uuid") if node is not None else None
    if not isinstance(uuid, str) or not uuid:
        raise ApiError(
            "Lookup answer has no node.uuid; is metalcast.api a metalcast API?", status=200
        )
    config = _mapping(data, "config") or {}
    token = config.get("agent_token")
    if not isinstance(token, str) or not token or token == MASKED_TOKEN:
        token = None
    metalcast = _mapping(config, "metalcast") or {}
    return LookupAnswer(uuid, token, _interval(metalcast.get("heartbeat_interval")))


def parse_discovered(data: object) -> str:
    """The UUID of the node a discovery report enrolled (``{"uuid": ...}``)."""
    uuid = data.get("uuid") if isinstance(data, dict) else None
    if not isinstance(uuid, str) or not uuid:
        raise ApiError(
            "Discovery answer has no uuid; is metalcast.api a metalcast API?", status=202
        )
    return uuid


def parse_heartbeat(data: object) -> HeartbeatAnswer:
    """The acknowledged result ids, next command and interval of a heartbeat answer."""
    if not isinstance(data, dict):
        return HeartbeatAnswer((), None, None)
    ack = data.get("ack")
    ids = tuple(i for i in ack if isinstance(i, str)) if isinstance(ack, list) else ()
    return HeartbeatAnswer(
        ids, _command(data.get("command")), _interval(data.get("heartbeat_interval"))
    )


def _command(data: object) -> CommandSpec | None:
    if not isinstance(data, dict):
        return None
    cid, name, args = data.get("id"), data.get("name"), data.get("args")
    if not isinstance(cid, str) or not isinstance(name, str) or not cid:
        raise ApiError("Heartbeat answer has a command without an id or a name", status=202)
    return CommandSpec(id=cid, name=name, args=dict(args) if isinstance(args, dict) else {})


def _mapping(data: object, key: str) -> dict[str, object] | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else None


def _interval(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= 3600 else None
