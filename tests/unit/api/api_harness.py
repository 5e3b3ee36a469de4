"""The real app on a real SQLite database with the real in-process conductor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
from starlette.applications import Starlette

from metalcast.api.app import create_app
from metalcast.api.versions import MAX_VERSION
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ApiSettings, ConductorSettings, EventsSettings, Settings
from metalcast.db.engine import Database
from metalcast.drivers.registry import DriverRegistry, default_registry
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import SecretBox

LATEST = str(MAX_VERSION)
BASE = "http://testserver"


class Client:
    """A synchronous client for the ASGI app (httpx's ASGITransport, one loop per call).

    ``peer`` is the address the app sees the requests come from."""

    def __init__(self, app: Starlette, peer: str = "127.0.0.1") -> None:
        self.app = app
        self.peer = peer

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=self.app, raise_app_exceptions=False, client=(self.peer, 50000)
            )
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.request(method, path, content=content, headers=headers)

        return anyio.run(send)


@dataclass
class Api:
    """A test client speaking to the app, with helpers for identity and version."""

    client: Client
    db: Database
    service: ConductorService
    version: str | None = LATEST
    headers: dict[str, str] | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        version: str | None = "default",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        sent = dict(self.headers or {})
        chosen = self.version if version == "default" else version
        if chosen is not None:
            sent["X-OpenStack-Ironic-API-Version"] = chosen
        sent.update(headers or {})
        content = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.client.request(method, path, content=content, headers=sent)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def as_(self, roles: str, project: str | None = None) -> Api:
        """The same app, called with other identity headers (header auth only)."""
        headers = {"X-Roles": roles, "X-User-Id": "someone"}
        if project:
            headers["X-Project-Id"] = project
        else:
            headers["OpenStack-System-Scope"] = "all"
        return Api(self.client, self.db, self.service, self.version, headers)

    def node(self, **fields: Any) -> dict[str, Any]:
        """Create a fake-hardware node; returns its document."""
        body = {"driver": "fake-hardware", **fields}
        admin = {"X-Roles": "admin", "OpenStack-System-Scope": "all"}
        response = self.post("/v1/nodes", body, headers=admin)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


def fault_of(response: httpx.Response) -> str:
    """The faultstring of an Ironic error body (checking its shape on the way)."""
    body = response.json()
    assert set(body) == {"error_message"}
    inner = orjson.loads(body["error_message"])
    assert set(inner) == {"faultstring", "faultcode", "debuginfo"}
    assert inner["faultcode"] == ("Client" if response.status_code < 500 else "Server")
    assert inner["debuginfo"] is None
    message: str = inner["faultstring"]
    return message


def make_settings(
    tmp_path: Path, *, auth: str = "noauth", host: str = "127.0.0.1", **api: Any
) -> Settings:
    return Settings(
        state_dir=tmp_path,
        api=ApiSettings(host=host, auth_strategy=auth, max_limit=50, **api),
        # no heartbeat thread here (heartbeat=0): a long test module must not see its
        # conductor die (and the hardware types it serves vanish) after the timeout
        conductor=ConductorSettings(
            hostname="cond-1", sync_power_state_interval=0, heartbeat_timeout=3600
        ),
        events=EventsSettings(webhook_interval=0),  # webhooks made here are never sent
    )


def build(
    tmp_path: Path, auth: str, registry: DriverRegistry | None = None, **api: Any
) -> Iterator[Api]:
    """The app on a fresh database; ``api`` overrides settings of the ``api`` area."""
    settings = make_settings(tmp_path, auth=auth, **api)
    db = Database(settings.database_url)
    db.migrate()
    service = ConductorService(
        settings,
        db,
        registry=registry or default_registry(),
        secret_box=SecretBox.from_file(tmp_path / "secret.key"),
        intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
    )
    service.start()
    app = create_app(settings, db, LocalConductorClient(service))
    yield Api(Client(app), db, service)
    app.state.audit.close()
    service.stop(5)
    db.dispose()
