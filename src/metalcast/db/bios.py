"""Reads and writes of the BIOS settings cached for each node.

The conductor replaces a node's settings with what its BIOS interface reports (at
verify and after cleaning); the API reads them from here.

Errors raised: ``NotFound`` (404) for a setting the node does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import BiosSetting, from_row
from metalcast.errors import NotFound


def list_settings(conn: sa.Connection, node_id: int) -> list[BiosSetting]:
    """The node's cached settings, by name."""
    found = conn.execute(rows.statement(_settings_of_node), {"node_id": node_id}).mappings()
    return [from_row(BiosSetting, r) for r in found]


def _settings_of_node() -> sa.Select[Any]:
    b = t.bios_settings.c
    return sa.select(t.bios_settings).where(b.node_id == sa.bindparam("node_id")).order_by(b.name)


def get_setting(conn: sa.Connection, node_id: int, name: str) -> BiosSetting:
    """One cached setting.  Raises ``NotFound``."""
    b = t.bios_settings.c
    query = sa.select(t.bios_settings).where(b.node_id == node_id, b.name == name)
    found = rows.records(conn, BiosSetting, query)
    if not found:
        raise NotFound(f"The BIOS setting {name} could not be found.")
    return found[0]


def cached_values(conn: sa.Connection, node_id: int) -> dict[str, str | None]:
    """The node's cached settings as name -> value."""
    return {s.name: s.value for s in list_settings(conn, node_id)}


def replace_settings(
    conn: sa.Connection,
    node_id: int,
    settings: Mapping[str, str],
    *,
    current: Mapping[str, str | None] | None = None,
) -> None:
    """Make the node's cache hold exactly ``settings``: new names are inserted,
    changed values updated (keeping ``created_at``), vanished names deleted.
    ``current`` is the cache as the caller read it (under the node's lock), else it
    is read here."""
    b = t.bios_settings.c
    if current is None:
        current = cached_values(conn, node_id)
    gone = sorted(set(current) - set(settings))
    if gone:
        conn.execute(sa.delete(t.bios_settings).where(b.node_id == node_id, b.name.in_(gone)))
    now = rows.utcnow()
    new = [
        {"node_id": node_id, "name": name, "value": value, "created_at": now}
        for name, value in settings.items()
        if name not in current
    ]
    if new:
        conn.execute(rows.statement(sa.insert, t.bios_settings), new)
    for name, value in settings.items():
        if name in current and current[name] != value:
            conn.execute(
                sa.update(t.bios_settings)
                .where(b.node_id == node_id, b.name == name)
                .values(value=value, updated_at=now)
            )
