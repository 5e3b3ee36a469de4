"""GET /v1/events: the node event stream (metalcast's own; docs/events.md).

With ``Accept: text/event-stream`` the answer is a server-sent event stream: each
node event (:mod:`metalcast.db.events`) as it is committed, whichever conductor made
it, as ``id: <n>`` and ``data: <JSON>``; a comment every ``events.heartbeat_interval``
seconds; a client that reconnects with ``Last-Event-ID`` (browsers' EventSource
does) gets what it missed first.  Otherwise the answer is a JSON page of the log
after ``since``: what a client without a stream polls.

Both show only the events of nodes the caller may ``baremetal:node:get`` (the node's
owner and lessee when the event happened decide), filtered by ``node`` and ``kind``.
A stream lasts at most ``events.max_stream_seconds`` (the client reconnects with
``Last-Event-ID``, and its credentials are checked again).

Errors: ``InvalidInput`` (400) for an unknown kind or a bad id, ``NotFound`` (404)
for a node the caller cannot see, ``TooManySubscribers`` (503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from metalcast.api import lookup, policy
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, Param, array, integer, obj, string
from metalcast.api.params import check_query, parse_limit
from metalcast.api.policy import Policy
from metalcast.api.stream import EventHub, Subscriber, backlog, oldest_kept
from metalcast.context import RequestContext
from metalcast.db import events
from metalcast.db.engine import Database
from metalcast.db.events import NodeEvent
from metalcast.db.rows import echo
from metalcast.errors import InvalidInput

_log = logging.getLogger(__name__)

SSE = "text/event-stream"
#: nodes one ``node`` filter may name
MAX_NODES = 100
#: events one JSON page looks at most
SCAN = 5000
#: how soon a client reconnects after the stream ends (milliseconds, SSE ``retry``)
RETRY_MS = 2000

QUERY = (
    Param("node", string(), "Events of these nodes only (UUIDs or names, comma-separated)."),
    Param(
        "kind",
        string(),
        "Events about these only (comma-separated): "
        + ", ".join(sorted(events.KINDS))
        + ". An event matches when it changes any of them.",
    ),
    Param("since", integer(minimum=0), "JSON page: the events after this id (default 0)."),
    Param("limit", integer(minimum=0), "JSON page: at most this many (0: api.max_limit)."),
)
_CHANGE = obj({"old": {}, "new": {}})
EVENT_DOC = obj(
    {
        "id": integer(),
        "node_uuid": string(format="uuid"),
        "type": string(enum=[events.CREATED, events.UPDATED, events.DELETED]),
        "kinds": array(string()),
        "changes": obj(additionalProperties=_CHANGE),
        "created_at": string(),
        "request_id": {"type": ["string", "null"]},
    },
    required=("id", "node_uuid", "type", "kinds", "changes", "created_at"),
)
PAGE_DOC = obj(
    {"events": array(EVENT_DOC), "last_id": integer(description="The id to ask after next.")},
    required=("events", "last_id"),
)


render = events.document


def _kinds(value: str | None) -> frozenset[str]:
    asked = frozenset(k.strip() for k in (value or "").split(",") if k.strip())
    unknown = sorted(asked - events.KINDS)
    if unknown:
        raise InvalidInput(
            f"Unknown event kind(s): {', '.join(echo(k) for k in unknown)}. "
            f"Known kinds: {', '.join(sorted(events.KINDS))}."
        )
    return asked


def _nodes(call: Call, value: str | None) -> frozenset[str]:
    """The UUIDs of the nodes named (each one the caller may see).  Raises NotFound."""
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    if not names:
        return frozenset()
    if len(names) > MAX_NODES:
        raise InvalidInput(
            f"The node filter names {len(names)} nodes; it may name at most {MAX_NODES} "
            "(leave node out to follow every node you may see)."
        )
    with call.deps.db.read() as conn:
        return frozenset(
            lookup.node(conn, call, ident=name, action=lookup.NODE_GET).uuid for name in names
        )


def _event_id(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidInput(f"{name} must be an event id (a whole number), not '{echo(value)}'.")
    return int(value)


def visibility(rules: Policy, context: RequestContext) -> Callable[[NodeEvent], bool]:
    """Whether ``context`` may see an event: ``baremetal:node:get`` on its node as it
    was (owner, lessee) when the event happened."""

    def allowed(event: NodeEvent) -> bool:
        target = policy.node_target(event.owner, event.lessee)
        return rules.allows(context, lookup.NODE_GET, target)

    return allowed


@endpoint(
    "baremetal:events:get",
    doc=Operation(
        "Node events: a server-sent event stream (Accept: text/event-stream), else a page",
        answers={200: PAGE_DOC},
        query=QUERY,
        errors=frozenset({404, 503}),
        description=(
            "With `Accept: text/event-stream`, a stream of node changes as they are "
            "committed (`id:` the event id, `data:` the event as in `events`), resumed "
            "after the `Last-Event-ID` header; else the events after `since`. Only events "
            "of nodes the caller may get. See docs/events.md."
        ),
    ),
)
def get_events(call: Call) -> object:
    check_query(call.query, QUERY, what="node events")
    kinds = _kinds(call.query.get("kind"))
    nodes = _nodes(call, call.query.get("node"))
    allowed = visibility(call.deps.policy, call.context)
    subscriber = Subscriber(allowed=allowed, kinds=kinds, nodes=nodes)
    if SSE in call.headers.get("accept", ""):
        resume = _event_id("Last-Event-ID", call.headers.get("last-event-id"))
        if resume is None:
            resume = _event_id("since", call.query.get("since"))
        hub = call.deps.events
        assert hub is not None
        return EventStream(hub, subscriber, resume=resume, db=call.deps.db)
    since = _event_id("since", call.query.get("since")) or 0
    limit = parse_limit(call.query.get("limit"), call.deps.settings.api.max_limit)
    found, cursor = _page(call.deps.db, subscriber, since=since, limit=limit)
    return {"events": [render(e) for e in found], "last_id": cursor}


def _page(
    db: Database, subscriber: Subscriber, *, since: int, limit: int
) -> tuple[list[NodeEvent], int]:
    """Up to ``limit`` events after ``since`` that ``subscriber`` wants, and the id
    of the last event looked at (where the next page starts).  At most
    :data:`SCAN` events are looked at: a caller who may see few of them pages on
    rather than make one request read the whole log."""
    found: list[NodeEvent] = []
    cursor = since
    while len(found) < limit and cursor - since < SCAN:
        batch = backlog(db, cursor, until=2**62)
        if not batch:
            break
        for event in batch:
            cursor = event.id
            if subscriber.wants(event):
                found.append(event)
                if len(found) == limit:
                    break
    return found, cursor


def _frame(event: NodeEvent) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (event.id, orjson.dumps(render(event)))


def _control(name: str, document: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(document))


class EventStream(Response):
    """The SSE answer: subscribes on the event loop (503 when the process serves
    ``events.max_subscribers`` streams), sends what a resuming client missed, then
    the live events, heartbeats between them, until the client goes or the stream
    reaches ``events.max_stream_seconds``."""

    media_type = SSE

    def __init__(self, hub: EventHub, subscriber: Subscriber, *, resume: int | None, db: Database):
        super().__init__()
        self.hub = hub
        self.subscriber = subscriber
        self.resume = resume
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # TooManySubscribers propagates: nothing is sent yet, the middleware answers 503
        live_from = await self.hub.subscribe(self.subscriber)
        _log.info("node event stream opened (%d open in this process)", len(self.hub.subscribers))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            streaming = asyncio.ensure_future(self._stream(send, live_from))
            await _until_disconnect(receive, streaming)
        finally:
            self.hub.unsubscribe(self.subscriber)

    async def _stream(self, send: Send, live_from: int) -> None:
        async def put(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        settings = self.hub.settings
        await put(b"retry: %d\n: metalcast node events\n\n" % RETRY_MS)
        sent: set[int] = set()
        if self.resume is not None:
            async for chunk in self._missed(live_from, sent):
                await put(chunk)
        ends = time.monotonic() + settings.max_stream_seconds
        while time.monotonic() < ends:
            try:
                await asyncio.wait_for(self.subscriber.ready.wait(), settings.heartbeat_interval)
            except TimeoutError:
                await put(b": heartbeat\n\n")
                continue
            if self.subscriber.closed:
                break
            if self.subscriber.overflowed:
                await put(_control("overflow", {"message": "too slow: reconnect"}))
                break
            for event in self.subscriber.take():
                if event.id not in sent:
                    await put(_frame(event))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _missed(self, live_from: int, sent: set[int]) -> AsyncIterator[bytes]:
        """What happened after ``resume`` up to where the live events start."""
        assert self.resume is not None
        oldest = await run_in_threadpool(oldest_kept, self.db)
        if oldest and self.resume + 1 < oldest:
            yield _control("lost", {"message": "events were pruned", "first_id": oldest})
        cursor = self.resume
        while cursor < live_from:
            batch = await run_in_threadpool(backlog, self.db, cursor, until=live_from)
            if not batch:
                return
            for event in batch:
                sent.add(event.id)
                if self.subscriber.wants(event):
                    yield _frame(event)
            cursor = batch[-1].id


async def _until_disconnect(receive: Receive, streaming: asyncio.Future[None]) -> None:
    """Wait for the stream to end or the client to go, whichever first; then stop
    the other.  Raises what the stream raised."""
    disconnected = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait({streaming, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (streaming, disconnected):
            task.cancel()
        ended = await asyncio.gather(streaming, disconnected, return_exceptions=True)
    if isinstance(ended[0], Exception):
        raise ended[0]


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


ROUTES = [Route("/v1/events", get_events, methods=["GET"])]
