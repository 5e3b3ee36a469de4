"""A node's serial console: its log, and the websocket proxy to it.

``GET /v1/nodes/{node}/console/log`` answers what the conductor's bounded log of the
node's console output keeps (rule ``baremetal:node:get_console``), as text.

``/v1/nodes/{node}/console/stream`` is a websocket bridging to the console the
node's conductor holds: binary frames from the server carry the console's output
(the last ``history`` bytes of the log first, 4096 by default), frames from the
client (binary or text) are typed at the console.  Browsers cannot send credentials
with a websocket, so the URL carries them: the ``token`` that
``GET /v1/nodes/{node}/states/console`` puts in ``console_info.url``, given only to
callers the ``get_console`` rule lets see this node, valid for this node only and
for ``conductor.console_token_ttl`` seconds (a connection made in time stays open).
A connection without a valid token is refused before the handshake completes (403).
One node has at most ``PER_NODE`` connections open through one API process; another
is refused with 429 until one closes, so that the holder of one node's token cannot
take every console reader of the process (``_READERS``) from the other nodes.
The websocket closes (1000) when the console is disabled; while a console that is
enabled is being opened again (its conductor restarted, or another took the node
over) it stays open and waits.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections import Counter
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from metalcast.api import lookup
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Named, Operation, Param, integer, obj
from metalcast.api.operations import boolean as boolean_
from metalcast.api.operations import string as text
from metalcast.calls import CheckConsoleToken, ConsoleChunk, ReadConsole, WriteConsole
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.errors import InvalidInput, MetalcastError, NotFound

#: bytes of earlier output a new websocket connection gets first, by default
HISTORY = 4096
#: seconds one read through the conductor waits for output
READ_WAIT = 10.0
#: most bytes of one frame typed at the console
MAX_FRAME = 4096
#: websocket consoles read at once by this process (each waits in a thread)
_READERS = anyio.CapacityLimiter(64)
#: most websocket connections open to one node's console through this process
PER_NODE = 4
#: connections open per node id (changed only on the event loop)
_OPEN: Counter[int] = Counter()

CONSOLE_LOG = Named(
    "ConsoleLog",
    obj(
        {
            "output": text(),
            "offset": integer(),
            "next_offset": integer(),
            "missed": integer(),
            "open": boolean_(),
        },
        required=("output", "offset", "next_offset", "missed", "open"),
    ),
)


def websocket_url(call: Call, node_uuid: str, info: dict[str, Any]) -> dict[str, Any]:
    """``console_info`` for a console behind the proxy: its token made a URL."""
    token = str(info.get("token", ""))
    base = call.url("v1", "nodes", node_uuid, "console", "stream")
    scheme, _, rest = base.partition("://")
    ws = "wss" if scheme == "https" else "ws"
    return {"type": "websocket", "url": f"{ws}://{rest}?token={quote(token, safe='')}"}


@endpoint(
    "baremetal:node:get_console",
    doc=Operation(
        "Read what a node's console printed, as the conductor's log keeps it",
        answers={200: CONSOLE_LOG},
        query=(Param("offset", integer(), "Output from this offset on (default: all kept)"),),
    ),
)
def get_console_log(call: Call) -> object:
    raw = call.query.get("offset")
    offset: int | None = None
    if raw is not None:
        if not raw.isdigit():
            raise InvalidInput(f"offset must be a whole number of bytes, not {raw!r}")
        offset = int(raw)
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:get_console")
    chunk = call.deps.conductor.call(ReadConsole(node.id, offset), context=call.context)
    return {
        "output": base64.b64decode(chunk.data).decode("utf-8", "replace"),
        "offset": chunk.offset,
        "next_offset": chunk.next_offset,
        "missed": chunk.missed,
        "open": chunk.open,
    }


async def console_stream(websocket: WebSocket) -> None:
    """The websocket proxy (see the module docstring)."""
    deps = websocket.app.state.deps
    ident = websocket.path_params["node"]
    token = websocket.query_params.get("token", "")
    context = RequestContext(user_name=f"console {ident}", roles=frozenset())
    try:
        with deps.db.read() as conn:
            node = repo.get_node(conn, ident)
        allowed = bool(token) and await anyio.to_thread.run_sync(
            lambda: deps.conductor.call(CheckConsoleToken(node.id, token), context=context)
        )
    except NotFound:
        allowed = False
    if not allowed:
        await websocket.close(code=1008, reason="a valid console token is needed")
        return
    if _OPEN[node.id] >= PER_NODE:
        await websocket.send_denial_response(
            PlainTextResponse(
                f"this node's console has {PER_NODE} connections open already: close one",
                status_code=429,
            )
        )
        return
    history = _history(websocket.query_params.get("history"))
    _OPEN[node.id] += 1
    try:
        await websocket.accept()
        async with anyio.create_task_group() as group:
            group.start_soon(_type_into, websocket, deps, node.id, context)
            await _print_from(websocket, deps, node.id, context, history)
            group.cancel_scope.cancel()
    except (WebSocketDisconnect, anyio.ClosedResourceError):
        return
    finally:
        _OPEN[node.id] -= 1
        if not _OPEN[node.id]:
            del _OPEN[node.id]
    with contextlib.suppress(RuntimeError):
        await websocket.close(code=1000, reason="the console is closed")


def _history(raw: str | None) -> int:
    if raw is None or not raw.isdigit():
        return HISTORY
    return min(int(raw), 1024 * 1024)


async def _print_from(
    websocket: WebSocket, deps: Any, node_id: int, context: RequestContext, history: int
) -> None:
    """Send the console's output until it closes."""
    first = await _read(deps, ReadConsole(node_id, None, 0.0), context)
    offset = max(first.offset, first.next_offset - history)
    while True:
        chunk = await _read(deps, ReadConsole(node_id, offset, READ_WAIT), context)
        data = base64.b64decode(chunk.data)
        if data:
            await websocket.send_bytes(data)
        offset = chunk.next_offset
        if not chunk.open and not data and not await _still_enabled(deps, node_id):
            return


