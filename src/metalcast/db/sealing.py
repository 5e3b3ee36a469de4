"""Secrets at rest: every row is protected on its way into the database.

:func:`protect` runs on every insert and update (:func:`metalcast.db.rows.written`:
node history and audit rows included), so no caller can store a secret in clear,
whatever it passes:

- JSON columns that hold user data (:data:`SEALED_COLUMNS`) are sealed with the
  database's :class:`~metalcast.secrecy.SecretBox` (the secrets in them encrypted);
  a value a client sent back masked (``******``) keeps the stored secret first.
- Free-text columns (:data:`SCRUBBED_COLUMNS`: ``last_error``, history events, …)
  are scrubbed: URL passwords, ``password=…`` and the node's own secrets (decrypted
  for the comparison) become ``******``.

Without a box a write that would store a secret is refused.  :func:`seal_stored`
(every start) seals what older versions stored in clear; :func:`reseal` (key
rotation) encrypts every sealed value again with the box's newest key.

Errors::

    DatabaseError
    └── SecretsUnprotected   a secret to store, and no key to encrypt it with
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from metalcast.db import tables as t
from metalcast.db.engine import BOX_OPTION, Database, DatabaseError
from metalcast.secrecy import MASK, SecretBox, UndecryptableSecret, scrub_text, secret_values
from metalcast.secrecy.detect import has_unsealed_secret, keep_masked

#: JSON columns whose secrets are encrypted before they are stored
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "nodes": ("driver_info", "instance_info", "properties", "extra", "network_data"),
    "ports": ("extra",),
    "portgroups": ("extra", "properties"),
    "chassis": ("extra",),
    "volume_connectors": ("extra",),
    "volume_targets": ("properties", "extra"),
    "allocations": ("extra",),
    "deploy_templates": ("steps", "extra"),
    "runbooks": ("steps", "extra"),
    "webhooks": ("signing",),
}
#: free-text columns scrubbed of secrets before they are stored
SCRUBBED_COLUMNS: dict[str, tuple[str, ...]] = {
    "nodes": ("last_error", "maintenance_reason", "protected_reason", "retired_reason"),
    "node_history": ("event",),
    "allocations": ("last_error",),
    "audit_events": ("path",),
}
_NODE_SECRET_COLUMNS = SEALED_COLUMNS["nodes"]
#: SQLite's ``user_version`` once the file holds no clear secret, even in free space
SEALED_STORAGE = 1
#: rows read at a time by the passes over every stored row
_BATCH = 500


class SecretsUnprotected(DatabaseError):
    """A secret was about to be stored, and the database has no key to encrypt it."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"Refusing to store a secret of {where} in clear: this database has no secret "
            "key (Database(..., secret_box=...))."
        )


def box_of(conn: sa.Connection) -> SecretBox | None:
    """The SecretBox bound to ``conn``'s database, if any."""
    box = conn.get_execution_options().get(BOX_OPTION)
    return box if isinstance(box, SecretBox) else None


