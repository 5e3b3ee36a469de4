"""Hostile input against a real ``metalcast server`` (uvicorn, httptools): bodies over
the limit are refused without being read, and forged proxy headers change no link."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
MiB = 1024 * 1024


def fault(response: httpx.Response) -> str:
    message: str = orjson.loads(response.json()["error_message"])["faultstring"]
    return message


def test_an_oversized_body_is_413_and_the_server_goes_on(metalcast_url: str) -> None:
    with httpx.Client(base_url=metalcast_url, headers=HEADERS, timeout=30) as client:
        body = {"driver": "fake-hardware", "extra": {"blob": "x" * (10 * MiB)}}
        response = client.post("/v1/nodes", json=body)
        assert response.status_code == 413
        assert "larger than the 1048576 bytes" in fault(response)
        assert client.get("/v1/nodes").json()["nodes"] == []
        created = client.post("/v1/nodes", json={"driver": "fake-hardware", "name": "fine"})
        assert created.status_code == 201


def test_a_chunked_body_over_the_limit_is_413(metalcast_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"driver": "fake-hardware", "extra": {"blob": "'
        for _ in range(20):
            yield b"x" * MiB
        yield b'"}}'

    with httpx.Client(base_url=metalcast_url, headers=HEADERS, timeout=30) as client:
        response = client.post("/v1/nodes", content=chunks())
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert "larger than the 1048576 bytes" in fault(response)
        assert client.get("/v1/nodes").json()["nodes"] == []


def raw_request(url: str, request: bytes) -> bytes:
    """Send ``request`` as it is over a socket and read the answer's head and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_declared_length_over_the_limit_is_refused_before_the_body(metalcast_url: str) -> None:
    # only the head is sent: the answer must come without the 10 MB it announces
    head = (
        "POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * MiB}\r\n\r\n"
    ).encode()
    answer = raw_request(metalcast_url, head)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"error_message" in answer


def test_forged_forwarded_headers_change_no_link(metalcast_url: str) -> None:
    forged = {**HEADERS, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=metalcast_url, headers=forged, timeout=30) as client:
        created = client.post("/v1/nodes", json={"driver": "fake-hardware", "name": "n1"})
        assert created.headers["Location"].startswith(f"{metalcast_url}/v1/nodes/")
        shown: dict[str, Any] = client.get("/v1/nodes/n1").json()
        assert shown["links"][0]["href"].startswith(metalcast_url)
        assert "evil.example" not in client.get("/v1").text
