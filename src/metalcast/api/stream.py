"""The node event stream's plumbing in an API process: one tail of the event log
shared by every subscriber.

Conductors write node events into the database (:mod:`metalcast.db.events`) in the
transaction of the change, whichever process they run in.  Each API process runs
one :class:`EventHub`: while at least one client subscribes, one asyncio task reads
the events after the last one it saw every ``events.poll_interval`` seconds (one
query per interval per process, however many subscribers) and offers each to every
:class:`Subscriber`, which keeps those its filters and its caller's rights let
through.  With no subscriber, the task ends and the process reads nothing.

Ids are taken when a transaction inserts, not when it commits (PostgreSQL): the tail
may see id 8 while 7 is still uncommitted.  It remembers such gaps for
:data:`GAP_GRACE` seconds and looks for them again with the next reads, so a late
commit is delivered, after its successors; a gap left by a rolled-back transaction
is forgotten after the grace.

A subscriber that cannot keep up (more than :data:`BACKLOG` events waiting) is told
so and its stream ends: the client resumes with ``Last-Event-ID``.

Errors: :class:`TooManySubscribers` (503) when ``events.max_subscribers`` streams
are open already.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from metalcast.config import EventsSettings
from metalcast.db import events
from metalcast.db.engine import Database
from metalcast.db.events import NodeEvent
from metalcast.errors import ServiceUnavailable

_log = logging.getLogger(__name__)

#: events one read takes at most (more wait for the next read, at once)
BATCH = 500
#: events a subscriber may have waiting before it is cut off
BACKLOG = 10_000
#: seconds a gap in the ids is looked for again (an uncommitted transaction's)
GAP_GRACE = 30.0
#: gaps remembered at most
MAX_GAPS = 10_000


class TooManySubscribers(ServiceUnavailable):
    """This API process serves ``events.max_subscribers`` streams already."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This API process already serves {limit} event streams (events.max_subscribers); "
            "try again later or another API process."
        )


@dataclass(eq=False)
class Subscriber:
    """One stream's filters and the events waiting for it."""

    #: whether the caller may see an event (its node's owner and lessee decide)
    allowed: Callable[[NodeEvent], bool]
    #: the kinds it asked for (empty: all)
    kinds: frozenset[str] = frozenset()
    #: the node UUIDs it asked for (empty: all)
    nodes: frozenset[str] = frozenset()
    waiting: collections.deque[NodeEvent] = field(default_factory=collections.deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when more than BACKLOG events waited: the stream ends
    overflowed: bool = False
    #: set when the process shuts down: the stream ends (the client reconnects)
    closed: bool = False

    def wants(self, event: NodeEvent) -> bool:
        """Whether ``event`` passes this subscriber's filters and rights."""
        if self.nodes and event.node_uuid not in self.nodes:
            return False
        if self.kinds and not self.kinds & event.kinds:
            return False
        return self.allowed(event)

    def offer(self, event: NodeEvent) -> None:
        if self.overflowed or not self.wants(event):
            return
        if len(self.waiting) >= BACKLOG:
            self.overflowed = True
            self.waiting.clear()
        else:
            self.waiting.append(event)
        self.ready.set()

    def take(self) -> list[NodeEvent]:
        """The waiting events, oldest first (and forget them)."""
        out = list(self.waiting)
        self.waiting.clear()
        self.ready.clear()
        return out


class EventHub:
    """The shared tail of the event log in one API process (see the module)."""

    def __init__(self, db: Database, settings: EventsSettings) -> None:
        self.db = db
        self.settings = settings
        self.subscribers: set[Subscriber] = set()
        #: the newest id read (None until the first read)
        self.cursor: int | None = None
        #: ids below the cursor not seen yet -> when the gap was found (monotonic)
        self._gaps: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self.reads = 0

    async def subscribe(self, subscriber: Subscriber) -> int:
        """Add ``subscriber`` (starting the tail if it is the first); the id its live
        events follow: what a resuming client missed is up to it and older.

        Raises:
            TooManySubscribers: ``events.max_subscribers`` are subscribed already.
        """
        if self.closing:
            raise ServiceUnavailable("This API process is shutting down; try again shortly.")
        if len(self.subscribers) >= self.settings.max_subscribers:
            raise TooManySubscribers(self.settings.max_subscribers)
        if self.cursor is None:
            newest = await run_in_threadpool(self._last_id)
            if self.cursor is None:  # nobody read meanwhile
                self.cursor = newest
        if len(self.subscribers) >= self.settings.max_subscribers:
            raise TooManySubscribers(self.settings.max_subscribers)
        self.subscribers.add(subscriber)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._tail())
        return self.cursor

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def close(self) -> None:
        """End every stream and refuse new ones: the server is stopping (it waits
        for open requests, and a stream would never finish).  On the event loop."""
        self.closing = True
        for subscriber in self.subscribers:
            subscriber.closed = True
            subscriber.ready.set()

    def _last_id(self) -> int:
        with self.db.read() as conn:
            return events.last_id(conn)

    async def _tail(self) -> None:
        while self.subscribers:
            try:
                found = await run_in_threadpool(self.read)
            except Exception:  # boundary: a database hiccup must not end every stream
                _log.exception("reading the node event log failed; trying again")
                found = []
            for event in found:
                for subscriber in tuple(self.subscribers):
                    subscriber.offer(event)
            if len(found) < BATCH:
                await asyncio.sleep(self.settings.poll_interval)
        self._task = None

    def read(self) -> list[NodeEvent]:
        """The events committed since the last read (and late ones filling gaps)."""
        self.reads += 1
        with self.db.read() as conn:
            if self.cursor is None:
                self.cursor = events.last_id(conn)
            found = events.after(conn, self.cursor, limit=BATCH)
            late = events.by_ids(conn, self._gaps) if self._gaps else []
        now = time.monotonic()
        for event in late:
            del self._gaps[event.id]
        for event in found:
            self._note_gaps(self.cursor, event.id, now)
            self.cursor = event.id
        for missing, since in list(self._gaps.items()):
            if now - since > GAP_GRACE:
                del self._gaps[missing]
        return late + found

    def _note_gaps(self, cursor: int, event_id: int, now: float) -> None:
        for missing in range(cursor + 1, min(event_id, cursor + 1 + MAX_GAPS)):
            if len(self._gaps) >= MAX_GAPS:
                return
            self._gaps[missing] = now


def backlog(db: Database, after: int, *, until: int, limit: int = BATCH) -> list[NodeEvent]:
    """Events with ids in (``after``, ``until``]: what a resuming client missed."""
    with db.read() as conn:
        found = events.after(conn, after, limit=limit)
    return [event for event in found if event.id <= until]


def oldest_kept(db: Database) -> int:
    """The id of the oldest event the log still holds (0: none)."""
    with db.read() as conn:
        return events.first_id(conn)