def protect(
    conn: sa.Connection,
    table: sa.Table,
    values: dict[str, Any],
    *,
    row_id: int | None,
    node: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``values`` as they may be written into ``table`` (row ``row_id``, or a new
    row): secrets of JSON columns sealed, free text scrubbed.  ``node``: the sealed
    columns of the node a history row is about, as the caller holds them (else they
    are read to find the node's secrets).

    Raises:
        SecretsUnprotected: a secret to seal and no SecretBox bound to ``conn``.
    """
    json_columns = [c for c in SEALED_COLUMNS.get(table.name, ()) if values.get(c) is not None]
    text_columns = [c for c in SCRUBBED_COLUMNS.get(table.name, ()) if values.get(c)]
    if not json_columns and not text_columns:
        return values
    out = dict(values)
    box = box_of(conn)
    if json_columns:
        stored = _stored(conn, table, row_id, columns=json_columns, values=values)
        for column in json_columns:
            value = keep_masked(stored.get(column), values[column])
            out[column] = _seal(box, value, where=f"{table.name}.{column}")
    if text_columns:
        known = _known_secrets(conn, table, box, row_id=row_id, values=out, node=node)
        for column in text_columns:
            out[column] = scrub_text(str(out[column]), known)
    return out


def _seal(box: SecretBox | None, value: Any, *, where: str) -> Any:
    if box is not None:
        return box.seal(value)
    if has_unsealed_secret(value):
        raise SecretsUnprotected(where)
    return value


def _stored(
    conn: sa.Connection,
    table: sa.Table,
    row_id: int | None,
    *,
    columns: list[str],
    values: dict[str, Any],
) -> dict[str, Any]:
    """The stored values of ``columns`` that a masked value in ``values`` stands for."""
    masked = [c for c in columns if _mentions_mask(values[c])]
    if row_id is None or not masked:
        return {}
    query = sa.select(*(table.c[c] for c in masked)).where(table.c.id == row_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else {}


def _mentions_mask(value: Any) -> bool:
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_mentions_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_mask(v) for v in value)
    return False


def _known_secrets(
    conn: sa.Connection,
    table: sa.Table,
    box: SecretBox | None,
    *,
    row_id: int | None,
    values: dict[str, Any],
    node: dict[str, Any] | None,
) -> set[str]:
    """The cleartext secrets of the node a text about ``table``'s row may mention."""
    if table.name == "node_history":
        node_id, given = values.get("node_id"), node or {}
    elif table.name == "nodes":
        node_id, given = row_id, values
    else:
        return set()
    documents = {c: given[c] for c in _NODE_SECRET_COLUMNS if given.get(c) is not None}
    missing = [] if node is not None else [c for c in _NODE_SECRET_COLUMNS if c not in documents]
    if node_id is not None and missing:
        row = conn.execute(_node_columns(tuple(missing)), {"node_id": node_id}).mappings().first()
        documents.update({c: row[c] for c in missing} if row is not None else {})
    found: set[str] = set()
    for document in documents.values():
        found |= secret_values(_revealed(box, document))
    return found


@functools.cache
def _node_columns(columns: tuple[str, ...]) -> sa.Select[Any]:
    """The query of a node's ``columns`` (built once per set of columns)."""
    node = t.nodes.c
    return sa.select(*(node[c] for c in columns)).where(node.id == sa.bindparam("node_id"))


def _revealed(box: SecretBox | None, document: Any) -> Any:
    if box is None:
        return document
    try:
        return box.reveal(document)
    except UndecryptableSecret:
        return document  # the patterns still apply; a wrong key is reported elsewhere


# ------------------------------------------------------------------ passes over all rows


def seal_database(db: Database) -> int:
    """:func:`seal_stored` in one transaction, then, on SQLite, make sure no clear copy
    stays in the files: the write-ahead log is emptied, and a database written by a
    version without ``secure_delete`` is vacuumed once (rows it deleted may linger in
    free space).  Returns the rows changed.

    PostgreSQL gets the first step only.  It keeps the versions of a row that an
    update replaced until (auto)vacuum reuses their space, and its write-ahead log and
    backups hold them too; it has no ``secure_delete``, so there is no file-level step
    to take here.  Every metalcast version that runs on PostgreSQL seals before it
    writes, so a clear secret only reaches it if it was copied in unsealed, which
    ``metalcast db copy`` prevents by sealing the source first (docs/security.md).

    Raises:
        SecretsUnprotected: a clear secret is stored and ``db`` has no SecretBox.
    """
    with db.begin() as conn:
        changed = seal_stored(conn)
    if not db.is_sqlite:
        return changed
    if db.storage_version() < SEALED_STORAGE:
        db.vacuum()
        db.set_storage_version(SEALED_STORAGE)
    elif changed:
        db.checkpoint()
    return changed


def seal_stored(conn: sa.Connection) -> int:
    """Seal the secrets older versions stored in clear and scrub their free text
    (idempotent).  Returns how many rows changed.

    Raises:
        SecretsUnprotected: a clear secret is stored and no SecretBox is bound.
    """
    changed = 0
    for table_name, columns in SEALED_COLUMNS.items():
        table = t.metadata.tables[table_name]
        for row_id, row in _rows(conn, table, columns):
            protected = protect(conn, table, row, row_id=None)
            changed += _write_changes(conn, table, row_id, before=row, after=protected)
    for table_name, columns in SCRUBBED_COLUMNS.items():
        table = t.metadata.tables[table_name]
        for row_id, row in _rows(conn, table, columns, suspicious=True):
            protected = protect(conn, table, _with_node(conn, table, row_id, row), row_id=row_id)
            after = {c: protected[c] for c in columns}
            changed += _write_changes(conn, table, row_id, before=row, after=after)
    return changed


def reseal(conn: sa.Connection, box: SecretBox, *, tables: tuple[str, ...] = ()) -> int:
    """Encrypt every sealed value of ``tables`` (all by default) again with ``box``'s
    newest key, sealing clear secrets on the way.  Returns how many rows changed.

    Raises:
        UndecryptableSecret: a value was sealed with a key ``box`` does not hold.
    """
    changed = 0
    for table_name, columns in SEALED_COLUMNS.items():
        if tables and table_name not in tables:
            continue
        table = t.metadata.tables[table_name]
        for row_id, row in _rows(conn, table, columns):
            fresh = {c: box.rotate(v, where=f"{table_name}.{c}") for c, v in row.items()}
            changed += _write_changes(conn, table, row_id, before=row, after=fresh)
    return changed


def check_readable(conn: sa.Connection, box: SecretBox) -> None:
    """Decrypt every sealed value with ``box``.

    Raises:
        UndecryptableSecret: a value ``box`` cannot decrypt.
    """
    for table_name, columns in SEALED_COLUMNS.items():
        table = t.metadata.tables[table_name]
        for _row_id, row in _rows(conn, table, columns):
            for column, value in row.items():
                box.reveal(value, where=f"{table_name}.{column}")


def _rows(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], *, suspicious: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(id, {column: value})`` of every row of ``table``, a batch at a time; with
    ``suspicious`` only rows whose text may hold a secret."""
    last = 0
    while True:
        query = sa.select(table.c.id, *(table.c[c] for c in columns)).where(table.c.id > last)
        if suspicious:
            query = query.where(sa.or_(*(_may_hold_secret(table.c[c]) for c in columns)))
        batch = conn.execute(query.order_by(table.c.id).limit(_BATCH)).mappings().all()
        for row in batch:
            yield row["id"], {c: row[c] for c in columns}
        if len(batch) < _BATCH:
            return
        last = batch[-1]["id"]


def _may_hold_secret(column: sa.Column[Any]) -> sa.ColumnElement[bool]:
    return sa.or_(column.contains("://"), column.contains("="), column.contains("fernet"))


def _with_node(
    conn: sa.Connection, table: sa.Table, row_id: int, row: dict[str, Any]
) -> dict[str, Any]:
    """A history row with the node it belongs to (whose secrets its text may hold)."""
    if table.name != "node_history":
        return row
    node_id = conn.execute(sa.select(table.c.node_id).where(table.c.id == row_id)).scalar()
    return {**row, "node_id": node_id}


def _write_changes(
    conn: sa.Connection,
    table: sa.Table,
    row_id: int,
    *,
    before: dict[str, Any],
    after: dict[str, Any],
) -> int:
    changes = {c: v for c, v in after.items() if c in before and v != before[c]}
    if not changes:
        return 0
    conn.execute(sa.update(table).where(table.c.id == row_id).values(changes))
    return 1
