"""The HTTP client: lookup, heartbeat and their error messages, against a real server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from metalcast_agent.client import ApiClient
from metalcast_agent.errors import ApiError, ApiUnreachable
from metalcast_agent.protocol import API_VERSION, HeartbeatBody

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers from ``answers`` (path prefix -> status, body); records each request."""

    answers: dict[str, tuple[int, object]] = {}
    seen: list[tuple[str, str, str | None, object]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append(
            (self.command, self.path, self.headers.get("X-OpenStack-Ironic-API-Version"), body)
        )
        status, reply = next(v for k, v in self.answers.items() if self.path.startswith(k))
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.answers, Recorder.seen = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_lookup_sends_the_macs_and_reads_token_and_interval(server: str) -> None:
    Recorder.answers["/v1/lookup"] = (
        200,
        {
            "node": {"uuid": NODE, "properties": {}},
            "config": {
                "heartbeat_timeout": 300,
                "agent_token": "t0k",
                "metalcast": {"heartbeat_interval": 2},
            },
        },
    )

    answer = ApiClient(server).lookup(["52:54:00:12:34:56", "52:54:00:12:34:57"])

    assert (answer.node_uuid, answer.token, answer.heartbeat_interval) == (NODE, "t0k", 2.0)
    assert Recorder.seen == [
        ("GET", "/v1/lookup?addresses=52:54:00:12:34:56,52:54:00:12:34:57", API_VERSION, None)
    ]


def test_a_masked_token_is_no_token(server: str) -> None:
    Recorder.answers["/v1/lookup"] = (
        200,
        {"node": {"uuid": NODE}, "config": {"agent_token": "******"}},
    )

    assert ApiClient(server).lookup(["52:54:00:12:34:56"]).token is None


def test_heartbeat_posts_json_and_reads_the_command(server: str) -> None:
    Recorder.answers["/v1/heartbeat/"] = (
        202,
        {
            "ack": ["c0"],
            "command": {"id": "c1", "name": "get_inventory", "args": {}},
            "heartbeat_interval": 5,
        },
    )
    body = HeartbeatBody(
        agent_token="t0k", agent_version="metalcast-agent 0.1.0", results=[], log=[]
    )

    answer = ApiClient(server).heartbeat(NODE, body)

    assert answer.ack == ("c0",)
    assert answer.command == {"id": "c1", "name": "get_inventory", "args": {}}
    assert Recorder.seen[0][:3] == ("POST", f"/v1/heartbeat/{NODE}", API_VERSION)
    assert Recorder.seen[0][3] == dict(body)


def test_an_ironic_error_body_is_in_the_message(server: str) -> None:
    fault = json.dumps({"faultstring": "No node matching the lookup is waiting for an agent."})
    Recorder.answers["/v1/lookup"] = (404, {"error_message": fault})

    with pytest.raises(ApiError) as caught:
        ApiClient(server).lookup(["52:54:00:12:34:56"])

    assert caught.value.status == 404
    assert str(caught.value) == (
        "Lookup failed: HTTP 404 Not Found: No node matching the lookup is waiting for an agent."
    )


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        with pytest.raises(ApiUnreachable) as caught:
            ApiClient(f"http://127.0.0.1:{port}", timeout=5).lookup(["52:54:00:12:34:56"])

    assert caught.value.status is None
    assert str(caught.value).startswith(f"Lookup failed: cannot reach http://127.0.0.1:{port}: ")
