"""The dashboard calls the API as its caller: the same routes, policy and audit.

Every read and every action of the dashboard is an HTTP request to this process's
own API application (:class:`httpx.ASGITransport`, no socket) carrying the browser's
credentials (the session cookie's token, or whatever the authenticating proxy set)
and the browser's address, so the API authenticates, authorises, filters by owner
and lessee, masks secrets and audits exactly as it would for the CLI.  There is no
second permission model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.requests import Request

#: headers of the browser's request that are not the caller's identity
_NOT_FORWARDED = frozenset(
    {
        "host",
        "cookie",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "connection",
        "transfer-encoding",
        "origin",
        "referer",
        "last-event-id",
        "x-csrf-token",
        "x-openstack-ironic-api-version",
        "openstack-api-version",
    }
)


@dataclass(frozen=True, slots=True)
class Answer:
    """One API answer: its status and JSON document (None when it had none)."""

    status: int
    document: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        """The API's error message (Ironic's ``faultstring``), or the status."""
        doc = self.document
        if isinstance(doc, dict) and isinstance(doc.get("error_message"), str):
            try:
                inner = orjson.loads(doc["error_message"])
            except orjson.JSONDecodeError:
                return str(doc["error_message"])
            if isinstance(inner, dict) and inner.get("faultstring"):
                return str(inner["faultstring"])
        return f"The API answered {self.status}."


class Api:
    """The API, as the caller of one dashboard request."""

    def __init__(self, request: Request, *, credentials: dict[str, str] | None = None) -> None:
        """``credentials``: send these instead of the request's own (the login)."""
        if credentials is None:
            headers = {
                name: value
                for name, value in request.headers.items()
                if name not in _NOT_FORWARDED and not name.startswith("hx-")
            }
        else:
            headers = dict(credentials)
        headers["x-openstack-ironic-api-version"] = "latest"
        headers["accept"] = "application/json"
        # the browser's address: a strategy that trusts loopback peers (header)
        # must not take the dashboard for one; unknown stays unknown
        peer = (request.client.host, request.client.port) if request.client else ("unknown", 0)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app, client=peer),
            base_url=f"{request.url.scheme}://{request.url.netloc}",
            headers=headers,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, **query: str) -> Answer:
        return await self.send("GET", path, query=query)

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        content = None if body is None else orjson.dumps(body)
        extra = dict(headers or {})
        if content is not None:
            extra["content-type"] = "application/json"
        response = await self._client.request(
            method, path, params=query or None, content=content, headers=extra
        )
        document = None
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            document = orjson.loads(response.content)
        return Answer(response.status_code, document)
