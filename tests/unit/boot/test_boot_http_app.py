"""The boot HTTP application: files, signed images with Range, the relay to the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import ASGIApp

from metalcast.agent_downloads import TOKEN_HEADER, UrlSigner, token_hash
from metalcast.boot.http import create_app, safe_file

IMAGE = bytes(range(256)) * 64  # 16 KiB
NOW = 1_900_000_000
NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
TOKEN = "the-agent-token-of-node-1be26c0b"
SIGNER = UrlSigner(b"k" * 32)


def signed(path: str, *, node: str = NODE, token: str = TOKEN, expires: int = NOW + 60) -> str:
    return SIGNER.sign(path, node=node, token_sha256=token_hash(token), expires=expires)


def agent(token: str = TOKEN, **headers: str) -> dict[str, str]:
    return {TOKEN_HEADER: token, **headers}


def fault(response: httpx.Response) -> str:
    """The faultstring of an error in Ironic's shape."""
    inner = orjson.loads(response.json()["error_message"])
    assert inner["faultcode"] == ("Client" if response.status_code < 500 else "Server")
    message: str = inner["faultstring"]
    return message


class Body(httpx.AsyncByteStream):
    """A response body that arrives in pieces, as from a real server (a body given
    as ``content=`` counts as already read, and a relay cannot stream it)."""

    def __init__(self, document: object) -> None:
        self.data = json.dumps(document).encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 7):
            yield self.data[start : start + 7]


def answer(status: int, document: object, **headers: str) -> httpx.Response:
    headers.setdefault("content-type", "application/json")
    return httpx.Response(status, stream=Body(document), headers=headers)


class Upstream:
    """A stand-in API: records what the relay sent, answers what the test says."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.fail = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        self.bodies.append(request.read())
        if request.url.path == "/v1/lookup":
            return answer(404, {"error_message": "no node"}, Connection="close")
        return answer(202, {"ack": [], "command": None, "heartbeat_interval": 5})


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    boot, images = tmp_path / "boot", tmp_path / "images"
    (boot / "nodes").mkdir(parents=True)
    images.mkdir()
    (boot / "boot.ipxe").write_text("#!ipxe\nexit\n")
    (boot / "nodes" / "52-54-00-12-34-56.ipxe").write_text("#!ipxe\nboot\n")
    (boot / ".boot.ipxe.1234.tmp").write_text("partial")
    (tmp_path / "secret").write_text("outside")
    (images / "disk.raw").write_bytes(IMAGE)
    return boot, images


class Client:
    """A synchronous client for the app, as a node at 192.168.77.50 (one loop per call)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("192.168.77.50", 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://192.168.77.1:8080"
            ) as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(dirs: tuple[Path, Path], upstream: Upstream) -> Client:
    api = httpx.AsyncClient(
        base_url="http://127.0.0.1:6385", transport=httpx.MockTransport(upstream.handle)
    )
    app = create_app(
        boot_dir=dirs[0],
        images_dir=dirs[1],
        api_url="http://unused",
        signer=SIGNER,
        upstream=api,
        clock=lambda: NOW,
    )
    return Client(app)


def test_boot_files_are_served_as_text(client: Client) -> None:
    answer = client.get("/boot/nodes/52-54-00-12-34-56.ipxe")
    assert answer.status_code == 200
    assert answer.text == "#!ipxe\nboot\n"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert client.head("/boot/boot.ipxe").headers["content-length"] == "12"


