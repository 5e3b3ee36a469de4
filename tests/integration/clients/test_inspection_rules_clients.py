"""Inspection rules (1.96) through the real clients against `metalcast server`:
python-ironicclient's `baremetal inspection rule`, openstacksdk, `metalcast
inspection-rule`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openstack
import pytest
from test_baremetal_cli import baremetal

pytestmark = pytest.mark.integration

ACTIONS = [{"op": "add-trait", "args": {"name": "CUSTOM_LAB"}}]
CONDITIONS = [
    {"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "metalcast"]}}
]


def test_the_baremetal_cli_manages_rules(metalcast_url: str) -> None:
    made = json.loads(
        baremetal(
            metalcast_url,
            "inspection", "rule", "create",
            "--actions", json.dumps(ACTIONS),
            "--conditions", json.dumps(CONDITIONS),
            "--priority", "20",
            "--description", "lab machines",
            "-f", "json",
        ).stdout
    )  # fmt: skip
    assert made["priority"] == 20 and made["actions"] == ACTIONS
    listed = json.loads(baremetal(metalcast_url, "inspection", "rule", "list", "-f", "json").stdout)
    assert len(listed) == 1 and made["uuid"] in json.dumps(listed)
    shown = json.loads(
        baremetal(metalcast_url, "inspection", "rule", "show", made["uuid"], "-f", "json").stdout
    )
    assert shown["conditions"] == CONDITIONS
    explode = '[{"op": "explode", "args": {}}]'
    bad = baremetal(
        metalcast_url, "inspection", "rule", "create", "--actions", explode, check=False
    )
    assert bad.returncode != 0 and "is not an action" in bad.stderr
    baremetal(metalcast_url, "inspection", "rule", "delete", made["uuid"])
    assert (
        json.loads(baremetal(metalcast_url, "inspection", "rule", "list", "-f", "json").stdout)
        == []
    )


def test_openstacksdk_manages_rules(metalcast_url: str) -> None:
    conn = openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )
    made = conn.baremetal.create_inspection_rule(actions=ACTIONS, conditions=CONDITIONS, priority=5)
    assert conn.baremetal.get_inspection_rule(made.id).priority == 5
    assert [r.id for r in conn.baremetal.inspection_rules()] == [made.id]
    conn.baremetal.delete_inspection_rule(made.id)
    assert list(conn.baremetal.inspection_rules()) == []


def test_the_metalcast_cli_manages_rules(metalcast_url: str, tmp_path: Path) -> None:
    def metalcast(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        command = [sys.executable, "-m", "metalcast.cli.main", "--url", metalcast_url, *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    conditions = tmp_path / "conditions.json"
    conditions.write_text(json.dumps(CONDITIONS))
    done = metalcast(
        "--json", "inspection-rule", "create",
        "--actions", json.dumps(ACTIONS), "--conditions", f"@{conditions}", "--priority", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    uuid = json.loads(done.stdout)["uuid"]
    listed = metalcast("inspection-rule", "list")
    assert uuid in listed.stdout
    shown = json.loads(metalcast("--json", "inspection-rule", "show", uuid).stdout)
    assert shown["conditions"] == CONDITIONS
    refused = metalcast("inspection-rule", "create", "--actions", "{not json")
    assert refused.returncode != 0 and "--actions (--actions) is not JSON" in refused.stderr
    assert metalcast("inspection-rule", "delete", "--all").returncode == 0
    assert json.loads(metalcast("--json", "inspection-rule", "list").stdout) == []
