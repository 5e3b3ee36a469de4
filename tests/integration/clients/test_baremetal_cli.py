"""python-ironicclient's `baremetal` CLI, unmodified, against `metalcast server`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ironicclient import client as ironic_client

pytestmark = pytest.mark.integration

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"


def baremetal(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(var, None)
    result = subprocess.run(
        [BAREMETAL, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"baremetal {' '.join(args)} failed:\n{result.stderr}")
    return result


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def show(url: str, node: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(baremetal(url, "node", "show", node, "-f", "json").stdout)
    return out


def create(url: str, name: str, *extra: str) -> str:
    out = json.loads(
        baremetal(
            url,
            "node",
            "create",
            "--driver",
            "fake-hardware",
            "--name",
            name,
            "--driver-info",
            "ipmi_password=s3cret-pw",
            *extra,
            "-f",
            "json",
        ).stdout
    )
    return str(out["uuid"])


def test_full_lifecycle_through_the_baremetal_cli(metalcast_url: str) -> None:
    uuid = create(metalcast_url, "cli-node-1")
    baremetal(metalcast_url, "port", "create", "52:54:00:aa:00:01", "--node", uuid)
    assert show(metalcast_url, "cli-node-1")["provision_state"] == "enroll"

    for verb, state in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("deploy", "active"),
        ("undeploy", "available"),
    ]:
        baremetal(metalcast_url, "node", verb, "cli-node-1", "--wait", "60")
        node = show(metalcast_url, "cli-node-1")
        assert node["provision_state"] == state, node
        assert node["last_error"] is None

    listed = json.loads(baremetal(metalcast_url, "node", "list", "-f", "json").stdout)
    assert "cli-node-1" in [n["name"] for n in listed]
    ports = json.loads(
        baremetal(metalcast_url, "port", "list", "--node", uuid, "-f", "json").stdout
    )
    assert [p["address"] for p in ports] == ["52:54:00:aa:00:01"]


def test_secrets_are_masked(metalcast_url: str) -> None:
    create(metalcast_url, "cli-secret")
    node = show(metalcast_url, "cli-secret")
    assert node["driver_info"]["ipmi_password"] == "******"
    assert "s3cret-pw" not in baremetal(metalcast_url, "node", "show", "cli-secret").stdout


def test_deploy_failure_then_recovery(metalcast_url: str) -> None:
    create(metalcast_url, "cli-fail", "--driver-info", "fake_fail=deploy")
    baremetal(metalcast_url, "node", "manage", "cli-fail", "--wait", "60")
    baremetal(metalcast_url, "node", "provide", "cli-fail", "--wait", "60")
    result = baremetal(metalcast_url, "node", "deploy", "cli-fail", "--wait", "60", check=False)
    assert result.returncode != 0
    node = show(metalcast_url, "cli-fail")
    assert node["provision_state"] == "deploy failed"
    assert "deploy" in node["last_error"]

    baremetal(metalcast_url, "node", "undeploy", "cli-fail", "--wait", "60")
    assert show(metalcast_url, "cli-fail")["provision_state"] == "available"


def test_abort_an_agent_that_never_calls_back(metalcast_url: str) -> None:
    create(metalcast_url, "cli-wait", "--driver-info", "fake_wait=deploy")
    baremetal(metalcast_url, "node", "manage", "cli-wait", "--wait", "60")
    baremetal(metalcast_url, "node", "provide", "cli-wait", "--wait", "60")
    baremetal(metalcast_url, "node", "deploy", "cli-wait")
    assert wait_for(lambda: show(metalcast_url, "cli-wait")["provision_state"] == "wait call-back")
    baremetal(metalcast_url, "node", "abort", "cli-wait")
    assert show(metalcast_url, "cli-wait")["provision_state"] == "deploy failed"


def test_invalid_transition_is_a_clear_client_error(metalcast_url: str) -> None:
    create(metalcast_url, "cli-invalid")
    result = baremetal(metalcast_url, "node", "deploy", "cli-invalid", check=False)
    assert result.returncode != 0
    assert "enroll" in result.stderr
    assert "HTTP 400" in result.stderr


def test_power_maintenance_and_boot_device(metalcast_url: str) -> None:
    create(metalcast_url, "cli-power")
    baremetal(metalcast_url, "node", "power", "on", "cli-power")
    assert wait_for(lambda: show(metalcast_url, "cli-power")["power_state"] == "power on")
    baremetal(metalcast_url, "node", "boot", "device", "set", "cli-power", "pxe")
    dev = json.loads(
        baremetal(metalcast_url, "node", "boot", "device", "show", "cli-power", "-f", "json").stdout
    )
    assert dev["boot_device"] == "pxe"
    baremetal(metalcast_url, "node", "maintenance", "set", "cli-power", "--reason", "disk swap")
    node = show(metalcast_url, "cli-power")
    assert node["maintenance"] is True
    assert node["maintenance_reason"] == "disk swap"
    baremetal(metalcast_url, "node", "delete", "cli-power")
    assert baremetal(metalcast_url, "node", "show", "cli-power", check=False).returncode != 0


def test_features_of_api_1_32_to_1_51_through_the_cli(metalcast_url: str) -> None:
    debug = baremetal(metalcast_url, "--debug", "driver", "list").stderr
    assert "X-OpenStack-Ironic-API-Version: 1.115" in debug  # the newest both know
    uuid = create(metalcast_url, "cli-features")
    baremetal(metalcast_url, "node", "add", "trait", "cli-features", "CUSTOM_GPU", "CUSTOM_SSD")
    traits = json.loads(
        baremetal(metalcast_url, "node", "trait", "list", "cli-features", "-f", "json").stdout
    )
    assert sorted(t["traits"] for t in traits) == ["CUSTOM_GPU", "CUSTOM_SSD"]

    connector = json.loads(
        baremetal(
            metalcast_url,
            "volume", "connector", "create",
            "--node", uuid, "--type", "iqn", "--connector-id", "iqn.2017-07.org.cli:1",
            "-f", "json",
        ).stdout
    )  # fmt: skip
    assert connector["node_uuid"] == uuid
    listed = json.loads(
        baremetal(metalcast_url, "volume", "connector", "list", "--node", uuid, "-f", "json").stdout
    )
    assert [c["connector_id"] for c in listed] == ["iqn.2017-07.org.cli:1"]

    baremetal(metalcast_url, "node", "manage", "cli-features", "--wait", "60")
    settings = json.loads(
        baremetal(
            metalcast_url, "node", "bios", "setting", "list", "cli-features", "-f", "json"
        ).stdout
    )
    assert {s["name"]: s["value"] for s in settings}["boot_mode"] == "uefi"
    history = json.loads(
        baremetal(metalcast_url, "node", "history", "list", "cli-features", "-f", "json").stdout
    )
    assert any("manageable" in event["event"] for event in history)


def test_console_raid_and_driver_passthru_through_the_cli(metalcast_url: str) -> None:
    uuid = create(metalcast_url, "cli-extras")
    baremetal(metalcast_url, "node", "console", "enable", "cli-extras")
    assert wait_for(lambda: show(metalcast_url, "cli-extras")["console_enabled"] is True)
    console = json.loads(
        baremetal(metalcast_url, "node", "console", "show", "cli-extras", "-f", "json").stdout
    )
    assert console["console_enabled"] is True
    assert console["console_info"] == {}  # as Ironic's fake console
    baremetal(metalcast_url, "node", "console", "disable", "cli-extras")
    assert wait_for(lambda: show(metalcast_url, "cli-extras")["console_enabled"] is False)

    target = {"logical_disks": [{"size_gb": 50, "raid_level": "1", "is_root_volume": True}]}
    baremetal(
        metalcast_url, "node", "set", "cli-extras", "--target-raid-config", json.dumps(target)
    )
    assert show(metalcast_url, "cli-extras")["target_raid_config"] == target
    invalid = json.dumps({"logical_disks": [{"size_gb": 50, "raid_level": "4"}]})
    result = baremetal(
        metalcast_url, "node", "set", "cli-extras", "--target-raid-config", invalid, check=False
    )
    assert result.returncode != 0
    assert "raid_level" in result.stderr
    baremetal(metalcast_url, "node", "manage", "cli-extras", "--wait", "60")
    steps = json.dumps([{"interface": "raid", "step": "create_configuration"}])
    baremetal(metalcast_url, "node", "clean", "cli-extras", "--clean-steps", steps, "--wait", "60")
    node = show(metalcast_url, "cli-extras")
    assert node["raid_config"]["logical_disks"] == target["logical_disks"]
    assert node["properties"]["local_gb"] == 50

    properties = json.loads(
        baremetal(
            metalcast_url, "driver", "raid", "property", "list", "fake-hardware", "-f", "json"
        ).stdout
    )
    described = {p["property"]: p["description"] for p in properties}
    assert described["size_gb"].startswith("Size in GiB")

    methods = json.loads(
        baremetal(metalcast_url, "driver", "passthru", "list", "fake-hardware", "-f", "json").stdout
    )
    assert [(m["name"], m["http_methods"]) for m in methods] == [("list_bmcs", "GET, POST")]
    # `baremetal driver passthru call` cannot show an object result (python-ironicclient
    # 6.3 hands cliff a Resource, which has no keys()), so call through its library
    client = ironic_client.get_client(
        1, endpoint=metalcast_url, auth_type="none", os_ironic_api_version="1.51"
    )
    called = client.driver.vendor_passthru("fake-hardware", "list_bmcs", http_method="GET")
    assert called.to_dict()[uuid]["power_state"] == "power off"


def test_lookups_sub_lists_vifs_and_boot_device_as_ironic(metalcast_url: str) -> None:
    url = metalcast_url
    node = create(url, "cli-parity")
    # a fresh fake node's boot device: a string and a boolean, as Ironic's fake says
    device = json.loads(baremetal(url, "node", "boot", "device", "show", node, "-f", "json").stdout)
    assert device == {"boot_device": "pxe", "persistent": False}
    # a noop network interface attaches a VIF without any port, as Ironic's
    baremetal(url, "node", "vif", "attach", node, "vif-1")
    assert json.loads(baremetal(url, "node", "vif", "list", node, "-f", "json").stdout) == []
    baremetal(url, "node", "vif", "detach", node, "vif-1")

    group = json.loads(
        baremetal(
            url, "port", "group", "create", "--node", node, "--name", "cli-bond", "-f", "json"
        ).stdout
    )
    args = ("port", "create", "52:54:00:aa:00:21", "--node", node, "--port-group", "cli-bond")
    port = json.loads(baremetal(url, *args, "-f", "json").stdout)
    # `port show --address` asks /v1/ports/detail?address=
    found = json.loads(
        baremetal(url, "port", "show", "--address", "52:54:00:AA:00:21", "-f", "json").stdout
    )
    assert found["uuid"] == port["uuid"]
    # python-ironicclient's node.list_ports and portgroup.list_ports with detail ask
    # /v1/nodes/{node}/ports/detail and /v1/portgroups/{group}/ports/detail
    client = ironic_client.get_client(
        1, endpoint=url, auth_type="none", os_ironic_api_version="1.60"
    )
    by_node = client.node.list_ports(node, detail=True)
    by_group = client.portgroup.list_ports("cli-bond", detail=True)
    for listed in (by_node, by_group):
        assert [(p.uuid, p.portgroup_uuid) for p in listed] == [(port["uuid"], group["uuid"])]
        assert listed[0].node_uuid == node
    # a port is not named by its MAC address in a path
    shown = baremetal(url, "port", "show", "52:54:00:aa:00:21", check=False)
    assert shown.returncode != 0
    assert "Expected a logical name or UUID" in shown.stderr

    # nova's way to the node of an instance: /v1/nodes/detail?instance_uuid=
    instance = "a6bd4c8d-8f6d-4e8f-a2b4-4bbd7c5ca04a"
    baremetal(url, "node", "set", node, "--instance-uuid", instance)
    by_instance = json.loads(
        baremetal(url, "node", "show", "--instance", instance, "-f", "json").stdout
    )
    assert by_instance["uuid"] == node
    refused = baremetal(url, "node", "list", "--fault", "bogus", check=False)
    assert refused.returncode != 0
    assert 'Unrecognized fault "bogus"' in refused.stderr


def test_boot_mode_and_secure_boot_through_the_baremetal_cli(metalcast_url: str) -> None:
    """`baremetal node boot mode set` and `node secure boot on|off` (Ironic 1.76)."""
    create(metalcast_url, "cli-boot-mode")
    baremetal(metalcast_url, "node", "manage", "cli-boot-mode", "--wait", "60")
    assert show(metalcast_url, "cli-boot-mode")["boot_mode"] == "uefi"
    baremetal(metalcast_url, "node", "secure", "boot", "on", "cli-boot-mode")
    assert wait_for(lambda: show(metalcast_url, "cli-boot-mode")["secure_boot"] is True)
    baremetal(metalcast_url, "node", "secure", "boot", "off", "cli-boot-mode")
    assert wait_for(lambda: show(metalcast_url, "cli-boot-mode")["secure_boot"] is False)
    baremetal(metalcast_url, "node", "boot", "mode", "set", "cli-boot-mode", "bios")
    assert wait_for(lambda: show(metalcast_url, "cli-boot-mode")["boot_mode"] == "bios")
    refused = baremetal(
        metalcast_url, "node", "boot", "mode", "set", "cli-boot-mode", "efi", check=False
    )
    assert refused.returncode != 0


def test_clean_hold_unhold_and_abort_through_the_cli(metalcast_url: str) -> None:
    create(metalcast_url, "cli-hold")
    baremetal(metalcast_url, "node", "manage", "cli-hold", "--wait", "60")
    steps = json.dumps(
        [
            {"interface": "deploy", "step": "hold"},
            {"interface": "deploy", "step": "erase_devices"},
        ]
    )
    baremetal(metalcast_url, "node", "clean", "cli-hold", "--clean-steps", steps)
    assert wait_for(lambda: show(metalcast_url, "cli-hold")["provision_state"] == "clean hold")
    assert show(metalcast_url, "cli-hold")["clean_step"]["step"] == "hold"

    baremetal(metalcast_url, "node", "unhold", "cli-hold")
    assert wait_for(lambda: show(metalcast_url, "cli-hold")["provision_state"] == "manageable")

    baremetal(metalcast_url, "node", "clean", "cli-hold", "--clean-steps", steps)
    assert wait_for(lambda: show(metalcast_url, "cli-hold")["provision_state"] == "clean hold")
    baremetal(metalcast_url, "node", "abort", "cli-hold")
    assert wait_for(lambda: show(metalcast_url, "cli-hold")["provision_state"] == "clean failed")
    node = show(metalcast_url, "cli-hold")
    assert "the clean operation was aborted" in node["last_error"]
    refused = baremetal(metalcast_url, "node", "unhold", "cli-hold", check=False)
    assert refused.returncode != 0 and "unhold" in refused.stderr
