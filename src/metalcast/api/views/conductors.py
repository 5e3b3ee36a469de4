"""Conductors as the API shows them, and which conductor a node belongs to."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

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
    seen = conductor.updated_at or conductor.created_at
    return conductor.online and seen >= repo.utcnow() - timedelta(seconds=timeout)


@dataclass(frozen=True, slots=True)
class ConductorMap:
    """The live conductors of each conductor group, to name a node's conductor."""

    by_group: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sa.Connection, *, timeout: float) -> ConductorMap:
        by_group: dict[str, list[str]] = {}
        for conductor in repo.list_conductors(conn):
            if is_alive(conductor, timeout=timeout):
                by_group.setdefault(conductor.conductor_group, []).append(conductor.hostname)
        return cls({group: sorted(hosts) for group, hosts in by_group.items()})

    def for_node(self, uuid: str, group: str) -> str | None:
        """The hostname of the conductor serving a node of ``group``, if any is alive.

        With several live conductors in the group the choice is a stable hash of the
        node's UUID; the conductor's own hash ring is authoritative for its work.
        """
        hosts = self.by_group.get(group)
        if not hosts:
            return None
        if len(hosts) == 1:
            return hosts[0]
        return hosts[zlib.crc32(uuid.encode()) % len(hosts)]


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
