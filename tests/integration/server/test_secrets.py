"""A BMC password never comes back from the API, never reaches a log and is not
stored in clear."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from metalcast.db import repository
from metalcast.db.engine import Database
from metalcast.secrecy import SecretBox

SECRET = "hunter2-Very-Secret"
HEADERS = {"X-OpenStack-Ironic-API-Version": "1.51"}


def settle(client: httpx.Client, node: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/nodes/{node}").json()
        if body["target_provision_state"] is None:
            return str(body["provision_state"])
        time.sleep(0.1)
    raise AssertionError(f"node {node} did not settle")


def test_password_is_masked_logged_nowhere_and_encrypted(
    metalcast_url: str, metalcast_server: Any
) -> None:
    with httpx.Client(base_url=metalcast_url, headers=HEADERS, timeout=30) as client:
        created = client.post(
            "/v1/nodes",
            json={
                "name": "secretive",
                "driver": "fake-hardware",
                "driver_info": {
                    "ipmi_password": SECRET,
                    "ipmi_username": "admin",
                    "fake_fail": "deploy",
                },
            },
        )
        assert created.status_code == 201
        assert SECRET not in created.text
        assert created.json()["driver_info"]["ipmi_password"] == "******"
        uuid = created.json()["uuid"]
        for target in ("manage", "provide", "active"):
            assert (
                client.put(
                    "/v1/nodes/secretive/states/provision", json={"target": target}
                ).status_code
                == 202
            )
            settle(client, "secretive")
        # an operator sends the masked value back: the stored secret is kept
        patch = [{"op": "replace", "path": "/driver_info/ipmi_password", "value": "******"}]
        assert client.patch("/v1/nodes/secretive", json=patch).status_code == 200
        for path in (
            "/v1/nodes/secretive",
            "/v1/nodes/detail",
            "/v1/nodes/secretive/history",
            "/v1/nodes/secretive/validate",
        ):
            assert SECRET not in client.get(path).text, path

    state_dir: Path = metalcast_server.state_dir
    logs: str = metalcast_server.logs()
    # the server logged this node's work, including the failure, while holding the secret
    assert uuid in logs
    assert "injected failure in deploy" in logs
    assert SECRET not in logs
    db_bytes = b"".join(p.read_bytes() for p in state_dir.glob("metalcast.sqlite*"))
    assert db_bytes, "no database files found"
    assert SECRET.encode() not in db_bytes

    # and the conductor still has the real password to give to the driver
    box = SecretBox.from_file(state_dir / "secret.key")
    db = Database(f"sqlite:///{state_dir / 'metalcast.sqlite'}")
    try:
        with db.read() as conn:
            node = repository.get_node(conn, "secretive")
        assert box.reveal(node.driver_info)["ipmi_password"] == SECRET
    finally:
        db.dispose()
