"""The node event stream of a real ``metalcast server``, read by a real HTTP client.

A reader thread holds ``GET /v1/events`` (``Accept: text/event-stream``) open with
httpx and parses the server-sent events into a queue while the test enrolls, manages
and provides fake-hardware nodes through the API; the test waits on the queue (no
sleeps).  Header authentication on loopback gives tenants: each sees only the
events of its own nodes.  A stream resumed with ``Last-Event-ID`` gets exactly what
followed that id; a process over ``events.max_subscribers`` answers 503; SIGTERM
ends open streams and the server exits 0 (``conftest``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

MetalcastServer = Any
StartServer = Callable[..., contextlib.AbstractContextManager[Any]]

ENV = {
    "METALCAST_API__AUTH_STRATEGY": "header",
    "METALCAST_EVENTS__POLL_INTERVAL": "0.05",
    "METALCAST_EVENTS__HEARTBEAT_INTERVAL": "0.5",
    "METALCAST_EVENTS__MAX_SUBSCRIBERS": "3",
}
ADMIN = {"X-Roles": "admin", "X-User-Id": "root", "OpenStack-System-Scope": "all"}
VERSION = {"X-OpenStack-Ironic-API-Version": "latest"}
WAIT = 60.0


def tenant(project: str) -> dict[str, str]:
    return {"X-Roles": "reader", "X-User-Id": f"reader-{project}", "X-Project-Id": project}


@dataclass
class Stream:
    """One open event stream: its parsed events (and comments) in arrival order."""

    status: int = 0
    got: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    opened: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def next(self) -> dict[str, Any]:
        """The next message: ``{"id", "event", "data"}`` or ``{"comment"}``."""
        try:
            return self.got.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"no event within {WAIT}s")

    def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The node events (data) received up to and including the first that
        ``done`` accepts."""
        seen = []
        while True:
            message = self.next()
            if "data" not in message or message.get("event"):
                continue
            seen.append(message["data"])
            if done(message["data"]):
                return seen


def _read(response: httpx.Response, stream: Stream) -> None:
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            stream.got.put({"comment": line[1:].strip()})
        elif line.startswith("id: "):
            message["id"] = int(line[4:])
        elif line.startswith("event: "):
            message["event"] = line[7:]
        elif line.startswith("data: "):
            message["data"] = json.loads(line[6:])
        elif line == "" and message:
            stream.got.put(message)
            message = {}


@contextlib.contextmanager
def open_stream(url: str, headers: dict[str, str], query: str = "") -> Iterator[Stream]:
    """Read ``GET /v1/events`` in a thread while the block runs; close it after."""
    stream = Stream()
    client = httpx.Client(timeout=httpx.Timeout(WAIT, read=None))
    sent = {**headers, "Accept": "text/event-stream"}

    def run() -> None:
        try:
            with client.stream("GET", f"{url}/v1/events{query}", headers=sent) as response:
                stream.status = response.status_code
                stream.opened.set()
                if response.status_code == 200:
                    _read(response, stream)
                else:
                    response.read()
                    stream.got.put({"error": response.json()})
        except httpx.HTTPError:
            pass  # closed by the test
        finally:
            stream.opened.set()
            stream.ended.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert stream.opened.wait(WAIT), "the stream did not open"
    try:
        yield stream
    finally:
        client.close()
        thread.join(WAIT)


def _started(stream: Stream) -> None:
    """Wait for the stream's opening comment: from then on it receives every event."""
    assert stream.status == 200, stream.next()
    first = stream.next()
    assert first.get("comment") == "metalcast node events", first


def _api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={**ADMIN, **VERSION}, timeout=WAIT)


def _enroll(api: httpx.Client, **fields: Any) -> str:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", **fields})
    assert response.status_code == 201, response.text
    uuid: str = response.json()["uuid"]
    return uuid


def _move(api: httpx.Client, uuid: str, target: str) -> None:
    response = api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
    assert response.status_code == 202, response.text


def _reached(uuid: str, state: str) -> Callable[[dict[str, Any]], bool]:
    def done(event: dict[str, Any]) -> bool:
        change = event["changes"].get("provision_state")
        return event["node_uuid"] == uuid and change is not None and change["new"] == state

    return done


@pytest.fixture(scope="module")
def server(start_metalcast_server: StartServer) -> Iterator[MetalcastServer]:
    with start_metalcast_server(env=ENV) as running:
        yield running


