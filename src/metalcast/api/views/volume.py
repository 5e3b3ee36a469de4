"""Volume connectors and targets as Ironic's API shows them (all from 1.32)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.api.operations import LINKS, UUID, Named, obj, resource
from metalcast.api.views.common import iso, links
from metalcast.db import tables as t
from metalcast.db.models import VolumeConnector, VolumeTarget
from metalcast.secrecy import mask

CONNECTOR_FIELDS = (
    "uuid",
    "type",
    "connector_id",
    "node_uuid",
    "extra",
    "created_at",
    "updated_at",
)
#: what a list without ``detail`` shows
CONNECTOR_LIST_FIELDS = ("uuid", "node_uuid", "type", "connector_id")
CONNECTOR_SORTABLE = frozenset({"id", "uuid", "type", "connector_id", "created_at", "updated_at"})

TARGET_FIELDS = (
    "uuid",
    "volume_type",
    "properties",
    "boot_index",
    "volume_id",
    "node_uuid",
    "extra",
    "created_at",
    "updated_at",
)
TARGET_LIST_FIELDS = ("uuid", "node_uuid", "volume_type", "boot_index", "volume_id")
TARGET_SORTABLE = frozenset(
    {"id", "uuid", "volume_type", "boot_index", "volume_id", "created_at", "updated_at"}
)

CONNECTOR = resource(
    "VolumeConnector",
    dict.fromkeys(CONNECTOR_FIELDS),
    table=t.volume_connectors,
    special={"node_uuid": UUID},
)
TARGET = resource(
    "VolumeTarget",
    dict.fromkeys(TARGET_FIELDS),
    table=t.volume_targets,
    special={
        "node_uuid": UUID,
        "properties": obj(
            description="Shown only with baremetal:volume:view_target_properties; "
            "otherwise {'redacted_contents': ...}."
        ),
    },
)

Record = VolumeConnector | VolumeTarget


def render(
    record: Record,
    *,
    all_fields: tuple[str, ...],
    node_uuids: Mapping[int, str],
    base_url: str,
    collection: str,
    fields: tuple[str, ...] | None,
) -> dict[str, Any]:
    """The document of a connector or target (``collection`` is ``connectors`` or
    ``targets``), limited to ``fields`` when given."""
    doc: dict[str, Any] = {}
    for name in all_fields:
        if fields is not None and name not in fields:
            continue
        if name == "node_uuid":
            doc[name] = node_uuids.get(record.node_id)
        elif name in ("created_at", "updated_at"):
            doc[name] = iso(getattr(record, name))
        elif name in ("extra", "properties"):
            doc[name] = mask(getattr(record, name))  # iSCSI auth passwords, …
        else:
            doc[name] = getattr(record, name)
    doc["links"] = links(base_url, f"volume/{collection}/{record.uuid}")
    return doc


#: the answer of :func:`root_links`
ROOT = Named(
    "VolumeLinks",
    obj(
        {"connectors": LINKS, "targets": LINKS, "links": LINKS},
        required=("connectors", "targets", "links"),
    ),
)


def root_links(base_url: str, prefix: str) -> dict[str, Any]:
    """``GET /v1/volume`` (or ``/v1/nodes/{node}/volume``): links to the collections."""
    return {
        "connectors": links(base_url, f"{prefix}volume/connectors"),
        "targets": links(base_url, f"{prefix}volume/targets"),
        "links": links(base_url, f"{prefix}volume/"),
    }
