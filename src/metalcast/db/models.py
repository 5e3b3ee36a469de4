"""Typed records for rows.  ``driver_info`` secrets stay encrypted in these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import RowMapping

JSONDict = dict[str, Any]


@dataclass(slots=True)
class Node:
    """A node row.  Mutated only by the conductor's task, then saved."""

    id: int
    uuid: str
    driver: str
    provision_state: str
    created_at: datetime
    name: str | None = None
    chassis_id: int | None = None
    instance_uuid: str | None = None
    driver_info: JSONDict = field(default_factory=dict)
    driver_internal_info: JSONDict = field(default_factory=dict)
    properties: JSONDict = field(default_factory=dict)
    instance_info: JSONDict = field(default_factory=dict)
    extra: JSONDict = field(default_factory=dict)
    power_state: str | None = None
    target_power_state: str | None = None
    target_provision_state: str | None = None
    provision_updated_at: datetime | None = None
    last_error: str | None = None
    maintenance: bool = False
    maintenance_reason: str | None = None
    fault: str | None = None
    reservation: str | None = None
    conductor_affinity: int | None = None
    conductor_group: str = ""
    console_enabled: bool = False
    inspection_started_at: datetime | None = None
    inspection_finished_at: datetime | None = None
    clean_step: JSONDict | None = None
    deploy_step: JSONDict | None = None
    service_step: JSONDict | None = None
    raid_config: JSONDict | None = None
    target_raid_config: JSONDict | None = None
    resource_class: str | None = None
    automated_clean: bool | None = None
    protected: bool = False
    protected_reason: str | None = None
    owner: str | None = None
    lessee: str | None = None
    description: str | None = None
    retired: bool = False
    retired_reason: str | None = None
    network_data: JSONDict | None = None
    allocation_id: int | None = None
    boot_mode: str | None = None
    secure_boot: bool | None = None
    shard: str | None = None
    parent_node: str | None = None
    disable_power_off: bool = False
    instance_name: str | None = None
    health: str | None = None
    bios_interface: str | None = None
    boot_interface: str | None = None
    console_interface: str | None = None
    deploy_interface: str | None = None
    firmware_interface: str | None = None
    inspect_interface: str | None = None
    management_interface: str | None = None
    network_interface: str | None = None
    power_interface: str | None = None
    raid_interface: str | None = None
    rescue_interface: str | None = None
    storage_interface: str | None = None
    vendor_interface: str | None = None
    updated_at: datetime | None = None

    def interface(self, name: str) -> str | None:
        """The implementation chosen for interface ``name`` (e.g. ``"power"``)."""
        value: str | None = getattr(self, f"{name}_interface")
        return value


@dataclass(frozen=True, slots=True)
class NodeBrief:
    """What checks need of a node (who may act on it, whether its state allows an
    action), read without the JSON and date columns a whole :class:`Node` decodes:
    a create on a node, a verb refused before its lock is taken."""

    id: int
    uuid: str
    name: str | None
    provision_state: str
    maintenance: bool
    protected: bool
    retired: bool
    owner: str | None
    lessee: str | None


@dataclass(slots=True)
class Port:
    id: int
    uuid: str
    address: str
    node_id: int
    created_at: datetime
    name: str | None = None
    portgroup_id: int | None = None
    local_link_connection: JSONDict = field(default_factory=dict)
    pxe_enabled: bool = True
    physical_network: str | None = None
    internal_info: JSONDict = field(default_factory=dict)
    extra: JSONDict = field(default_factory=dict)
    is_smartnic: bool = False
    description: str | None = None
    vendor: str | None = None
    category: str | None = None
    available_for_dynamic_portgroup: bool = True
    updated_at: datetime | None = None


@dataclass(slots=True)
class Portgroup:
    id: int
    uuid: str
    node_id: int
    created_at: datetime
    name: str | None = None
    address: str | None = None
    mode: str | None = None
    properties: JSONDict = field(default_factory=dict)
    standalone_ports_supported: bool = True
    internal_info: JSONDict = field(default_factory=dict)
    extra: JSONDict = field(default_factory=dict)
    physical_network: str | None = None
    category: str | None = None
    dynamic_portgroup: bool = False
    updated_at: datetime | None = None


