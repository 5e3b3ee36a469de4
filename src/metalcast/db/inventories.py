"""Reads and writes of the inventory each node's agent last reported (API 1.81).

Errors raised: ``NotFound`` (404) for a node that was never inspected by its agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.errors import NotFound


def get_inventory(conn: sa.Connection, node_id: int, *, node: str) -> dict[str, Any]:
    """``{"inventory": ..., "plugin_data": ...}`` of the node.  Raises ``NotFound``
    (the message names ``node``)."""
    c = t.node_inventories.c
    found = conn.execute(sa.select(c.inventory, c.plugin_data).where(c.node_id == node_id)).first()
    if found is None:
        raise NotFound(f"Node inventory for node {node} could not be found.")
    return {"inventory": found.inventory, "plugin_data": found.plugin_data}


def replace_inventory(
    conn: sa.Connection,
    node_id: int,
    inventory: Mapping[str, Any],
    *,
    plugin_data: Mapping[str, Any],
) -> None:
    """Store the node's inventory in place of the previous one."""
    c = t.node_inventories.c
    now = rows.utcnow()
    done = conn.execute(
        sa.update(t.node_inventories)
        .where(c.node_id == node_id)
        .values(inventory=dict(inventory), plugin_data=dict(plugin_data), updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(
            sa.insert(t.node_inventories).values(
                node_id=node_id,
                inventory=dict(inventory),
                plugin_data=dict(plugin_data),
                created_at=now,
            )
        )


def port_owners(conn: sa.Connection, macs: list[str]) -> dict[str, int]:
    """Which node has a port with each of ``macs`` (lower case) that any node has."""
    p = t.ports.c
    found = conn.execute(sa.select(p.address, p.node_id).where(p.address.in_(macs)))
    return {str(row.address): int(row.node_id) for row in found}