@pytest.mark.parametrize(
    "path",
    [
        "/boot/nodes/52-54-00-00-00-00.ipxe",
        "/boot/.boot.ipxe.1234.tmp",
        "/boot/%2e%2e/secret",
        "/boot/nodes/%2e%2e/%2e%2e/secret",
        "/boot/nodes",
        "/boot/",
        "/images/..%2fboot/boot.ipxe",
        "/boot/" + "a/" * 3000 + "x",
        "/images/" + "a/" * 3000 + "x",
        "/boot/" + "a" * 5000,
        "/images/.hidden",
    ],
)
def test_missing_hidden_escaping_and_absurd_paths_are_not_found(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert fault(answer) == "No such file."


def test_a_name_too_long_for_the_filesystem_is_not_found(client: Client) -> None:
    # short enough to be looked up, too long for one file name: is_file raises
    answer = client.get("/boot/" + "b" * 300)
    assert answer.status_code == 404
    signed_long = client.get(signed("/images/" + "c" * 300), headers=agent())
    assert signed_long.status_code == 404


def test_safe_file_refuses_absolute_and_parent_paths(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    assert safe_file(tmp_path, "a") == tmp_path / "a"
    assert safe_file(tmp_path, "/etc/passwd") is None
    assert safe_file(tmp_path, "../a") is None
    assert safe_file(tmp_path, "") is None


def test_images_are_served_whole_and_by_range_with_a_signed_url_and_the_token(
    client: Client,
) -> None:
    url = signed("/images/disk.raw")
    whole = client.get(url, headers=agent())
    assert whole.content == IMAGE
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers=agent(Range="bytes=1000-1999"))
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(IMAGE)}"
    assert part.content == IMAGE[1000:2000]
    tail = client.get(url, headers=agent(Range="bytes=-10"))
    assert tail.content == IMAGE[-10:]
    beyond = client.get(url, headers=agent(Range=f"bytes={len(IMAGE)}-"))
    assert beyond.status_code == 416
    head = client.head(url, headers=agent())
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(IMAGE)))


@pytest.mark.parametrize(
    ("url", "headers", "why"),
    [
        ("/images/disk.raw", agent(), "needs a signed URL"),
        (signed("/images/disk.raw"), {}, "needs the node's agent token"),
        (signed("/images/disk.raw"), agent("another-nodes-token"), "not valid for this"),
        (signed("/images/disk.raw", expires=NOW - 1), agent(), "expired"),
        (
            signed("/images/disk.raw").replace(NODE, "00000000-0000-4000-8000-000000000000"),
            agent(),
            "not valid for this",
        ),
        (signed("/images/other.raw").replace("other.raw", "disk.raw"), agent(), "not valid"),
        (
            signed("/images/disk.raw").replace(f"expires={NOW + 60}", "expires=9999999999"),
            agent(),
            "not valid",
        ),
        (signed("/images/disk.raw") + "&sig=00", agent(), "needs a signed URL"),
        (signed("/images/disk.raw").replace(f"{NOW + 60}", "soon"), agent(), "not a time"),
    ],
    ids=[
        "unsigned",
        "no-token",
        "wrong-token",
        "expired",
        "wrong-node",
        "tampered-path",
        "tampered-expiry",
        "repeated-parameter",
        "expiry-not-a-number",
    ],
)
def test_images_are_refused_without_a_valid_signature_token_and_expiry(
    client: Client, url: str, headers: dict[str, str], why: str
) -> None:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 403
    assert why in fault(answer)
    assert IMAGE not in answer.content
    assert client.head(url, headers=headers).status_code == 403


def test_a_missing_image_with_a_valid_signature_is_not_found(client: Client) -> None:
    answer = client.get(signed("/images/gone.raw"), headers=agent())
    assert answer.status_code == 404
    assert fault(answer) == "No such file."


def test_unsigned_requests_learn_nothing_of_what_exists(client: Client) -> None:
    present = client.get("/images/disk.raw", headers=agent())
    absent = client.get("/images/gone.raw", headers=agent())
    assert (present.status_code, fault(present)) == (absent.status_code, fault(absent))


def test_without_a_signer_no_image_is_served(dirs: tuple[Path, Path]) -> None:
    app = create_app(boot_dir=dirs[0], images_dir=dirs[1], api_url="http://unused", signer=None)
    answer = Client(app).get(signed("/images/disk.raw"), headers=agent())
    assert answer.status_code == 403


