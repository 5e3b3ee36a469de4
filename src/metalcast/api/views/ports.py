"""Ports and portgroups as Ironic's API shows them, per microversion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from metalcast.api.operations import LINKS, UUID, nullable, resource
from metalcast.api.versions import Version, shows
from metalcast.api.views.common import iso, links, only
from metalcast.db import tables as t
from metalcast.db.models import Port, Portgroup
from metalcast.secrecy import mask

#: port field -> the feature that introduced it
PORT_FIELDS: dict[str, str | None] = {
    "uuid": None,
    "address": None,
    "node_uuid": None,
    "portgroup_uuid": "portgroup_uuid",
    "local_link_connection": "port_llc",
    "pxe_enabled": "port_llc",
    "physical_network": "physical_network",
    "internal_info": "port_internal_info",
    "extra": None,
    "is_smartnic": "is_smartnic",
    "name": "port_name",
    "description": "port_description",
    "vendor": "port_vendor",
    "category": "port_category",
    "available_for_dynamic_portgroup": "dynamic_portgroups",
    "created_at": None,
    "updated_at": None,
}
PORT_LIST_FIELDS = ("uuid", "address", "name")
#: fields of ports and portgroups shown through metalcast.secrecy.mask
_JSON_FIELDS = frozenset({"extra", "properties", "internal_info", "local_link_connection"})

PORTGROUP_FIELDS: dict[str, str | None] = {
    "uuid": None,
    "name": None,
    "address": None,
    "node_uuid": None,
    "mode": "portgroup_mode",
    "properties": "portgroup_mode",
    "standalone_ports_supported": None,
    "internal_info": None,
    "extra": None,
    "physical_network": "portgroup_physical_network",
    "category": "portgroup_category",
    "dynamic_portgroup": "dynamic_portgroups",
    "created_at": None,
    "updated_at": None,
}
PORTGROUP_LIST_FIELDS = ("uuid", "address", "name")

PORT = resource(
    "Port",
    PORT_FIELDS,
    table=t.ports,
    special={"node_uuid": UUID, "portgroup_uuid": nullable(UUID)},
)
PORTGROUP = resource(
    "Portgroup",
    PORTGROUP_FIELDS,
    table=t.portgroups,
    special={"node_uuid": UUID},
    extra={"ports": LINKS},
)

PORT_SORTABLE = frozenset(
    {
        "id",
        "uuid",
        "address",
        "name",
        "created_at",
        "updated_at",
        "pxe_enabled",
        "physical_network",
        "is_smartnic",
        "node_id",
        "portgroup_id",
        "description",
        "vendor",
        "category",
        "available_for_dynamic_portgroup",
    }
)
PORTGROUP_SORTABLE = frozenset(
    {
        "id",
        "uuid",
        "address",
        "name",
        "mode",
        "created_at",
        "updated_at",
        "standalone_ports_supported",
        "node_id",
        "physical_network",
        "category",
        "dynamic_portgroup",
    }
)


def visible(fields: dict[str, str | None], version: Version) -> tuple[str, ...]:
    """The fields of ``fields`` a response at ``version`` shows."""
    return tuple(name for name, f in fields.items() if f is None or shows(f, version))


@dataclass(slots=True)
class Uuids:
    """UUIDs of the nodes and portgroups that ports and portgroups point at."""

    nodes: dict[int, str] = field(default_factory=dict)
    portgroups: dict[int, str] = field(default_factory=dict)

    def cover(self, port: Port) -> bool:
        """Whether these are all the UUIDs ``port``'s document needs."""
        group = port.portgroup_id
        return port.node_id in self.nodes and (group is None or group in self.portgroups)

    @classmethod
    def load(
        cls, conn: sa.Connection, *, node_ids: Iterable[int], portgroup_ids: Iterable[int | None]
    ) -> Uuids:
        return cls(
            nodes=_uuids(conn, t.nodes, ids=set(node_ids)),
            portgroups=_uuids(conn, t.portgroups, ids={i for i in portgroup_ids if i is not None}),
        )


def _uuids(conn: sa.Connection, table: sa.Table, *, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(sa.select(table.c.id, table.c.uuid).where(table.c.id.in_(ids)))
    return {row.id: row.uuid for row in rows}


def port_uuids(conn: sa.Connection, ports: Sequence[Port]) -> Uuids:
    return Uuids.load(
        conn, node_ids=[p.node_id for p in ports], portgroup_ids=[p.portgroup_id for p in ports]
    )


def render_port(
    port: Port, uuids: Uuids, *, base_url: str, version: Version, fields: tuple[str, ...] | None
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in visible(PORT_FIELDS, version):
        if fields is not None and name not in fields:
            continue
        doc[name] = _port_value(port, name, uuids=uuids, version=version)
    doc["links"] = links(base_url, f"ports/{port.uuid}")
    return doc


_VTEP_KEYS = ("vtep-logical-switch", "vtep-physical-switch")


def vtep_window(version: Version) -> bool:
    """Whether a request at ``version`` has Ironic's OVN VTEP keys in a port's
    ``local_link_connection`` (1.90 to 1.104)."""
    return shows("ovn_vtep", version) and not shows("ovn_vtep_removed", version)


def _port_value(port: Port, name: str, *, uuids: Uuids, version: Version) -> Any:
    if name == "node_uuid":
        return uuids.nodes.get(port.node_id)
    if name == "portgroup_uuid":
        return uuids.portgroups.get(port.portgroup_id) if port.portgroup_id else None
    if name in ("created_at", "updated_at"):
        return iso(getattr(port, name))
    # as Ironic: a link with OVN VTEP keys shows as empty outside 1.90 to 1.104
    if (
        name == "local_link_connection"
        and not vtep_window(version)
        and any(key in port.local_link_connection for key in _VTEP_KEYS)
    ):
        return {}
    if name in _JSON_FIELDS:
        return mask(getattr(port, name))
    return getattr(port, name)


def render_portgroup(
    group: Portgroup,
    uuids: Uuids,
    *,
    base_url: str,
    version: Version,
    fields: tuple[str, ...] | None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in visible(PORTGROUP_FIELDS, version):
        if name == "node_uuid":
            doc[name] = uuids.nodes.get(group.node_id)
        elif name in ("created_at", "updated_at"):
            doc[name] = iso(getattr(group, name))
        elif name in _JSON_FIELDS:
            doc[name] = mask(getattr(group, name))
        else:
            doc[name] = getattr(group, name)
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"portgroups/{group.uuid}")
    if fields is None:
        doc["ports"] = links(base_url, f"portgroups/{group.uuid}/ports")
    return doc
