"""``metalcast events`` and ``--wait`` on the event stream, as subprocesses against a
real ``metalcast server``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

VERSION = {"X-OpenStack-Ironic-API-Version": "latest"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    return {**env, "COLUMNS": "200"}


def _command(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "metalcast.cli.main", "--url", url, *args]


@pytest.fixture
def tail(metalcast_url: str) -> Iterator[subprocess.Popen[str]]:
    """``metalcast --json events --kind provision_state --kind created`` running."""
    process = subprocess.Popen(
        _command(
            metalcast_url, "--json", "events", "--kind", "provision_state", "--kind", "created"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    yield process
    process.terminate()
    process.communicate(timeout=30)


def _next_event(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "metalcast events ended"
    event: dict[str, Any] = json.loads(line)
    return event


def test_events_tails_the_changes_of_nodes_as_they_happen(
    metalcast_url: str, tail: subprocess.Popen[str]
) -> None:
    assert tail.stderr is not None
    # said once the stream is open: from then on every event reaches it
    assert "following node events" in tail.stderr.readline()
    with httpx.Client(base_url=metalcast_url, headers=VERSION, timeout=60) as api:
        uuid = api.post("/v1/nodes", json={"driver": "fake-hardware"}).json()["uuid"]
        created = _next_event(tail)
        assert (created["type"], created["node_uuid"]) == ("created", uuid)
        assert api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "manage"}).is_success
        moves = []
        while not moves or moves[-1] != "manageable":
            event = _next_event(tail)
            assert event["node_uuid"] == uuid
            moves.append(event["changes"]["provision_state"]["new"])
    assert moves == ["verifying", "manageable"]


def test_wait_follows_the_node_on_the_event_stream(metalcast_server: Any) -> None:
    url = metalcast_server.url
    node = httpx.post(f"{url}/v1/nodes", json={"driver": "fake-hardware"}, headers=VERSION)
    uuid = node.json()["uuid"]
    result = subprocess.run(
        _command(url, "node", "manage", uuid, "--wait", "120"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown = httpx.get(f"{url}/v1/nodes/{uuid}", headers=VERSION).json()
    assert shown["provision_state"] == "manageable"
    # the wait held a stream of that node (the server logs each one it opens)
    assert "node event stream opened" in metalcast_server.logs()


def test_webhook_commands_create_list_show_deliveries_delete(metalcast_url: str) -> None:
    def run(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
        env = _env() if secret is None else {**_env(), "METALCAST_WEBHOOK_SECRET": secret}
        result = subprocess.run(
            _command(metalcast_url, *args),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result

    url = "http://127.0.0.1:9/hook"
    secret = "Cli-Webhook-Secret-77a1"
    created = json.loads(
        run("--json", "webhook", "create", url, "--kind", "maintenance", secret=secret).stdout
    )
    uuid = created["uuid"]
    assert created["kinds"] == ["maintenance"]
    listed = run("webhook", "list").stdout
    assert uuid in listed and url in listed and secret not in listed
    assert secret not in run("webhook", "show", uuid).stdout
    assert json.loads(run("--json", "webhook", "deliveries", uuid).stdout) == []
    assert "deleted webhook" in run("webhook", "delete", uuid).stdout
    assert json.loads(run("--json", "webhook", "list").stdout) == []
