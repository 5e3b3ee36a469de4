"""Events across processes: two ``metalcast api`` and three ``metalcast conductor``
processes on PostgreSQL.  A stream opened on one API process sees the changes made
through the other and carried out by whichever conductor owns each node; a webhook
gets each event once, however many conductors run its pass."""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import HEADERS, deployment

from metalcast.cli.events import parse

pytestmark = pytest.mark.postgres

ENV = {
    "METALCAST_EVENTS__POLL_INTERVAL": "0.05",
    "METALCAST_EVENTS__WEBHOOK_INTERVAL": "0.05",
}
WAIT = 120.0
NODES = 6


@contextlib.contextmanager
def stream(url: str) -> Iterator[queue.Queue[dict[str, Any]]]:
    """The node events of ``GET /v1/events`` on ``url``, read in a thread."""
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    opened = threading.Event()
    client = httpx.Client(timeout=httpx.Timeout(WAIT, read=None))

    def run() -> None:
        headers = {**HEADERS, "Accept": "text/event-stream"}
        with (
            contextlib.suppress(httpx.HTTPError),
            client.stream("GET", f"{url}/v1/events", headers=headers) as response,
        ):
            for message in parse(response.iter_lines()):
                if message.comment == "metalcast node events":
                    opened.set()
                elif message.data is not None and message.event is None:
                    got.put(message.data)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert opened.wait(WAIT), "the stream did not open"
    try:
        yield got
    finally:
        client.close()
        thread.join(WAIT)


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, list[str], threading.Condition]]:
    """A webhook receiver on loopback: the delivery ids it got, in order."""
    seen: list[str] = []
    changed = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with changed:
                seen.append(self.headers["X-Metalcast-Delivery"])
                changed.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen, changed
    finally:
        server.shutdown()
        server.server_close()


def test_a_stream_on_one_api_sees_what_conductors_did_for_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    with (
        deployment(postgres_url, tmp_path / "state", env=ENV) as deploy,
        receiver() as (hook_url, seen, changed),
    ):
        api1, api2 = deploy.api("api1"), deploy.api("api2")
        body = {"url": hook_url, "secret": "x" * 32, "kinds": ["provision_state"]}
        hook = httpx.post(f"{api1}/v1/webhooks", json=body, headers=HEADERS)
        assert hook.status_code == 201, hook.text
        with stream(api1) as events, httpx.Client(headers=HEADERS, timeout=WAIT) as api:
            uuids = []
            for _ in range(NODES):
                node = api.post(f"{api2}/v1/nodes", json={"driver": "fake-hardware"})
                uuids.append(node.json()["uuid"])
            for uuid in uuids:
                moved = api.put(
                    f"{api2}/v1/nodes/{uuid}/states/provision", json={"target": "manage"}
                )
                assert moved.status_code == 202, moved.text
            manageable: set[str] = set()
            while manageable != set(uuids):
                event = events.get(timeout=WAIT)
                change = event["changes"].get("provision_state")
                if change and change["new"] == "manageable":
                    manageable.add(event["node_uuid"])

        # verifying and manageable of each node: 2 deliveries each, each sent once
        with changed:
            assert changed.wait_for(lambda: len(seen) >= 2 * NODES, WAIT), seen
        deliveries = httpx.get(
            f"{api2}/v1/webhooks/{hook.json()['uuid']}/deliveries", headers=HEADERS
        ).json()["deliveries"]
        assert len(deliveries) == 2 * NODES
        assert {d["event"]["node_uuid"] for d in deliveries} == set(uuids)
        assert collections.Counter(seen).most_common(1)[0][1] == 1, "a delivery was sent twice"
