"""Runbooks (1.92) through the real clients against `metalcast server`:
python-ironicclient's `baremetal runbook` and `baremetal node clean --runbook`,
openstacksdk, and `metalcast node clean --runbook`; a fake-hardware node cleaned by
a runbook end to end, its history checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import openstack
import pytest
from test_baremetal_cli import baremetal, create, show, wait_for

pytestmark = pytest.mark.integration

#: order says: reset the BMC first, then the BIOS setting (listed the other way round)
STEPS = [
    {
        "interface": "bios",
        "step": "apply_configuration",
        "args": {"settings": [{"name": "LogicalProc", "value": "Enabled"}]},
        "order": 20,
    },
    {"interface": "management", "step": "reset_bmc", "args": {}, "order": 10},
]


def _json(url: str, *args: str) -> Any:
    return json.loads(baremetal(url, *args, "-f", "json").stdout)


def _history(url: str, node: str) -> list[str]:
    return [e["event"] for e in _json(url, "node", "history", "list", node)]


def test_the_baremetal_cli_cleans_a_node_with_a_runbook(metalcast_url: str) -> None:
    url = metalcast_url
    made = _json(url, "runbook", "create", "--name", "CUSTOM_TUNE", "--steps", json.dumps(STEPS))
    assert made["name"] == "CUSTOM_TUNE" and made["steps"] == STEPS
    assert (made["public"], made["owner"]) == (False, None)
    listed = _json(url, "runbook", "list")
    assert len(listed) == 1 and made["uuid"] in json.dumps(listed)
    baremetal(url, "runbook", "set", "CUSTOM_TUNE", "--extra", "team=ops")
    assert _json(url, "runbook", "show", made["uuid"])["extra"] == {"team": "ops"}
    bad = baremetal(url, "runbook", "create", "--name", "lower", "--steps", "[]", check=False)
    assert bad.returncode != 0 and "(HTTP 400)" in bad.stderr
    taken = json.dumps(STEPS)
    again = baremetal(
        url, "runbook", "create", "--name", "CUSTOM_TUNE", "--steps", taken, check=False
    )
    assert again.returncode != 0 and "(HTTP 409)" in again.stderr

    create(url, "tuned")
    baremetal(url, "node", "manage", "tuned", "--wait", "60")
    # from 1.112 a runbook runs on a node sharing one of its traits
    refused = baremetal(url, "node", "clean", "tuned", "--runbook", "CUSTOM_TUNE", check=False)
    assert refused.returncode != 0 and "has no traits configured" in refused.stderr
    baremetal(url, "runbook", "trait", "add", "CUSTOM_TUNE", "CUSTOM_TUNE")
    refused = baremetal(url, "node", "clean", "tuned", "--runbook", "CUSTOM_TUNE", check=False)
    assert refused.returncode != 0 and "any of the runbook's traits" in refused.stderr
    baremetal(url, "node", "add", "trait", "tuned", "CUSTOM_TUNE")
    baremetal(url, "node", "clean", "tuned", "--runbook", "CUSTOM_TUNE", "--wait", "60")
    node = show(url, "tuned")
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)
    setting = _json(url, "node", "bios", "setting", "show", "tuned", "LogicalProc")
    assert setting["value"] == "Enabled"
    ran = [e for e in _history(url, "tuned") if "runbook" in e]
    assert ran == [
        f"cleaning: running runbook CUSTOM_TUNE ({made['uuid']}): "
        "management.reset_bmc, bios.apply_configuration"
    ]
    baremetal(url, "runbook", "delete", "CUSTOM_TUNE")
    assert _json(url, "runbook", "list") == []


def test_openstacksdk_manages_runbooks(metalcast_url: str) -> None:
    conn = openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )
    secret = {"interface": "bios", "step": "apply_configuration", "order": 1}
    secret["args"] = {"settings": [], "admin_password": "runbook-secret-pw"}
    # (openstacksdk 4.22's Runbook knows no disable_ramdisk: it would not send it)
    made = conn.baremetal.create_runbook(name="CUSTOM_SDK", steps=[secret])
    shown = conn.baremetal.get_runbook("CUSTOM_SDK")
    assert shown.id == made.id
    assert shown.steps[0]["args"]["admin_password"] == "******"
    assert [r.name for r in conn.baremetal.runbooks()] == ["CUSTOM_SDK"]
    patched = conn.baremetal.patch_runbook(
        made.id, [{"op": "replace", "path": "/name", "value": "CUSTOM_SDK2"}]
    )
    assert patched.name == "CUSTOM_SDK2"
    conn.baremetal.delete_runbook(made.id, ignore_missing=False)
    assert list(conn.baremetal.runbooks()) == []


def test_the_metalcast_cli_cleans_with_a_runbook(metalcast_url: str) -> None:
    def metalcast(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        command = [sys.executable, "-m", "metalcast.cli.main", "--url", metalcast_url, *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    _json(metalcast_url, "runbook", "create", "--name", "CUSTOM_MC", "--steps", json.dumps(STEPS))
    baremetal(metalcast_url, "runbook", "trait", "add", "CUSTOM_MC", "CUSTOM_MC")
    create(metalcast_url, "mc")
    baremetal(metalcast_url, "node", "manage", "mc", "--wait", "60")
    baremetal(metalcast_url, "node", "add", "trait", "mc", "CUSTOM_MC")
    neither = metalcast("node", "clean", "mc")
    assert neither.returncode != 0 and "--clean-steps or --runbook" in neither.stderr
    done = metalcast("node", "clean", "mc", "--runbook", "CUSTOM_MC", "--wait")
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: show(metalcast_url, "mc")["provision_state"] == "manageable")
    assert any("running runbook CUSTOM_MC" in e for e in _history(metalcast_url, "mc"))
