"""The node event log (``node_events``): what the event stream (GET /v1/events) tails.

Every committed change of a field clients watch (:data:`WATCHED`, plus the agent's
deploy ``progress``), a node's creation and its deletion is one row, inserted by the
conductor in the transaction that makes the change (:func:`record`: one INSERT, so
the event exists exactly when the change does, whichever process made it).  Rows
carry a monotonically increasing id, the node's UUID, its owner and lessee at that
moment (who may see the event), the changes as ``{field: {"old": ..., "new": ...}}``
and the request id of the API call that led to it when the conductor knows it.

Values are the node's columns as stored: free text (``last_error``,
``maintenance_reason``) is scrubbed of secrets before it is written, and no secret
column is watched.

On PostgreSQL ids are taken when a transaction inserts, not when it commits, so a
reader can see id 7 before id 6 commits; :class:`~metalcast.api.stream.EventTail`
looks again for such gaps for a while (:func:`by_ids`).  On SQLite writers commit
one at a time and ids appear in order.

Nothing here raises beyond the database's own errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import JSONDict, Node
from metalcast.reports import AGENT_PROGRESS_KEY
from metalcast.reports import STEP_PROGRESS_KEY as STEP_PROGRESS_KEY

#: the node columns whose changes are events (each is also a ``kind`` to filter on)
WATCHED = (
    "provision_state",
    "target_provision_state",
    "power_state",
    "target_power_state",
    "maintenance",
    "maintenance_reason",
    "fault",
    "last_error",
    "owner",
    "lessee",
    "instance_uuid",
)
#: the agent's progress report and a BMC-run step's, kept in ``driver_internal_info``
PROGRESS_KEY = AGENT_PROGRESS_KEY
#: every kind a client may filter on: the watched fields, progress, and the types
KINDS = frozenset({*WATCHED, "progress", "created", "deleted"})
#: the event types
CREATED, UPDATED, DELETED = "created", "updated", "deleted"


@dataclass(slots=True)
class NodeEvent:
    """One change of one node, as the log holds it."""

    id: int
    created_at: datetime
    node_uuid: str
    owner: str | None
    lessee: str | None
    #: ``created``, ``updated`` or ``deleted``
    type: str
    #: field -> {"old": value, "new": value}
    changes: JSONDict
    request_id: str | None = None

    @property
    def kinds(self) -> frozenset[str]:
        """What this event is about: the fields an update changed; a creation or a
        deletion is only that (its ``changes`` show the node's values then)."""
        if self.type != UPDATED:
            return frozenset({self.type})
        return frozenset(self.changes)


def document(event: NodeEvent) -> JSONDict:
    """An event as clients read it (the stream, the JSON page, webhook bodies)."""
    return {
        "id": event.id,
        "node_uuid": event.node_uuid,
        "type": event.type,
        "kinds": sorted(event.kinds),
        "changes": event.changes,
        "created_at": event.created_at.isoformat() + "+00:00",
        "request_id": event.request_id,
    }


def watched(node: Node) -> JSONDict:
    """The watched values of ``node`` (and its progress: the agent's, else a running
    step's), to compare with later."""
    values = {name: getattr(node, name) for name in WATCHED}
    info = node.driver_internal_info
    values["progress"] = info.get(PROGRESS_KEY) or info.get(STEP_PROGRESS_KEY)
    return values


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> JSONDict:
    """``{field: {"old": ..., "new": ...}}`` for each key of ``before`` whose value
    differs in ``after`` (keys missing from ``after`` did not change)."""
    return {
        name: {"old": old, "new": after[name]}
        for name, old in before.items()
        if name in after and after[name] != old
    }


def record(
    conn: sa.Connection,
    node: Node,
    *,
    type: str,
    changes: JSONDict,
    request_id: str | None = None,
) -> None:
    """Insert one event about ``node`` (as stored: its owner and lessee decide who
    sees it) in the caller's transaction: one statement."""
    record_row(
        conn,
        node_uuid=node.uuid,
        owner=node.owner,
        lessee=node.lessee,
        type=type,
        changes=changes,
        request_id=request_id,
    )


def record_created(conn: sa.Connection, node: Node, *, request_id: str | None) -> None:
    """Insert the ``created`` event of a node just inserted: its watched fields that
    have a value, each from nothing."""
    created = {k: v for k, v in watched(node).items() if v is not None}
    record(
        conn,
        node,
        type=CREATED,
        changes=diff(dict.fromkeys(created), created),
        request_id=request_id,
    )


def record_row(
    conn: sa.Connection,
    *,
    node_uuid: str,
    owner: str | None,
    lessee: str | None,
    type: str,
    changes: JSONDict,
    request_id: str | None = None,
) -> None:
    """:func:`record` for a writer that changed the node's row in SQL and holds only
    what the row said (an allocation taking or freeing its node)."""
    values = {
        "created_at": rows.utcnow(),
        "node_uuid": node_uuid,
        "owner": owner,
        "lessee": lessee,
        "type": type,
        "changes": changes,
        "request_id": request_id,
    }
    conn.execute(rows.statement(sa.insert, t.node_events), values)


def after(conn: sa.Connection, cursor: int, *, limit: int) -> list[NodeEvent]:
    """Up to ``limit`` events with an id above ``cursor``, oldest first."""
    query = rows.statement(_after).limit(limit)
    return rows.records(conn, NodeEvent, query.params(cursor_=cursor))


def _after() -> sa.Select[Any]:
    e = t.node_events.c
    return sa.select(t.node_events).where(e.id > sa.bindparam("cursor_")).order_by(e.id)


def by_ids(conn: sa.Connection, ids: Iterable[int]) -> list[NodeEvent]:
    """The events among ``ids`` that exist (committed since a reader missed them)."""
    e = t.node_events.c
    query = sa.select(t.node_events).where(rows.ids_in(e.id, ids)).order_by(e.id)
    return rows.records(conn, NodeEvent, query)


def last_id(conn: sa.Connection) -> int:
    """The id of the newest event (0 when there is none)."""
    return int(conn.execute(sa.select(sa.func.max(t.node_events.c.id))).scalar() or 0)


def first_id(conn: sa.Connection) -> int:
    """The id of the oldest event kept (0 when there is none)."""
    return int(conn.execute(sa.select(sa.func.min(t.node_events.c.id))).scalar() or 0)


def prune(conn: sa.Connection, *, before: datetime, keep: int) -> int:
    """Delete the events older than ``before`` and all but the newest ``keep``; how
    many went."""
    e = t.node_events.c
    gone = conn.execute(sa.delete(t.node_events).where(e.created_at < before)).rowcount
    newest = last_id(conn)
    if newest > keep:
        gone += conn.execute(sa.delete(t.node_events).where(e.id <= newest - keep)).rowcount
    return int(gone)
