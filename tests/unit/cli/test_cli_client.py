"""The CLI's API client: version negotiation, errors, pagination."""

from __future__ import annotations

import json

import httpx
import pytest

from metalcast.cli.client import (
    MAX_VERSION_HEADER,
    VERSION_HEADER,
    ApiClient,
    ApiError,
    CliError,
    Unreachable,
    fault_message,
    node_path,
)


def client_for(handler: httpx.MockTransport, version: str | None = None) -> ApiClient:
    return ApiClient("http://api.test/v1/", version, transport=handler)


def test_negotiates_the_newest_version_from_the_header_once() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(VERSION_HEADER))
        if request.url.path == "/v1":
            return httpx.Response(200, json={}, headers={MAX_VERSION_HEADER: "1.92"})
        return httpx.Response(200, json={"ok": True})

    client = client_for(httpx.MockTransport(handle))
    assert client.get("/v1/nodes") == {"ok": True}
    assert client.get("/v1/nodes") == {"ok": True}
    assert seen == [None, "1.92", "1.92"]


def test_negotiates_from_the_body_without_the_header() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"version": {"version": "1.80"}})

    assert client_for(httpx.MockTransport(handle)).api_version == "1.80"


def test_a_pinned_version_skips_negotiation() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path != "/v1"
        return httpx.Response(204)

    client = client_for(httpx.MockTransport(handle), "1.50")
    assert client.delete("/v1/nodes/x") is None
    assert client.api_version == "1.50"


def test_ironic_error_bodies_become_their_faultstring() -> None:
    inner = json.dumps({"faultstring": "Node x could not be found.", "faultcode": "Client"})
    response = httpx.Response(404, json={"error_message": inner})
    assert fault_message(response) == "Node x could not be found."
    assert fault_message(httpx.Response(500, text="boom")) == "HTTP 500: boom"
    assert fault_message(httpx.Response(400, json={"error_message": "plain"})) == "plain"


def test_error_status_raises_api_error() -> None:
    inner = json.dumps({"faultstring": "nope"})

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error_message": inner})

    with pytest.raises(ApiError, match="nope") as caught:
        client_for(httpx.MockTransport(handle), "1.1").post("/v1/nodes", {})
    assert caught.value.status == 409


def test_connection_refused_names_the_url() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(Unreachable, match=r"cannot reach metalcast at http://api\.test"):
        client_for(httpx.MockTransport(handle)).get("/v1/nodes")


def test_other_transport_errors_are_cli_errors() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(CliError, match="GET /v1/nodes failed"):
        client_for(httpx.MockTransport(handle), "1.1").get("/v1/nodes")


def paged(total: int, page: int) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("marker", "0"))
        size = min(int(request.url.params.get("limit", page)), page)
        items = [{"n": i} for i in range(start, min(start + size, total))]
        body: dict[str, object] = {"nodes": items}
        if start + size < total:
            body["next"] = f"http://api.test/v1/nodes?limit={size}&marker={start + size}"
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


def test_paginate_follows_next_links() -> None:
    items = list(client_for(paged(7, 3), "1.1").paginate("/v1/nodes", "nodes", params={}))
    assert [i["n"] for i in items] == list(range(7))


def test_paginate_stops_at_the_limit() -> None:
    client = client_for(paged(7, 3), "1.1")
    items = list(client.paginate("/v1/nodes", "nodes", params={}, limit=5))
    assert [i["n"] for i in items] == list(range(5))


def test_node_path_quotes_names() -> None:
    assert node_path("a b/c", "states", "power") == "/v1/nodes/a%20b%2Fc/states/power"