def test_enroll_manage_provide_streams_each_change_and_resumes_after_an_id(
    server: MetalcastServer,
) -> None:
    with _api(server.url) as api, open_stream(server.url, ADMIN) as stream:
        _started(stream)
        uuid = _enroll(api, name="streamed")
        _move(api, uuid, "manage")
        stream.until(_reached(uuid, "manageable"))
        _move(api, uuid, "provide")
        events = stream.until(_reached(uuid, "available"))
    ours = [e for e in events if e["node_uuid"] == uuid]
    moves = [
        (e["changes"]["provision_state"]["old"], e["changes"]["provision_state"]["new"])
        for e in ours
        if "provision_state" in e["changes"]
    ]
    assert moves[0][0] == "manageable"
    assert moves[-1][1] == "available"
    assert all(old == new for (_, old), (new, _) in itertools.pairwise(moves))
    assert all(e["request_id"] is None or e["request_id"].startswith("req-") for e in ours)

    # a client that saw up to the first of these reconnects: it gets what followed,
    # in order, then the live events
    with _api(server.url) as api:
        page = api.get(f"/v1/events?node={uuid}").json()["events"]
        resume_after = page[1]["id"]
        missed = [e["id"] for e in page[2:]]
        resumed = {**ADMIN, "Last-Event-ID": str(resume_after)}
        with open_stream(server.url, resumed, f"?node={uuid}") as again:
            _started(again)
            replayed = [again.next() for _ in missed]
            assert [m["id"] for m in replayed] == missed
            api.put(f"/v1/nodes/{uuid}/maintenance", json={"reason": "resumed"})
            live = again.until(lambda e: "maintenance" in e["changes"])
    assert live[-1]["changes"]["maintenance_reason"] == {"old": None, "new": "resumed"}


def test_a_tenant_sees_only_its_own_nodes_and_filters_by_kind(server: MetalcastServer) -> None:
    p1_stream = open_stream(server.url, tenant("p1"), "?kind=maintenance,deleted")
    with _api(server.url) as api, p1_stream as p1:
        _started(p1)
        theirs = _enroll(api, owner="p2")
        mine = _enroll(api, owner="p1")
        for uuid in (theirs, mine):
            response = api.put(f"/v1/nodes/{uuid}/maintenance", json={"reason": "r"})
            assert response.status_code == 202, response.text
        for uuid in (theirs, mine):
            assert api.delete(f"/v1/nodes/{uuid}").status_code == 204
        seen = p1.until(lambda e: e["node_uuid"] == mine and e["type"] == "deleted")
    # the other tenant's changes were committed before these, so they would have come
    assert {e["node_uuid"] for e in seen} == {mine}
    assert [e["type"] for e in seen] == ["updated", "deleted"]
    assert seen[0]["kinds"] == ["maintenance", "maintenance_reason"]


def test_heartbeats_keep_an_idle_stream_open(server: MetalcastServer) -> None:
    with open_stream(server.url, tenant("p9")) as stream:
        _started(stream)
        assert stream.next() == {"comment": "heartbeat"}


def test_bad_filters_and_a_hidden_node_are_refused_before_streaming(
    server: MetalcastServer,
) -> None:
    with _api(server.url) as api:
        hidden = _enroll(api, owner="p2")
    with open_stream(server.url, tenant("p1"), f"?node={hidden}") as stream:
        assert stream.status == 404
        assert "could not be found" in stream.next()["error"]["error_message"]
    with open_stream(server.url, ADMIN, "?kind=temperature") as stream:
        assert stream.status == 400


def test_over_max_subscribers_a_stream_is_refused_and_sigterm_ends_open_streams(
    start_metalcast_server: StartServer,
) -> None:
    env = {**ENV, "METALCAST_EVENTS__MAX_SUBSCRIBERS": "2"}
    with contextlib.ExitStack() as streams:
        with start_metalcast_server(env=env) as server:
            open_ones = [streams.enter_context(open_stream(server.url, ADMIN)) for _ in range(2)]
            for stream in open_ones:
                _started(stream)
            with open_stream(server.url, ADMIN) as refused:
                assert refused.status == 503
                message = refused.next()["error"]["error_message"]
                assert "events.max_subscribers" in message
        # the server stopped (exit 0, checked by conftest) with both streams open:
        # it ended them rather than wait for them forever
        for stream in open_ones:
            assert stream.ended.wait(WAIT)