def test_lookup_is_relayed_with_query_and_headers(client: Client, upstream: Upstream) -> None:
    answer = client.get(
        "/v1/lookup?addresses=52:54:00:12:34:56,52:54:00:12:34:57",
        headers={"X-OpenStack-Ironic-API-Version": "1.22", "Connection": "keep-alive"},
    )
    assert answer.status_code == 404
    assert answer.json() == {"error_message": "no node"}
    assert "connection" not in answer.headers  # hop-by-hop headers stay on their hop
    sent = upstream.requests[0]
    assert str(sent.url) == (
        "http://127.0.0.1:6385/v1/lookup?addresses=52:54:00:12:34:56,52:54:00:12:34:57"
    )
    assert sent.headers["x-openstack-ironic-api-version"] == "1.22"
    assert sent.headers["x-forwarded-for"] == "192.168.77.50"
    assert sent.headers["host"] == "127.0.0.1:6385"
    assert upstream.bodies[0] == b""


def test_identity_and_credential_headers_are_not_relayed(
    client: Client, upstream: Upstream
) -> None:
    forged = {
        "X-Roles": "admin",
        "X-Project-Id": "p1",
        "X-Project-Name": "tenant",
        "X-Tenant-Id": "p1",
        "X-User-Id": "u1",
        "X-User-Name": "alice",
        "X-Domain-Id": "default",
        "X-Service-Roles": "service",
        "X-Identity-Status": "Confirmed",
        "OpenStack-System-Scope": "all",
        "Authorization": "Basic YWRtaW46YWRtaW4=",
        "X-Auth-Token": "gAAAA-keystone-token",
        "Cookie": "session=1",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "10.9.9.9",
        "Forwarded": "host=evil.example",
        TOKEN_HEADER: TOKEN,
        "X-OpenStack-Ironic-API-Version": "1.36",
    }
    client.get("/v1/lookup?addresses=52:54:00:12:34:56", headers=forged)
    client.post(f"/v1/heartbeat/{NODE}", json={"agent_token": "t"}, headers=forged)
    for sent in upstream.requests:
        names = {name.lower() for name in sent.headers}
        # the relay sets its own X-Forwarded-For/Host, checked below
        relayed = {"x-openstack-ironic-api-version", "x-forwarded-for", "x-forwarded-host"}
        assert names & {name.lower() for name in forged} == relayed
        assert sent.headers["x-openstack-ironic-api-version"] == "1.36"
        # the relay says who the peer is and where it was reached, nobody else
        assert sent.headers.get_list("x-forwarded-for") == ["192.168.77.50"]
        assert sent.headers.get_list("x-forwarded-host") == ["192.168.77.1:8080"]


def test_heartbeat_body_is_relayed(client: Client, upstream: Upstream) -> None:
    body = {"agent_token": "t0ken", "results": [], "log": ["x" * 1000] * 50}
    answer = client.post("/v1/heartbeat/1be26c0b-03f2-4d2e-ae87-c02d7f33c123", json=body)
    assert answer.status_code == 202
    assert answer.json()["heartbeat_interval"] == 5
    sent = upstream.requests[0]
    assert sent.method == "POST"
    assert sent.url.path == "/v1/heartbeat/1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
    assert json.loads(upstream.bodies[0]) == body


def test_only_agent_endpoints_are_relayed(client: Client, upstream: Upstream) -> None:
    assert client.get("/v1/nodes").status_code == 404
    assert client.post("/v1/lookup").status_code == 405
    assert upstream.requests == []


def test_unreachable_api_is_a_bad_gateway(client: Client, upstream: Upstream) -> None:
    upstream.fail = True
    answer = client.get("/v1/lookup?addresses=52:54:00:12:34:56")
    assert answer.status_code == 502
    assert "unreachable" in answer.json()["error_message"]