async def _still_enabled(deps: Any, node_id: int) -> bool:
    """Whether the node's console is still enabled: a console enabled but not open
    is being opened again (a conductor restarted or took the node over)."""

    def read() -> bool:
        with deps.db.read() as conn:
            return bool(repo.get_node_by_id(conn, node_id).console_enabled)

    try:
        return await anyio.to_thread.run_sync(read, limiter=_READERS)
    except NotFound:
        return False


async def _read(deps: Any, request: ReadConsole, context: RequestContext) -> ConsoleChunk:
    chunk: ConsoleChunk = await anyio.to_thread.run_sync(
        lambda: deps.conductor.call(request, context=context), limiter=_READERS
    )
    return chunk


async def _type_into(
    websocket: WebSocket, deps: Any, node_id: int, context: RequestContext
) -> None:
    """Type what the client sends at the console, until it goes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes") or (message.get("text") or "").encode("utf-8")
        for start in range(0, len(data), MAX_FRAME):
            request = WriteConsole(
                node_id, base64.b64encode(data[start : start + MAX_FRAME]).decode()
            )
            # the console not open (yet, or any more): the keystroke is lost, as on a
            # terminal whose line dropped; the output side tells why
            with contextlib.suppress(MetalcastError):
                await anyio.to_thread.run_sync(functools.partial(_write, deps, request, context))


def _write(deps: Any, request: WriteConsole, context: RequestContext) -> None:
    deps.conductor.call(request, context=context)


ROUTES: list[BaseRoute] = [
    Route("/v1/nodes/{node}/console/log", get_console_log, methods=["GET"]),
]
WEBSOCKET_ROUTES: list[BaseRoute] = [
    WebSocketRoute("/v1/nodes/{node}/console/stream", console_stream),
]
