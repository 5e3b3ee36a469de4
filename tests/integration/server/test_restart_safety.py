"""Nothing is lost and nothing stays stuck when `metalcast server` dies or stops."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

#: the ``run_server_in`` fixture of tests/integration/conftest.py
RunServerIn = Callable[..., contextlib.AbstractContextManager[Any]]

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=HEADERS, timeout=30)


def wait_for_state(
    client: httpx.Client, node: str, *states: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/nodes/{node}").json()
        if body["provision_state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def provision(client: httpx.Client, node: str, target: str) -> None:
    response = client.put(f"/v1/nodes/{node}/states/provision", json={"target": target})
    assert response.status_code == 202, response.text


def available_node(client: httpx.Client, name: str) -> None:
    response = client.post("/v1/nodes", json={"name": name, "driver": "fake-hardware"})
    assert response.status_code == 201, response.text
    provision(client, name, "manage")
    assert wait_for_state(client, name, "manageable")["provision_state"] == "manageable"
    provision(client, name, "provide")
    assert wait_for_state(client, name, "available")["provision_state"] == "available"


def slow_deploy(client: httpx.Client, name: str, seconds: int) -> None:
    patch = [{"op": "add", "path": "/driver_info/fake_latency", "value": seconds}]
    assert client.patch(f"/v1/nodes/{name}", json=patch).status_code == 200
    provision(client, name, "active")
    assert client.get(f"/v1/nodes/{name}").json()["provision_state"] == "deploying"


def test_killed_server_leaves_no_node_stuck_or_locked(
    run_server_in: RunServerIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with run_server_in(state) as server, api(server.url) as client:
        available_node(client, "victim")
        slow_deploy(client, "victim", 120)
        server.process.kill()
        server.process.wait()

    with run_server_in(state) as server, api(server.url) as client:
        node = client.get("/v1/nodes/victim").json()
        assert node["provision_state"] == "deploy failed"
        assert "restarted" in node["last_error"]
        assert "deploying" in node["last_error"]
        assert node["reservation"] is None
        events = client.get("/v1/nodes/victim/history").json()["history"]
        assert any(e["severity"] == "ERROR" and "restarted" in e["event"] for e in events)
        # the operator can recover it at once
        patch = [{"op": "remove", "path": "/driver_info/fake_latency"}]
        assert client.patch("/v1/nodes/victim", json=patch).status_code == 200
        provision(client, "victim", "deleted")
        assert wait_for_state(client, "victim", "available")["provision_state"] == "available"


def test_sigterm_finishes_in_flight_work(run_server_in: RunServerIn, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with run_server_in(state) as server, api(server.url) as client:
        available_node(client, "graceful")
        slow_deploy(client, "graceful", 2)
    # leaving the block sent SIGTERM and checked exit code 0: the deploy was let finish
    with run_server_in(state) as server, api(server.url) as client:
        node = client.get("/v1/nodes/graceful").json()
        assert node["provision_state"] == "active"
        assert node["last_error"] is None


@pytest.mark.parametrize("grace", ["1"])
def test_sigterm_parks_work_that_outlives_the_grace_period(
    run_server_in: RunServerIn, tmp_path: Path, grace: str
) -> None:
    state = tmp_path / "state"
    env = {"METALCAST_CONDUCTOR__GRACEFUL_SHUTDOWN_TIMEOUT": grace}
    with run_server_in(state, env=env) as server, api(server.url) as client:
        available_node(client, "parked")
        slow_deploy(client, "parked", 120)
    with run_server_in(state) as server, api(server.url) as client:
        node = client.get("/v1/nodes/parked").json()
        assert node["provision_state"] == "deploy failed"
        assert node["reservation"] is None
        assert "deploying" in node["last_error"]


def test_a_power_action_cut_short_by_a_kill_is_recorded(
    run_server_in: RunServerIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with run_server_in(state) as server, api(server.url) as client:
        available_node(client, "powering")
        patch = [{"op": "add", "path": "/driver_info/fake_latency", "value": 120}]
        assert client.patch("/v1/nodes/powering", json=patch).status_code == 200
        response = client.put("/v1/nodes/powering/states/power", json={"target": "power off"})
        assert response.status_code == 202, response.text
        assert client.get("/v1/nodes/powering").json()["target_power_state"] == "power off"
        server.process.kill()
        server.process.wait()

    with run_server_in(state) as server, api(server.url) as client:
        node = client.get("/v1/nodes/powering").json()
        assert node["target_power_state"] is None
        assert node["reservation"] is None
        assert node["provision_state"] == "available"
        assert "restarted during a power action (to 'power off')" in node["last_error"]
        events = client.get("/v1/nodes/powering/history").json()["history"]
        assert events[-1]["severity"] == "ERROR"
        assert events[-1]["event"] == node["last_error"]
