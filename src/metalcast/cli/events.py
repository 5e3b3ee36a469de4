"""The node event stream on the command line: ``metalcast events`` tails it, and
``--wait`` wakes on it (:class:`ChangeWatch`) instead of polling every second.

The stream is ``GET /v1/events`` with ``Accept: text/event-stream`` (docs/events.md).
A server without it (an Ironic, or an older metalcast: any error status, or an
answer that is not a stream) leaves ``--wait`` polling as before, and
``metalcast events`` saying so.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from metalcast.cli.client import ApiClient, CliError
from metalcast.cli.output import stderr, stdout
from metalcast.cli.session import session_of

SSE = "text/event-stream"
#: the comment a stream starts with: from then on it receives every event
OPENING = "metalcast node events"
#: seconds without a byte after which a stream is taken for dead (the server sends
#: a heartbeat comment every events.heartbeat_interval, 15 s by default)
READ_TIMEOUT = 60.0
#: seconds a --wait with a stream waits at most between looks at its node (a stream
#: that went quiet is not trusted for longer)
SAFETY_INTERVAL = 10.0


class NoEventStream(CliError):
    """The server does not serve GET /v1/events as a stream."""


@dataclass(frozen=True, slots=True)
class Message:
    """One server-sent message: a node event (``data`` with ``id``), a control
    message (``event`` named: ``lost``, ``overflow``) or a comment (heartbeat)."""

    id: int | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None


def parse(lines: Iterable[str]) -> Iterator[Message]:
    """The messages in the lines of a server-sent event stream."""
    fields: dict[str, Any] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or fields:
                yield Message(
                    id=fields.get("id"),
                    event=fields.get("event"),
                    data=json.loads("\n".join(data)) if data else None,
                )
            fields, data = {}, []
        elif line.startswith(":"):
            yield Message(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "id" and value.isdigit():
                fields["id"] = int(value)
            elif name == "event":
                fields["event"] = value


@contextlib.contextmanager
def open_stream(client: ApiClient, params: Mapping[str, str]) -> Iterator[Iterator[Message]]:
    """``GET /v1/events`` as a stream of :class:`Message`.

    Raises:
        NoEventStream: the server answered with an error or not with a stream.
        ApiError-like CliError: the request could not be sent.
    """
    headers = {"Accept": SSE, "X-OpenStack-Ironic-API-Version": client.api_version}
    timeout = httpx.Timeout(30.0, read=READ_TIMEOUT)
    try:
        with client.http().stream(
            "GET", "/v1/events", params=dict(params), headers=headers, timeout=timeout
        ) as response:
            kind = response.headers.get("content-type", "")
            if response.is_error or not kind.startswith(SSE):
                response.read()
                raise NoEventStream(_refusal(response))
            yield parse(response.iter_lines())
    except httpx.HTTPError as exc:
        raise CliError(f"the event stream of {client.url} failed: {exc}") from None


def _refusal(response: httpx.Response) -> str:
    if response.is_error:
        try:
            detail = json.loads(json.loads(response.text)["error_message"])["faultstring"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200]
        return f"the server refused the event stream ({response.status_code}): {detail}"
    return "the server does not serve an event stream at /v1/events"


class ChangeWatch:
    """Wakes a ``--wait`` when its node changes: an event stream of that node read in
    a thread.  Without a stream (the server has none, or it ended) :meth:`wait`
    sleeps ``poll_interval``, as the polling wait always did."""

    def __init__(self, client: ApiClient, node: str, *, poll_interval: float) -> None:
        self._changed = threading.Event()
        self._opened = threading.Event()
        self.streaming = False
        self.poll_interval = poll_interval
        self._closed = False
        self._stop = contextlib.ExitStack()
        self._thread = threading.Thread(
            target=self._read, args=(client, node), name="event-stream", daemon=True
        )

    def __enter__(self) -> ChangeWatch:
        self._thread.start()
        # the stream is live once the server's opening comment arrived: a change
        # after it wakes the waiter, so the node is read only after this
        self._opened.wait(SAFETY_INTERVAL)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed = True
        self.streaming = False
        self._stop.close()  # closes the connection: the reader thread ends

    def _read(self, client: ApiClient, node: str) -> None:
        try:
            messages = self._stop.enter_context(open_stream(client, {"node": node}))
            for message in messages:
                if self._closed:
                    break
                if message.comment == OPENING:
                    self.streaming = True
                    self._opened.set()
                if message.data is not None:
                    self._changed.set()
        except Exception:  # boundary: whatever ends the stream, --wait polls on
            pass
        finally:
            self.streaming = False
            self._opened.set()
            self._changed.set()

    def wait(self, timeout: float) -> None:
        """Until the node changed (or ``timeout``, at most :data:`SAFETY_INTERVAL`,
        passed); ``poll_interval`` without a stream."""
        limit = SAFETY_INTERVAL if self.streaming else self.poll_interval
        self._changed.wait(max(0.0, min(timeout, limit)))
        self._changed.clear()


def event_line(event: Mapping[str, Any]) -> Text:
    """``2026-12-06T10:00:00+00:00 <node> provision_state: deploying → active``."""
    changes = event.get("changes") or {}
    kind = event.get("type")
    if kind == "updated":
        what = ", ".join(
            f"{name}: {_short(change.get('old'))} → {_short(change.get('new'))}"
            for name, change in changes.items()
        )
    else:
        state = (changes.get("provision_state") or {}).get("old" if kind == "deleted" else "new")
        what = f"{kind} ({state})" if state else str(kind)
    return Text.assemble(
        (f"{event.get('created_at')} ", "dim"), (f"{event.get('node_uuid')} ", "cyan"), what
    )


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def tail(
    ctx: typer.Context,
    *,
    node: Annotated[
        list[str] | None,
        typer.Option(help="Only this node (UUID or name; repeat for more).", show_default=False),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            help="Only events about this (provision_state, power_state, maintenance, "
            "last_error, progress, created, deleted...; repeat for more).",
            show_default=False,
        ),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(help="Start after this event id (replays what followed it).", min=0),
    ] = None,
) -> None:
    """Follow node changes as they happen (GET /v1/events), until Ctrl-C.

    Shows only the nodes your credentials may see.  With --json, one event per line."""
    session = session_of(ctx)
    params = {"node": ",".join(node or ()), "kind": ",".join(kind or ())}
    if after is not None:
        params["since"] = str(after)
    params = {k: v for k, v in params.items() if v}
    console = stdout()
    with open_stream(session.client, params) as messages:
        for message in messages:
            if message.comment == OPENING:
                stderr().print(f"following node events at {session.client.url} (Ctrl-C stops)")
            elif message.event:
                console.print(Text(f"({message.event}: {message.data})", style="yellow"))
            elif message.data is not None:
                if session.as_json:
                    print(json.dumps(message.data, sort_keys=True), flush=True)
                else:
                    console.print(event_line(message.data), soft_wrap=True)
