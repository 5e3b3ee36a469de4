"""Runbooks (API 1.92) as Ironic's API shows them: secrets in the steps' arguments
and in ``extra`` masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.api.operations import array, obj, resource, string
from metalcast.api.versions import Version, shows
from metalcast.api.views.common import iso, links, only
from metalcast.db import tables as t
from metalcast.db.models import Runbook
from metalcast.secrecy import mask

FIELDS = (
    "uuid",
    "name",
    "steps",
    "disable_ramdisk",
    "public",
    "owner",
    "extra",
    "description",
    "traits",
    "created_at",
    "updated_at",
)
#: the fields Ironic 1.112 added
NEW_IN_1_112 = frozenset({"description", "traits"})
#: what a list shows without ``detail`` (Ironic's default return fields)
LIST_FIELDS = ("uuid", "name")
#: Ironic refuses to sort by extra and steps
SORTABLE = frozenset(
    {
        "id",
        "uuid",
        "name",
        "disable_ramdisk",
        "public",
        "owner",
        "description",
        "created_at",
        "updated_at",
    }
)
STEP = obj(
    {
        "interface": string(),
        "step": string(),
        "args": obj(),
        "order": {"type": "integer", "minimum": 0},
    },
    required=("interface", "step", "args", "order"),
)
RUNBOOK = resource(
    "Runbook",
    {name: ("runbook_traits" if name in NEW_IN_1_112 else None) for name in FIELDS},
    table=t.runbooks,
    special={"steps": array(STEP), "traits": array(string())},
)


def render_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A runbook step, with secrets in its arguments masked (as Ironic does)."""
    return {
        "interface": step["interface"],
        "step": step["step"],
        "args": mask(step.get("args") or {}),
        "order": step["order"],
    }


def render_runbook(
    runbook: Runbook,
    *,
    base_url: str,
    version: Version,
    fields: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The runbook document (``links`` always; ``description`` and ``traits`` from
    1.112)."""
    doc: dict[str, Any] = {
        "uuid": runbook.uuid,
        "name": runbook.name,
        "steps": [render_step(s) for s in runbook.steps],
        "disable_ramdisk": runbook.disable_ramdisk,
        "public": runbook.public,
        "owner": runbook.owner,
        "extra": mask(runbook.extra),
        "created_at": iso(runbook.created_at),
        "updated_at": iso(runbook.updated_at),
    }
    if shows("runbook_traits", version):
        doc["description"] = runbook.description
        doc["traits"] = list(runbook.traits)
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"runbooks/{runbook.uuid}")
    return doc
