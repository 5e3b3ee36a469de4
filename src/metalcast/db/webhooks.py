"""Webhooks and their deliveries (``webhooks``, ``webhook_deliveries``).

A webhook's signing secret is stored sealed (``signing`` is a sealed column,
:mod:`metalcast.db.sealing`) and never read back by the API.  Deliveries are made
from the node event log by whichever conductor first advances a webhook's
``cursor`` (:func:`fan_out`: a compare-and-set on the cursor, in the transaction that
inserts the deliveries), and sent by whichever conductor claims them
(:func:`claim`: an UPDATE that sets ``claimed_by`` only where nobody holds a live
claim; PostgreSQL re-checks that condition on the locked row, so two conductors
never both claim one delivery).

Errors raised: ``NotFound`` (404), ``InvalidInput`` (400) for a bad marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from metalcast.db import events, rows
from metalcast.db import tables as t
from metalcast.db.events import NodeEvent
from metalcast.db.models import JSONDict, from_row
from metalcast.db.rows import Page, new_uuid, utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


@dataclass(slots=True)
class Webhook:
    id: int
    uuid: str
    url: str
    #: {"secret": <sealed>}: revealed only by the conductor that signs
    signing: JSONDict
    kinds: list[str]
    nodes: list[str]
    cursor: int
    created_at: datetime
    description: str | None = None
    updated_at: datetime | None = None

    def wants(self, event: NodeEvent) -> bool:
        """Whether ``event`` passes this webhook's filters."""
        if self.nodes and event.node_uuid not in self.nodes:
            return False
        return not self.kinds or bool(set(self.kinds) & event.kinds)


@dataclass(slots=True)
class Delivery:
    id: int
    uuid: str
    webhook_id: int
    event_id: int
    payload: JSONDict
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    response_code: int | None = None
    last_error: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    updated_at: datetime | None = None


def create(
    conn: sa.Connection,
    *,
    url: str,
    secret: str,
    kinds: Sequence[str],
    nodes: Sequence[str],
    description: str | None,
) -> Webhook:
    """Store a webhook; it gets the events after the newest one now."""
    values = {
        "uuid": new_uuid(),
        "url": url,
        "signing": {"secret": secret},
        "kinds": sorted(kinds),
        "nodes": sorted(nodes),
        "description": description,
        "cursor": events.last_id(conn),
    }
    webhook_id = rows.insert(conn, t.webhooks, values)
    return rows.by_id(conn, t.webhooks, Webhook, webhook_id, "Webhook")


def get(conn: sa.Connection, uuid: str) -> Webhook:
    """Raises ``NotFound`` (and ``InvalidInput`` for a malformed UUID)."""
    return from_row(Webhook, rows.get_by_ident(conn, t.webhooks, uuid, "Webhook"))


def by_id(conn: sa.Connection, webhook_id: int) -> Webhook | None:
    row = conn.execute(sa.select(t.webhooks).where(t.webhooks.c.id == webhook_id)).mappings()
    found = row.first()
    return None if found is None else from_row(Webhook, found)


def list_all(conn: sa.Connection) -> list[Webhook]:
    return rows.records(conn, Webhook, sa.select(t.webhooks).order_by(t.webhooks.c.id))


def delete(conn: sa.Connection, webhook: Webhook) -> None:
    """Delete the webhook with its deliveries."""
    d = t.webhook_deliveries.c
    conn.execute(sa.delete(t.webhook_deliveries).where(d.webhook_id == webhook.id))
    conn.execute(sa.delete(t.webhooks).where(t.webhooks.c.id == webhook.id))


def deliveries(
    conn: sa.Connection, webhook: Webhook, page: Page, *, status: str | None = None
) -> list[Delivery]:
    """A page of the webhook's deliveries (in ``status`` when given)."""
    d = t.webhook_deliveries.c
    query = sa.select(t.webhook_deliveries).where(d.webhook_id == webhook.id)
    if status is not None:
        query = query.where(d.status == status)
    return rows.records(conn, Delivery, rows.paginate(conn, t.webhook_deliveries, query, page))


# --------------------------------------------------------------------- the conductor


def fan_out(conn: sa.Connection, webhook: Webhook, *, limit: int) -> int:
    """Turn the events after the webhook's cursor that it wants into pending
    deliveries and move the cursor past them, if no other conductor moved it first
    (then nothing is written); how many deliveries were made."""
    found = events.after(conn, webhook.cursor, limit=limit)
    if not found:
        return 0
    w = t.webhooks.c
    moved = conn.execute(
        sa.update(t.webhooks)
        .where(w.id == webhook.id, w.cursor == webhook.cursor)
        .values(cursor=found[-1].id)
    ).rowcount
    if moved != 1:
        return 0  # another conductor fanned these out
    now = utcnow()
    wanted = [
        {
            "uuid": new_uuid(),
            "webhook_id": webhook.id,
            "event_id": event.id,
            "payload": events.document(event),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in found
        if webhook.wants(event)
    ]
    if wanted:
        conn.execute(sa.insert(t.webhook_deliveries), wanted)
    webhook.cursor = found[-1].id
    return len(wanted)


def claim(conn: sa.Connection, *, host: str, hold: float, limit: int) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries for ``host`` for ``hold`` seconds; them."""
    d = t.webhook_deliveries.c
    now = utcnow()
    until = now + timedelta(seconds=hold)
    free = sa.or_(d.claimed_until.is_(None), d.claimed_until < now)
    due = sa.and_(d.status == PENDING, d.next_attempt_at <= now, free)
    candidates = sa.select(d.id).where(due).order_by(d.id).limit(limit)
    ids = [row[0] for row in conn.execute(candidates)]
    if not ids:
        return []
    # the conditions again: on PostgreSQL they are checked anew on each locked row, so
    # a delivery another conductor claimed meanwhile is not taken twice
    conn.execute(
        sa.update(t.webhook_deliveries)
        .where(rows.ids_in(d.id, ids), due)
        .values(claimed_by=host, claimed_until=until)
    )
    query = sa.select(t.webhook_deliveries).where(
        rows.ids_in(d.id, ids), d.claimed_by == host, d.claimed_until == until
    )
    return rows.records(conn, Delivery, query)


def finish(
    conn: sa.Connection,
    delivery: Delivery,
    *,
    status: str,
    response_code: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Record one attempt: delivered, failed for good, or pending until ``retry_at``
    (``last_error`` keeps the last failed try's error)."""
    values: dict[str, Any] = {
        "status": status,
        "attempts": delivery.attempts + 1,
        "response_code": response_code,
        "claimed_by": None,
        "claimed_until": None,
        "updated_at": utcnow(),
    }
    if error is not None:  # a later success keeps the error of the try before
        values["last_error"] = error
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    d = t.webhook_deliveries.c
    conn.execute(sa.update(t.webhook_deliveries).where(d.id == delivery.id).values(**values))


def prune(conn: sa.Connection, *, before: datetime) -> int:
    """Delete finished deliveries last touched before ``before``."""
    d = t.webhook_deliveries.c
    done = sa.and_(d.status != PENDING, sa.func.coalesce(d.updated_at, d.created_at) < before)
    return int(conn.execute(sa.delete(t.webhook_deliveries).where(done)).rowcount)
