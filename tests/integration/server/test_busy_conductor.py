"""A busy conductor answers 503 and a busy node 409, and neither writes anything."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

StartServer = Callable[..., contextlib.AbstractContextManager[Any]]
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


def settle(client: httpx.Client, node: str, state: str) -> None:
    deadline = time.monotonic() + 60
    while client.get(f"/v1/nodes/{node}").json()["provision_state"] != state:
        assert time.monotonic() < deadline, f"{node} never reached {state}"
        time.sleep(0.05)


def fault(response: httpx.Response) -> str:
    return str(json.loads(response.json()["error_message"])["faultstring"])


def test_no_free_worker_is_503_and_locked_node_is_409(start_metalcast_server: StartServer) -> None:
    env = {
        "METALCAST_CONDUCTOR__WORKERS_POOL_SIZE": "1",
        "METALCAST_CONDUCTOR__GRACEFUL_SHUTDOWN_TIMEOUT": "1",
        "METALCAST_CONDUCTOR__NODE_LOCKED_RETRY_ATTEMPTS": "0",
    }
    with (
        start_metalcast_server(env=env) as server,
        httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as client,
    ):
        for name in ("busy", "waiting"):
            assert (
                client.post("/v1/nodes", json={"name": name, "driver": "fake-hardware"}).status_code
                == 201
            )
            assert (
                client.put(
                    f"/v1/nodes/{name}/states/provision", json={"target": "manage"}
                ).status_code
                == 202
            )
            settle(client, name, "manageable")
        slow = [{"op": "add", "path": "/driver_info/fake_latency", "value": 60}]
        assert client.patch("/v1/nodes/busy", json=slow).status_code == 200
        assert (
            client.put("/v1/nodes/busy/states/provision", json={"target": "provide"}).status_code
            == 202
        )

        history_before = client.get("/v1/nodes/waiting/history").json()["history"]
        refused = client.put("/v1/nodes/waiting/states/provision", json={"target": "provide"})
        assert refused.status_code == 503
        assert "free conductor workers" in fault(refused)
        waiting = client.get("/v1/nodes/waiting").json()
        assert waiting["provision_state"] == "manageable"
        assert waiting["reservation"] is None
        assert client.get("/v1/nodes/waiting/history").json()["history"] == history_before

        locked = client.patch(
            "/v1/nodes/busy", json=[{"op": "add", "path": "/extra/a", "value": 1}]
        )
        assert locked.status_code == 409
        assert "locked" in fault(locked)
        assert client.get("/v1/nodes/busy").json()["extra"] == {}
