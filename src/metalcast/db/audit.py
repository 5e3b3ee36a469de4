"""The audit log: one row per write request through the API (``audit_events``).

Rows are written in batches by the API's audit writer (:mod:`metalcast.api.audit`)
and read back, filtered and paged, by ``GET /v1/audit``.  They hold who asked, what
(method, path, policy action, the node and resource concerned) and how it ended
(the HTTP status); never a request body.

Errors raised: ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import JSONDict


@dataclass(slots=True)
class AuditEvent:
    """One audited request."""

    id: int
    uuid: str
    created_at: datetime
    request_id: str
    method: str
    path: str
    status: int
    user_id: str | None = None
    user_name: str | None = None
    project_id: str | None = None
    action: str | None = None
    node_uuid: str | None = None
    resource_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What ``GET /v1/audit`` may filter on; ``None`` means "do not filter"."""

    node_uuid: str | None = None
    #: the caller's user id or name
    user: str | None = None
    project_id: str | None = None
    method: str | None = None
    #: created at or after
    since: datetime | None = None
    #: created before
    until: datetime | None = None


#: the length of the ``path`` column (longer paths are cut)
PATH_LENGTH = 2048


def add_events(conn: sa.Connection, events: Sequence[JSONDict]) -> None:
    """Insert audit rows; an event may name its node by ``node_id`` instead of
    ``node_uuid`` (resolved here, off the request's path).  They are written as every
    row is (:func:`metalcast.db.rows.written`): the path scrubbed of secrets (a
    credential in a URL, ``password=…``), UUIDs in lower case."""
    if not events:
        return
    ids = {e["node_id"] for e in events if e.get("node_id") and not e.get("node_uuid")}
    uuids: dict[int, str] = {}
    if ids:
        n = t.nodes.c
        query = sa.select(n.id, n.uuid).where(rows.ids_in(n.id, ids))
        uuids = {row.id: row.uuid for row in conn.execute(query)}
    values = []
    for event in events:
        row = {k: v for k, v in event.items() if k != "node_id"}
        row["node_uuid"] = event.get("node_uuid") or uuids.get(event.get("node_id") or 0)
        row["path"] = str(event["path"])[:PATH_LENGTH]
        values.append(row)
    rows.insert_many(conn, t.audit_events, values)


def _where(query: sa.Select[Any], f: AuditFilters) -> sa.Select[Any]:
    a = t.audit_events.c
    if f.node_uuid is not None:
        query = query.where(a.node_uuid == f.node_uuid)
    if f.user is not None:
        query = query.where(sa.or_(a.user_id == f.user, a.user_name == f.user))
    if f.project_id is not None:
        query = query.where(a.project_id == f.project_id)
    if f.method is not None:
        query = query.where(a.method == f.method)
    if f.since is not None:
        query = query.where(a.created_at >= f.since)
    if f.until is not None:
        query = query.where(a.created_at < f.until)
    return query


def list_events(conn: sa.Connection, filters: AuditFilters, page: rows.Page) -> list[AuditEvent]:
    """A page of audit events matching ``filters``.

    Raises:
        InvalidInput: unknown sort key, or a marker that is not an event.
    """
    query = _where(sa.select(t.audit_events), filters)
    return rows.records(conn, AuditEvent, rows.paginate(conn, t.audit_events, query, page))