@dataclass(slots=True)
class Chassis:
    id: int
    uuid: str
    created_at: datetime
    description: str | None = None
    extra: JSONDict = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(slots=True)
class Conductor:
    id: int
    hostname: str
    online: bool
    created_at: datetime
    conductor_group: str = ""
    hardware_types: list[str] = field(default_factory=list)
    rpc_url: str | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class HistoryEvent:
    id: int
    uuid: str
    node_id: int
    created_at: datetime
    severity: str
    event_type: str
    event: str
    conductor: str | None = None
    user: str | None = None
    project: str | None = None
    state: str | None = None
    target_provision_state: str | None = None
    duration_seconds: int | None = None


@dataclass(slots=True)
class VolumeConnector:
    """A node's initiator for remote volumes (an IQN, a WWPN, …)."""

    id: int
    uuid: str
    node_id: int
    type: str
    connector_id: str
    created_at: datetime
    extra: JSONDict = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(slots=True)
class VolumeTarget:
    """A remote volume a node boots from or attaches (``boot_index`` 0 boots)."""

    id: int
    uuid: str
    node_id: int
    volume_type: str
    boot_index: int
    volume_id: str
    created_at: datetime
    properties: JSONDict = field(default_factory=dict)
    extra: JSONDict = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(slots=True)
class FirmwareRecord:
    """One firmware component of a node, as its firmware interface last read it."""

    node_id: int
    component: str
    created_at: datetime
    initial_version: str | None = None
    current_version: str | None = None
    last_version_flashed: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class BiosSetting:
    """One BIOS setting of a node, as its BIOS interface last reported it."""

    node_id: int
    name: str
    value: str | None
    created_at: datetime
    updated_at: datetime | None = None


@dataclass(slots=True)
class Allocation:
    """A request for a node (API 1.52): ``state`` is ``allocating``, ``active`` (the
    node ``node_id`` is taken) or ``error`` (``last_error`` says why)."""

    id: int
    uuid: str
    state: str
    created_at: datetime
    name: str | None = None
    node_id: int | None = None
    owner: str | None = None
    last_error: str | None = None
    resource_class: str | None = None
    traits: list[str] = field(default_factory=list)
    #: UUIDs of the nodes the allocation may take (empty: any)
    candidate_nodes: list[str] = field(default_factory=list)
    extra: JSONDict = field(default_factory=dict)
    #: the id of the conductor processing it (``conductors.id``)
    conductor_affinity: int | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class DeployTemplate:
    """A named set of deploy steps (API 1.55)."""

    id: int
    uuid: str
    name: str
    created_at: datetime
    steps: list[JSONDict] = field(default_factory=list)
    extra: JSONDict = field(default_factory=dict)
    description: str | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Runbook:
    """A named list of clean or service steps (API 1.92)."""

    id: int
    uuid: str
    name: str
    created_at: datetime
    steps: list[JSONDict] = field(default_factory=list)
    disable_ramdisk: bool = False
    public: bool = False
    #: the project it belongs to; None for the system's (and every public) runbook
    owner: str | None = None
    extra: JSONDict = field(default_factory=dict)
    description: str | None = None
    traits: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass(slots=True)
class InspectionRule:
    """Conditions on inspection data and actions to take (API 1.96)."""

    id: int
    uuid: str
    priority: int
    phase: str
    sensitive: bool
    created_at: datetime
    description: str | None = None
    conditions: list[JSONDict] = field(default_factory=list)
    actions: list[JSONDict] = field(default_factory=list)
    updated_at: datetime | None = None


T = TypeVar("T")


def from_row(cls: type[T], row: RowMapping) -> T:
    """Build a record from a row mapping with the same keys."""
    return cls(**row)
