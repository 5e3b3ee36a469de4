"""Reads and writes of the firmware components cached for each node (API 1.86).

The conductor syncs a node's components with what its firmware interface reports
(around a firmware update); the API reads them from here.  A component keeps the
version it was first seen with (``initial_version``) and, once its version changes,
the version last flashed (``last_version_flashed``), as Ironic's do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import FirmwareRecord, from_row


@dataclass(frozen=True, slots=True)
class FirmwareReading:
    """A component as the firmware interface read it now."""

    component: str
    current_version: str | None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None


def list_components(conn: sa.Connection, node_id: int) -> list[FirmwareRecord]:
    """The node's cached components, by name."""
    c = t.firmware_components.c
    query = sa.select(t.firmware_components).where(c.node_id == node_id).order_by(c.component)
    return [from_row(FirmwareRecord, r) for r in conn.execute(query).mappings()]


def holds(conn: sa.Connection, node_id: int, components: Iterable[FirmwareReading]) -> bool:
    """Whether the cache already holds exactly ``components`` (names, versions and
    identities): then :func:`sync_components` would write nothing."""
    current = {r.component: r for r in list_components(conn, node_id)}
    seen = {comp.component: comp for comp in components}
    if set(current) != set(seen):
        return False
    return all(
        (old.current_version, old.vendor, old.model, old.serial_number)
        == (new.current_version, new.vendor, new.model, new.serial_number)
        for old, new in ((current[name], seen[name]) for name in seen)
    )


def sync_components(
    conn: sa.Connection, node_id: int, components: Iterable[FirmwareReading]
) -> None:
    """Make the cache hold ``components``: new ones are inserted (their version is
    their initial one), changed ones updated (a new version is recorded as the last
    flashed), vanished ones deleted."""
    c = t.firmware_components.c
    current = {r.component: r for r in list_components(conn, node_id)}
    seen = {comp.component: comp for comp in components}
    gone = sorted(set(current) - set(seen))
    if gone:
        conn.execute(
            sa.delete(t.firmware_components).where(c.node_id == node_id, c.component.in_(gone))
        )
    now = rows.utcnow()
    for name, comp in seen.items():
        identity = {"vendor": comp.vendor, "model": comp.model, "serial_number": comp.serial_number}
        old = current.get(name)
        if old is None:
            conn.execute(
                sa.insert(t.firmware_components).values(
                    node_id=node_id,
                    component=name,
                    initial_version=comp.current_version,
                    current_version=comp.current_version,
                    created_at=now,
                    **identity,
                )
            )
            continue
        changes: dict[str, object] = {k: v for k, v in identity.items() if getattr(old, k) != v}
        if old.current_version != comp.current_version:
            changes["current_version"] = comp.current_version
            changes["last_version_flashed"] = comp.current_version
        if changes:
            conn.execute(
                sa.update(t.firmware_components)
                .where(c.node_id == node_id, c.component == name)
                .values(updated_at=now, **changes)
            )
