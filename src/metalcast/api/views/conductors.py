"""Conductors as the API shows them."""

from __future__ import annotations

from typing import Any

from metalcast.api.operations import array, boolean, resource, string
from metalcast.api.views.common import iso, links
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Conductor

#: GET /v1/conductors without detail shows these
DEFAULT_FIELDS = ("hostname", "conductor_group", "alive")
FIELDS = ("hostname", "conductor_group", "alive", "drivers", "created_at", "updated_at")
CONDUCTOR = resource(
    "Conductor",
    dict.fromkeys(FIELDS),
    table=t.conductors,
    special={
        "alive": boolean(description="Online and heard from within its heartbeat timeout."),
        "drivers": array(string(), description="The hardware types it serves."),
    },
)


def is_alive(conductor: Conductor, *, timeout: float) -> bool:
    """Online and heard from within ``timeout`` seconds."""
    return repo.conductor_is_alive(conductor, timeout=timeout)


def render_conductor(conductor: Conductor, *, base_url: str, timeout: float) -> dict[str, Any]:
    """The whole conductor document (lists keep :data:`DEFAULT_FIELDS` of it)."""
    doc: dict[str, Any] = {
        "hostname": conductor.hostname,
        "conductor_group": conductor.conductor_group,
        "alive": is_alive(conductor, timeout=timeout),
        "drivers": list(conductor.hardware_types),
        "created_at": iso(conductor.created_at),
        "updated_at": iso(conductor.updated_at),
    }
    doc["links"] = links(base_url, f"conductors/{conductor.hostname}")
    return doc
