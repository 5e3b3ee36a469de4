"""Webhooks of a real ``metalcast server``: a receiver on loopback gets node events,
signed with the webhook's secret; its first answer is a 500, so the conductor tries
again, and the delivery log says how it went.  The secret is never returned, and
never in the server's logs or database files (``conftest``)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from secret_scan import register

MetalcastServer = Any
StartServer = Callable[..., contextlib.AbstractContextManager[Any]]

SECRET = "Webhook-Signing-Secret-5c1e9a"
register(SECRET)
ENV = {
    "METALCAST_API__AUTH_STRATEGY": "header",
    "METALCAST_EVENTS__WEBHOOK_INTERVAL": "0.05",
    "METALCAST_EVENTS__WEBHOOK_RETRY_BASE": "0.05",
}
ADMIN = {"X-Roles": "admin", "X-User-Id": "root", "OpenStack-System-Scope": "all"}
WAIT = 60.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@contextlib.contextmanager
def receiver(answers: list[int]) -> Iterator[tuple[str, queue.Queue[Received]]]:
    """An HTTP server on loopback answering POSTs with ``answers`` in turn (then
    200); its URL and the requests it got."""
    got: queue.Queue[Received] = queue.Queue()
    left = list(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(left.pop(0) if left else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def _next(got: queue.Queue[Received]) -> Received:
    try:
        return got.get(timeout=WAIT)
    except queue.Empty:
        pytest.fail(f"the receiver got nothing within {WAIT}s")


def _signed(request: Received) -> bool:
    stamp = request.headers["x-metalcast-timestamp"]
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
    return request.headers["x-metalcast-signature"] == f"sha256={mac.hexdigest()}"


@pytest.fixture(scope="module")
def server(start_metalcast_server: StartServer) -> Iterator[MetalcastServer]:
    with start_metalcast_server(env=ENV) as running:
        yield running


def test_a_signed_delivery_is_retried_after_a_500_and_logged(server: MetalcastServer) -> None:
    with (
        receiver([500]) as (url, got),
        httpx.Client(base_url=server.url, headers=ADMIN, timeout=WAIT) as api,
    ):
        body = {"url": url, "secret": SECRET, "kinds": ["maintenance"]}
        created = api.post("/v1/webhooks", json=body)
        assert created.status_code == 201, created.text
        hook = created.json()
        assert "secret" not in hook and SECRET not in created.text
        assert SECRET not in api.get(f"/v1/webhooks/{hook['uuid']}").text
        assert SECRET not in api.get("/v1/webhooks").text

        node = api.post("/v1/nodes", json={"driver": "fake-hardware"}).json()["uuid"]
        api.put(f"/v1/nodes/{node}/maintenance", json={"reason": "fan"})

        first, second = _next(got), _next(got)
        assert first.body == second.body
        assert first.headers["x-metalcast-delivery"] == second.headers["x-metalcast-delivery"]
        assert _signed(first) and _signed(second)
        event = json.loads(second.body)
        assert event["node_uuid"] == node and event["kinds"] == [
            "maintenance",
            "maintenance_reason",
        ]
        assert second.headers["x-metalcast-event"] == "node.updated"

        path = f"/v1/webhooks/{hook['uuid']}/deliveries"
        for _ in range(1000):  # the conductor records the answer just after it
            (delivery,) = api.get(path).json()["deliveries"]
            if delivery["status"] != "pending":
                break
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 2 and delivery["response_code"] == 200
        assert delivery["last_error"].startswith("HTTP 500")
        assert delivery["event"]["id"] == event["id"]

        assert api.delete(f"/v1/webhooks/{hook['uuid']}").status_code == 204
        assert api.get(f"/v1/webhooks/{hook['uuid']}").status_code == 404


def test_a_tampered_body_does_not_verify() -> None:
    request = Received({"x-metalcast-timestamp": "1", "x-metalcast-signature": "sha256=00"}, b"{}")
    assert not _signed(request)


def test_webhook_input_is_checked_and_admins_only(server: MetalcastServer) -> None:
    with httpx.Client(base_url=server.url, headers=ADMIN, timeout=WAIT) as api:
        bad = {
            "ftp://example.com/x": "must be an http:// or https:// URL",
            "http://user:pw@127.0.0.1:9/x": "must not hold credentials",
        }
        for url, message in bad.items():
            response = api.post("/v1/webhooks", json={"url": url, "secret": SECRET})
            assert response.status_code == 400, url
            assert message in response.text
            assert "pw@" not in response.text
        short = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "secret": "x"})
        assert short.status_code == 400 and "16 to 512 characters" in short.text
        kinds = {"url": "http://127.0.0.1:9/", "secret": SECRET, "kinds": ["colour"]}
        assert api.post("/v1/webhooks", json=kinds).status_code == 400
    member = {"X-Roles": "member", "X-User-Id": "m", "OpenStack-System-Scope": "all"}
    tenant_admin = {"X-Roles": "admin", "X-User-Id": "t", "X-Project-Id": "p1"}
    for headers in (member, tenant_admin):
        response = httpx.get(f"{server.url}/v1/webhooks", headers=headers)
        assert response.status_code == 403, response.text
