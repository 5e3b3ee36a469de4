"""``metalcast api`` and ``metalcast conductor`` as separate processes on one
PostgreSQL database, as the README's multi-process set-up runs them: three
conductors, two API processes, python-ironicclient's ``baremetal`` against either
API, and each node's work done by the conductor the hash ring gives it to."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import HEADERS, Deployment, deployment
from prometheus_client.parser import text_string_to_metric_families
from secret_scan import register

pytestmark = pytest.mark.postgres

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
BMC_PASSWORD = "Split-Bmc-Pass-8c21d"
register(BMC_PASSWORD)
DEADLINE = 120.0


def baremetal(url: str, *args: str) -> Any:
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(var, None)
    result = subprocess.run(
        [BAREMETAL, *args, "-f", "json"], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"baremetal {' '.join(args)} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def wait_for_state(url: str, uuids: list[str], state: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    fields = "uuid,name,provision_state,last_error,reservation,conductor"
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/v1/nodes?fields={fields}&limit=0", headers=HEADERS)
        rows = [r for r in response.json()["nodes"] if r["uuid"] in uuids]
        if all(r["provision_state"] == state and r["reservation"] is None for r in rows):
            return rows
        failed = [r for r in rows if r["last_error"]]
        assert not failed, failed
        time.sleep(0.2)
    raise AssertionError(f"not all {state}: {rows}")


def verb(url: str, uuid: str, target: str) -> None:
    response = httpx.put(
        f"{url}/v1/nodes/{uuid}/states/provision", json={"target": target}, headers=HEADERS
    )
    assert response.status_code == 202, response.text


def test_three_conductors_and_two_api_processes_share_the_nodes(
    postgres_url: str, tmp_path: Path
) -> None:
    with deployment(postgres_url, tmp_path / "state") as deploy:
        api1, api2 = deploy.api("api1"), deploy.api("api2")
        listed = baremetal(api1, "conductor", "list", "--fields", "hostname", "alive")
        rows = [{k.lower(): v for k, v in c.items()} for c in listed]
        assert {c["hostname"]: c["alive"] for c in rows} == {"c1": True, "c2": True, "c3": True}

        first = baremetal(
            api1, "node", "create", "--driver", "fake-hardware", "--name", "split-0",
            "--driver-info", f"ipmi_password={BMC_PASSWORD}",
        )  # fmt: skip
        uuids = [first["uuid"]]
        for index in range(1, 18):
            body = {"name": f"split-{index}", "driver": "fake-hardware"}
            response = httpx.post(f"{api2}/v1/nodes", json=body, headers=HEADERS)
            assert response.status_code == 201, response.text
            uuids.append(response.json()["uuid"])

        for target, state in (("manage", "manageable"), ("provide", "available")):
            for index, uuid in enumerate(uuids):
                verb(api1 if index % 2 else api2, uuid, target)
            wait_for_state(api1, uuids, state)
        for uuid in uuids:
            verb(api2, uuid, "active")
        rows = wait_for_state(api2, uuids, "active")

        # every node's deploy ran on the conductor the ring gives it to, and the ring
        # spreads the nodes over all three
        owners = {r["uuid"]: r["conductor"] for r in rows}
        assert set(owners.values()) == {"c1", "c2", "c3"}
        for uuid in uuids:
            history = httpx.get(f"{api1}/v1/nodes/{uuid}/history?detail=true", headers=HEADERS)
            deployed = [e for e in history.json()["history"] if "(deploy)" in e["event"]]
            assert deployed and deployed[-1]["conductor"] == owners[uuid], history.text

        shown = baremetal(api2, "node", "show", first["uuid"])
        assert shown["provision_state"] == "active"
        assert shown["driver_info"]["ipmi_password"] == "******"
        check_metrics(deploy, api1, api2, owners)


def metric(url: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` in ``url``'s /metrics (0 when absent)."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def rpc_url(deploy: Deployment, conductor: str) -> str:
    """Where ``conductor`` takes requests (and serves its /metrics): its banner says."""
    banner = deploy.processes[conductor].stdout.read_text()
    found = re.findall(r"taking requests at (http://\S+)", banner)
    assert found, banner
    return found[-1]


def check_metrics(deploy: Deployment, api1: str, api2: str, owners: dict[str, str]) -> None:
    """Each API process counts the whole fleet (from the database); each conductor
    serves its own transitions at /metrics on its RPC address."""
    active = {"provision_state": "active", "power_state": "power on", "maintenance": "false"}
    for api in (api1, api2):
        assert metric(api, "metalcast_nodes", **active) == len(owners)
    deploys = {"event": "deploy", "from_state": "available", "to_state": "deploying"}
    for conductor in ("c1", "c2", "c3"):
        done = metric(
            rpc_url(deploy, conductor), "metalcast_provision_transitions_total", **deploys
        )
        assert done == list(owners.values()).count(conductor), conductor


def test_separate_processes_refuse_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    for kind in ("api", "conductor"):
        result = subprocess.run(
            [sys.executable, "-m", "metalcast.cli.main", kind, "--state-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result
        assert "METALCAST_DATABASE__URL=postgresql+psycopg://" in result.stderr
        assert "metalcast server" in result.stderr


def test_a_conductor_name_is_taken_while_its_process_lives(
    postgres_url: str, tmp_path: Path
) -> None:
    with deployment(postgres_url, tmp_path / "state", conductors=1, apis=1) as deploy:
        command = [sys.executable, "-m", "metalcast.cli.main", "conductor", "--hostname", "c1"]
        twin = subprocess.run(command, env=deploy.env, capture_output=True, text=True, timeout=120)
        assert twin.returncode == 1, twin
        assert "A conductor named c1 already runs on this database" in twin.stderr
        assert deploy.conductor_alive("c1")
        # killed, its session ends with it: the name is free again at once
        deploy.kill("c1")
        deploy.start("c1")
        assert deploy.conductor_alive("c1")
