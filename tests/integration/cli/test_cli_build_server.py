"""``build_server``: the all-in-one wiring, served in-process without uvicorn."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from metalcast.cli.server import build_server, server_url
from metalcast.config import load_settings

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


async def _exercise(app: Any, url: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=url) as client:
        assert (await client.get("/v1")).status_code == 200
        body = {"driver": "fake-hardware", "name": "wired"}
        created = await client.post("/v1/nodes", json=body, headers=HEADERS)
        assert created.status_code == 201, created.text
        shown = await client.get("/v1/nodes/wired", headers=HEADERS)
        assert shown.json()["provision_state"] == "enroll"


def test_build_server_wires_a_working_api(tmp_path: Path) -> None:
    settings = load_settings(environ={"METALCAST_STATE_DIR": str(tmp_path / "state")})
    app, service, db = build_server(settings)
    service.start()
    try:
        asyncio.run(_exercise(app, server_url(settings)))
    finally:
        service.stop(5)
        db.dispose()
    assert (tmp_path / "state" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state" / "metalcast.sqlite").exists()
