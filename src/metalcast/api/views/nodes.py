"""Nodes as Ironic's API shows them, per microversion.

Rendering is on the hot path (``GET /v1/nodes/detail`` of 1,000 nodes), so it works on
plain ``{column: value}`` rows rather than :class:`~metalcast.db.models.Node` records
(building those costs more than rendering), the set of fields for a version is
computed once (:func:`plan`), and plain columns are copied with one ``itemgetter``
call per node.  Every JSON field is shown through :func:`metalcast.secrecy.mask`:
secrets at any depth, sealed values and URL passwords come out as ``******``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa

from metalcast.api.operations import LINKS, UUID, array, nullable, resource, since, string
from metalcast.api.policy import NodeRedactions
from metalcast.api.versions import Version, shows
from metalcast.api.views.common import iso, links
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.allocations import allocation_uuids
from metalcast.db.models import Node
from metalcast.hashring import Rings
from metalcast.secrecy import mask
from metalcast.states import ProvisionState

#: field -> the feature that introduced it (None: from the first version)
FIELDS: dict[str, str | None] = {
    "uuid": None,
    "name": "node_name",
    "instance_uuid": None,
    "chassis_uuid": None,
    "driver": None,
    "driver_info": None,
    "driver_internal_info": "driver_internal_info",
    "properties": None,
    "instance_info": None,
    "extra": None,
    "power_state": None,
    "target_power_state": None,
    "provision_state": None,
    "target_provision_state": None,
    "provision_updated_at": None,
    "last_error": None,
    "maintenance": None,
    "maintenance_reason": None,
    "fault": "fault",
    "reservation": None,
    "console_enabled": None,
    "inspection_started_at": "inspect",
    "inspection_finished_at": "inspect",
    "clean_step": "clean_step",
    "deploy_step": "deploy_step",
    "service_step": "service",
    "raid_config": "raid_config",
    "target_raid_config": "raid_config",
    "resource_class": "resource_class",
    "network_interface": "network_interface",
    **{
        f"{name}_interface": "dynamic_interfaces"
        for name in ("boot", "console", "deploy", "inspect", "management", "power")
    },
    "raid_interface": "dynamic_interfaces",
    "vendor_interface": "dynamic_interfaces",
    "storage_interface": "storage_interface",
    "rescue_interface": "rescue",
    "bios_interface": "bios_interface",
    "firmware_interface": "firmware_interface",
    "traits": "traits",
    "conductor_group": "conductor_group",
    "conductor": "conductors",
    "automated_clean": "automated_clean",
    "protected": "protected",
    "protected_reason": "protected",
    "owner": "owner",
    "lessee": "lessee",
    "description": "description",
    "retired": "retired",
    "retired_reason": "retired",
    "network_data": "network_data",
    "allocation_uuid": "allocations",
    "boot_mode": "boot_mode",
    "secure_boot": "boot_mode",
    "shard": "shards",
    "parent_node": "child_nodes",
    "disable_power_off": "disable_power_off",
    "instance_name": "instance_name",
    "health": "health",
    "created_at": None,
    "updated_at": None,
}

#: the response document: the columns' types, but for the fields rendered from elsewhere
NODE = resource(
    "Node",
    FIELDS,
    table=t.nodes,
    special={
        "chassis_uuid": nullable(UUID),
        "allocation_uuid": nullable(UUID),
        "traits": array(string()),
        "conductor": nullable(string(description="The live conductor serving the node.")),
        "provision_state": nullable(
            string(
                enum=[state.value for state in ProvisionState],
                description="null means available before 1.2; inspect wait shows as "
                "inspecting before 1.39.",
            )
        ),
    },
    extra={
        "ports": LINKS,
        "states": LINKS,
        "portgroups": since(LINKS, "portgroup_uuid"),
    },
)

#: what a list without ``detail`` shows
LIST_FIELDS = ("uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance")
_DATES = frozenset(
    {
        "created_at",
        "updated_at",
        "provision_updated_at",
        "inspection_started_at",
        "inspection_finished_at",
    }
)
_SPECIAL = frozenset({"chassis_uuid", "traits", "conductor", "provision_state", "allocation_uuid"})
#: JSON fields: shown masked
_MASKED = frozenset(
    name for name in FIELDS if name in t.nodes.c and isinstance(t.nodes.c[name].type, sa.JSON)
)
#: columns a list may be sorted by
SORTABLE = frozenset(
    {"id"}
    | {
        name
        for name in FIELDS
        if name in t.nodes.c and not isinstance(t.nodes.c[name].type, sa.JSON)
    }
)


def visible_fields(version: Version) -> tuple[str, ...]:
    """Every node field a response at ``version`` shows."""
    return _visible(version)


@functools.lru_cache(maxsize=256)
def _visible(version: Version) -> tuple[str, ...]:
    return tuple(
        name for name, feature in FIELDS.items() if feature is None or shows(feature, version)
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """How to render the chosen fields of a node."""

    fields: tuple[str, ...]
    plain: tuple[str, ...]
    getter: Callable[[Mapping[str, Any]], Any]
    dates: tuple[str, ...]
    masked: tuple[str, ...]
    special: frozenset[str]
    #: a whole document (not a list entry or a ``fields`` selection)
    full: bool
    #: the columns of the nodes table rendering needs
    columns: tuple[str, ...]


def _nothing(node: Mapping[str, Any]) -> tuple[()]:
    """The getter of a plan with no plain field (``?fields=`` naming only dates,
    traits, ...): nothing to copy."""
    return ()


@functools.lru_cache(maxsize=256)
def plan(version: Version, fields: tuple[str, ...] | None) -> Plan:
    """The rendering plan for ``fields`` (all visible ones when ``None``)."""
    visible = _visible(version)
    chosen = visible if fields is None else tuple(f for f in visible if f in fields)
    plain = tuple(f for f in chosen if f not in _DATES | _SPECIAL | _MASKED)
    return Plan(
        fields=chosen,
        plain=plain,
        getter=itemgetter(*plain) if plain else _nothing,
        dates=tuple(f for f in chosen if f in _DATES),
        masked=tuple(f for f in chosen if f in _MASKED),
        special=frozenset(chosen) & _SPECIAL,
        full=fields is None,
        columns=_columns(chosen),
    )


#: field -> the columns it is rendered from, where they differ
_SOURCES: dict[str, tuple[str, ...]] = {
    "chassis_uuid": ("chassis_id",),
    "traits": ("id",),
    "conductor": ("uuid", "conductor_group", "driver"),
    "allocation_uuid": ("allocation_id",),
}


def _columns(chosen: tuple[str, ...]) -> tuple[str, ...]:
    # owner and lessee decide which fields a project's caller sees redacted
    needed = {"id", "uuid", "owner", "lessee"}
    for name in chosen:
        needed.update(_SOURCES.get(name, (name,)))
    return tuple(sorted(needed))


@dataclass(slots=True)
class Related:
    """Data from other tables that node documents show."""

    chassis: dict[int, str] = field(default_factory=dict)
    traits: dict[int, list[str]] = field(default_factory=dict)
    #: the live conductors' hash rings, to name each node's conductor
    conductors: Rings = field(default_factory=lambda: Rings(()))
    allocations: dict[int, str] = field(default_factory=dict)


Row = Mapping[str, Any]
_NODE_COLUMNS = tuple(f.name for f in dataclass_fields(Node))
_node_getter = attrgetter(*_NODE_COLUMNS)


def row_of(node: Node) -> dict[str, Any]:
    """A node record as the ``{column: value}`` row the renderer takes."""
    return dict(zip(_NODE_COLUMNS, _node_getter(node), strict=True))


def load_related(
    conn: sa.Connection,
    nodes: Sequence[Row],
    *,
    the_plan: Plan,
    heartbeat_timeout: float,
    new: bool = False,
) -> Related:
    """Fetch, in one query each, what ``the_plan`` needs beyond the node rows; ``new``:
    the nodes were just created (they have no traits yet)."""
    related = Related()
    if "chassis_uuid" in the_plan.special:
        ids = {n["chassis_id"] for n in nodes if n["chassis_id"] is not None}
        if ids:
            c = t.chassis.c
            rows = conn.execute(sa.select(c.id, c.uuid).where(c.id.in_(ids)))
            related.chassis = {row.id: row.uuid for row in rows}
    if "traits" in the_plan.special and not new:
        related.traits = repo.traits_for(conn, [n["id"] for n in nodes])
    if "conductor" in the_plan.special:
        related.conductors = repo.conductor_rings(conn, timeout=heartbeat_timeout)
    if "allocation_uuid" in the_plan.special:
        related.allocations = allocation_uuids(conn, [n["allocation_id"] for n in nodes])
    return related


def render_node(
    node: Row,
    related: Related,
    *,
    the_plan: Plan,
    base_url: str,
    version: Version,
    redactions: NodeRedactions | None = None,
) -> dict[str, Any]:
    """The node document; ``links`` always, sub-resource links on full documents;
    the fields ``redactions`` hides from the caller replaced by Ironic's notices."""
    values = the_plan.getter(node)
    # one key: itemgetter gives the value itself, not a tuple of one
    if len(the_plan.plain) == 1:
        values = (values,)
    doc: dict[str, Any] = dict(zip(the_plan.plain, values, strict=True))
    for name in the_plan.dates:
        doc[name] = iso(node[name])
    for name in the_plan.masked:
        doc[name] = mask(node[name])
    if the_plan.special:
        _render_special(doc, node, related=related, special=the_plan.special, version=version)
    if redactions is not None:
        redactions.apply(doc, owner=node["owner"], lessee=node["lessee"])
    uuid = node["uuid"]
    doc["links"] = links(base_url, f"nodes/{uuid}")
    if the_plan.full:
        _add_subresource_links(doc, uuid, base_url=base_url, version=version)
    return doc


