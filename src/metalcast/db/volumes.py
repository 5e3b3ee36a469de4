"""Reads and writes of volume connectors and volume targets: where a node finds its
remote volumes.  Functions take a connection; the caller owns the transaction.

Errors raised: ``NotFound`` (404) for a missing connector or target, ``Conflict``
(409) for a taken UUID, a connector type and ID another connector has, or a boot
index the node's other target has, ``InvalidInput`` (400) for a bad marker or sort
key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import JSONDict, VolumeConnector, VolumeTarget, from_row
from metalcast.db.rows import Page, new_uuid

R = TypeVar("R")


def _list(
    conn: sa.Connection,
    table: sa.Table,
    cls: type[R],
    page: Page,
    *,
    node_id: int | None,
    node_ids: Sequence[int] | None,
) -> list[R]:
    query = sa.select(table)
    if node_id is not None:
        query = query.where(table.c.node_id == node_id)
    if node_ids is not None:
        query = query.where(rows.ids_in(table.c.node_id, node_ids))
    return rows.records(conn, cls, rows.paginate(conn, table, query, page))


# ------------------------------------------------------------------------ connectors


def _check_connector(conn: sa.Connection, values: JSONDict, *, exclude_id: int | None) -> None:
    rows.check_unique(conn, t.volume_connectors, "volume connector", values, exclude_id=exclude_id)
    kind, ident = values["type"], values["connector_id"]
    rows.check_free(
        conn,
        t.volume_connectors,
        {"type": kind, "connector_id": ident},
        exclude_id=exclude_id,
        message=f"A volume connector with type {kind} and connector ID {ident} already exists.",
    )


def create_volume_connector(conn: sa.Connection, values: JSONDict) -> VolumeConnector:
    """Insert a connector (``uuid`` generated if absent).

    Raises:
        Conflict: the UUID, or the type and connector ID, are taken.
    """
    values = {"uuid": new_uuid(), "extra": {}, **values}
    _check_connector(conn, values, exclude_id=None)
    return get_volume_connector_by_id(conn, rows.insert(conn, t.volume_connectors, values))


def get_volume_connector(conn: sa.Connection, uuid: str) -> VolumeConnector:
    """Raises ``NotFound``."""
    row = rows.get_by_ident(conn, t.volume_connectors, uuid, "Volume connector")
    return from_row(VolumeConnector, row)


def get_volume_connector_by_id(conn: sa.Connection, connector_id: int) -> VolumeConnector:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.volume_connectors, VolumeConnector, connector_id, "Volume connector")


def list_volume_connectors(
    conn: sa.Connection,
    page: Page,
    *,
    node_id: int | None = None,
    node_ids: Sequence[int] | None = None,
) -> list[VolumeConnector]:
    """A page of connectors, of node ``node_id`` or of the nodes ``node_ids``."""
    return _list(
        conn, t.volume_connectors, VolumeConnector, page, node_id=node_id, node_ids=node_ids
    )


def update_volume_connector(conn: sa.Connection, connector_id: int, values: JSONDict) -> None:
    """Raises ``Conflict`` when the new type and connector ID are another's."""
    current = get_volume_connector_by_id(conn, connector_id)
    merged = {"type": current.type, "connector_id": current.connector_id, **values}
    _check_connector(conn, merged, exclude_id=connector_id)
    rows.update(conn, t.volume_connectors, connector_id, values)


def destroy_volume_connector(conn: sa.Connection, connector_id: int) -> None:
    conn.execute(sa.delete(t.volume_connectors).where(t.volume_connectors.c.id == connector_id))


# --------------------------------------------------------------------------- targets


def _check_target(conn: sa.Connection, values: JSONDict, *, exclude_id: int | None) -> None:
    rows.check_unique(conn, t.volume_targets, "volume target", values, exclude_id=exclude_id)
    rows.check_free(
        conn,
        t.volume_targets,
        {"node_id": values["node_id"], "boot_index": values["boot_index"]},
        exclude_id=exclude_id,
        message=(
            f"A volume target with boot index '{values['boot_index']}' for the same node "
            "already exists."
        ),
    )


def create_volume_target(conn: sa.Connection, values: JSONDict) -> VolumeTarget:
    """Insert a target (``uuid`` generated if absent).

    Raises:
        Conflict: the UUID is taken, or the node has a target at that boot index.
    """
    values = {"uuid": new_uuid(), "properties": {}, "extra": {}, **values}
    _check_target(conn, values, exclude_id=None)
    return get_volume_target_by_id(conn, rows.insert(conn, t.volume_targets, values))


def get_volume_target(conn: sa.Connection, uuid: str) -> VolumeTarget:
    """Raises ``NotFound``."""
    return from_row(VolumeTarget, rows.get_by_ident(conn, t.volume_targets, uuid, "Volume target"))


def get_volume_target_by_id(conn: sa.Connection, target_id: int) -> VolumeTarget:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.volume_targets, VolumeTarget, target_id, "Volume target")


def list_volume_targets(
    conn: sa.Connection,
    page: Page,
    *,
    node_id: int | None = None,
    node_ids: Sequence[int] | None = None,
) -> list[VolumeTarget]:
    """A page of targets, of node ``node_id`` or of the nodes ``node_ids``."""
    return _list(conn, t.volume_targets, VolumeTarget, page, node_id=node_id, node_ids=node_ids)


def update_volume_target(conn: sa.Connection, target_id: int, values: JSONDict) -> None:
    """Raises ``Conflict`` when the node already has a target at the new boot index."""
    current = get_volume_target_by_id(conn, target_id)
    merged: dict[str, Any] = {
        "node_id": current.node_id,
        "boot_index": current.boot_index,
        **values,
    }
    _check_target(conn, merged, exclude_id=target_id)
    rows.update(conn, t.volume_targets, target_id, values)


def destroy_volume_target(conn: sa.Connection, target_id: int) -> None:
    conn.execute(sa.delete(t.volume_targets).where(t.volume_targets.c.id == target_id))
