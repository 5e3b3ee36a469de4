"""Allocations and deploy templates as Ironic's API shows them, per microversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.api.operations import UUID, array, nullable, obj, resource, string
from metalcast.api.versions import Version
from metalcast.api.views.common import iso, links, only
from metalcast.api.views.ports import visible
from metalcast.db import tables as t
from metalcast.db.allocations import STATES
from metalcast.db.models import Allocation, DeployTemplate
from metalcast.secrecy import mask

#: allocation field -> the feature that introduced it (1.52 for the rest)
ALLOCATION_FIELDS: dict[str, str | None] = {
    "uuid": None,
    "name": None,
    "node_uuid": None,
    "state": None,
    "last_error": None,
    "resource_class": None,
    "traits": None,
    "candidate_nodes": None,
    "extra": None,
    "owner": "allocation_owner",
    "created_at": None,
    "updated_at": None,
}
ALLOCATION = resource(
    "Allocation",
    ALLOCATION_FIELDS,
    table=t.allocations,
    special={
        "node_uuid": nullable(UUID),
        "state": string(enum=list(STATES)),
        "traits": array(string()),
        "candidate_nodes": array(UUID),
    },
)

#: columns an allocation list may be sorted by (Ironic refuses the JSON ones)
ALLOCATION_SORTABLE = frozenset(
    {
        "id",
        "uuid",
        "name",
        "node_id",
        "state",
        "owner",
        "resource_class",
        "last_error",
        "created_at",
        "updated_at",
    }
)


def allocation_fields(version: Version) -> tuple[str, ...]:
    """The allocation fields a response at ``version`` shows."""
    return visible(ALLOCATION_FIELDS, version)


def render_allocation(
    allocation: Allocation,
    node_uuids: Mapping[int, str],
    *,
    base_url: str,
    version: Version,
    fields: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The allocation document (``links`` always; secrets in ``extra`` masked)."""
    values: dict[str, Any] = {
        "uuid": allocation.uuid,
        "name": allocation.name,
        "node_uuid": node_uuids.get(allocation.node_id) if allocation.node_id else None,
        "state": allocation.state,
        "last_error": allocation.last_error,
        "resource_class": allocation.resource_class,
        "traits": list(allocation.traits),
        "candidate_nodes": list(allocation.candidate_nodes),
        "extra": mask(allocation.extra),
        "owner": allocation.owner,
        "created_at": iso(allocation.created_at),
        "updated_at": iso(allocation.updated_at),
    }
    doc = {name: values[name] for name in allocation_fields(version)}
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"allocations/{allocation.uuid}")
    return doc


# ------------------------------------------------------------------ deploy templates

TEMPLATE_FIELDS = ("uuid", "name", "description", "steps", "extra", "created_at", "updated_at")
TEMPLATE_LIST_FIELDS = ("uuid", "name")
TEMPLATE_SORTABLE = frozenset({"id", "uuid", "name", "created_at", "updated_at"})
STEP = obj(
    {
        "interface": string(),
        "step": string(),
        "args": obj(),
        "priority": {"type": "integer", "minimum": 0},
    },
    required=("interface", "step", "args", "priority"),
)
TEMPLATE = resource(
    "DeployTemplate",
    dict.fromkeys(TEMPLATE_FIELDS),
    table=t.deploy_templates,
    special={"steps": array(STEP)},
)


def render_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A deploy step, with secrets in its arguments masked (as Ironic does)."""
    return {
        "interface": step["interface"],
        "step": step["step"],
        "args": mask(step.get("args") or {}),
        "priority": step["priority"],
    }


def render_template(
    template: DeployTemplate, *, base_url: str, fields: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The deploy template document (``links`` always; secrets in ``extra`` and the
    steps' arguments masked)."""
    doc: dict[str, Any] = {
        "uuid": template.uuid,
        "name": template.name,
        "description": template.description,
        "steps": [render_step(s) for s in template.steps],
        "extra": mask(template.extra),
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"deploy_templates/{template.uuid}")
    return doc