def _render_special(
    doc: dict[str, Any], node: Row, *, related: Related, special: frozenset[str], version: Version
) -> None:
    if "provision_state" in special:
        doc["provision_state"] = provision_state(node["provision_state"], version)
    if "chassis_uuid" in special:
        chassis_id = node["chassis_id"]
        doc["chassis_uuid"] = related.chassis.get(chassis_id) if chassis_id else None
    if "traits" in special:
        doc["traits"] = related.traits.get(node["id"], [])
    if "conductor" in special:
        doc["conductor"] = related.conductors.owner(
            node["uuid"], group=node["conductor_group"], hardware_type=node["driver"]
        )
    if "allocation_uuid" in special:
        allocation_id = node["allocation_id"]
        doc["allocation_uuid"] = related.allocations.get(allocation_id) if allocation_id else None


def provision_state(state: str, version: Version) -> str | None:
    """A provision state as a response at ``version`` names it."""
    # before 1.2 Ironic called "available" NOSTATE, shown as null
    if state == "available" and version < Version(1, 2):
        return None
    # before 1.39 asynchronous inspection was shown as still "inspecting"
    if state == "inspect wait" and not shows("inspect_wait", version):
        return "inspecting"
    return state


def _add_subresource_links(
    doc: dict[str, Any], uuid: str, *, base_url: str, version: Version
) -> None:
    doc["ports"] = links(base_url, f"nodes/{uuid}/ports")
    doc["states"] = links(base_url, f"nodes/{uuid}/states")
    if shows("portgroup_uuid", version):
        doc["portgroups"] = links(base_url, f"nodes/{uuid}/portgroups")
