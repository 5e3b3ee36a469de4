"""What API 1.61 to 1.81 added, through the real clients asking for ``latest``
against `metalcast server`: python-ironicclient's `baremetal` and openstacksdk."""

from __future__ import annotations

import json
from typing import Any

import openstack
import pytest
from openstack import exceptions
from test_baremetal_cli import baremetal, create, show

pytestmark = pytest.mark.integration


def _json(url: str, *args: str) -> Any:
    return json.loads(baremetal(url, *args, "-f", "json").stdout)


def test_the_cli_negotiates_1_115_and_uses_the_features_of_1_61_to_1_81(metalcast_url: str) -> None:
    url = metalcast_url
    debug = baremetal(url, "--debug", "driver", "list").stderr
    assert "X-OpenStack-Ironic-API-Version: 1.115" in debug  # the newest both know
    create(url, "cli-81")
    baremetal(url, "node", "manage", "cli-81", "--wait", "60")
    # 1.61: retired, and a retired node is not provided
    baremetal(url, "node", "set", "cli-81", "--retired", "--retired-reason", "end of life")
    node = show(url, "cli-81")
    assert (node["retired"], node["retired_reason"]) == (True, "end of life")
    refused = baremetal(url, "node", "provide", "cli-81", check=False)
    assert refused.returncode != 0
    assert "because it is retired" in refused.stderr
    retired = _json(url, "node", "list", "--retired", "--fields", "name")
    assert [n["name"] for n in retired] == ["cli-81"]
    baremetal(url, "node", "unset", "cli-81", "--retired")
    assert show(url, "cli-81")["retired_reason"] is None
    # 1.65, 1.66: lessee, network_data
    network = {"links": [{"id": "eth0", "type": "phy"}], "networks": [], "services": []}
    baremetal(url, "node", "set", "cli-81", "--lessee", "p2", "--network-data", json.dumps(network))
    node = show(url, "cli-81")
    assert (node["lessee"], node["network_data"]) == ("p2", network)
    # 1.74: BIOS settings with the registry's fields (null: no registry is read)
    settings = _json(url, "node", "bios", "setting", "list", "cli-81", "--long")
    hyper = next(s for s in settings if s["name"] == "hyperthreading")
    assert hyper["value"] == "enabled"
    assert "read_only" in hyper and hyper["read_only"] is None
    # 1.76: boot mode and secure boot
    baremetal(url, "node", "boot", "mode", "set", "cli-81", "bios")
    assert show(url, "cli-81")["boot_mode"] == "bios"
    baremetal(url, "node", "boot", "mode", "set", "cli-81", "uefi")
    baremetal(url, "node", "secure", "boot", "on", "cli-81")
    assert show(url, "cli-81")["secure_boot"] is True
    # 1.77: driver fields
    driver = _json(url, "driver", "show", "fake-hardware", "--fields", "name", "hosts")
    assert set(driver) == {"name", "hosts"}
    # 1.78: history
    history = _json(url, "node", "history", "list", "cli-81")
    assert history  # the manage and the changes above left events
    # 1.70: a manual cleaning without the ramdisk
    steps = json.dumps([{"interface": "management", "step": "reset_bmc", "args": {}}])
    baremetal(
        url, "node", "clean", "cli-81", "--clean-steps", steps, "--disable-ramdisk",
        "--wait", "60",
    )  # fmt: skip
    node = show(url, "cli-81")
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)
    # 1.73: deploy and undeploy
    baremetal(url, "node", "provide", "cli-81", "--wait", "60")
    baremetal(url, "node", "deploy", "cli-81", "--wait", "60")
    assert show(url, "cli-81")["provision_state"] == "active"
    baremetal(url, "node", "undeploy", "cli-81", "--wait", "60")
    assert show(url, "cli-81")["provision_state"] == "available"


@pytest.fixture
def conn(metalcast_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )


def test_openstacksdk_uses_the_features_of_1_61_to_1_81(
    conn: openstack.connection.Connection,
) -> None:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-81", provision_state="manageable"
    )
    node = conn.baremetal.update_node(node, is_retired=True, retired_reason="old", lessee="p3")
    assert (node.is_retired, node.retired_reason, node.lessee) == (True, "old", "p3")
    with pytest.raises(exceptions.BadRequestException, match="because it is retired"):
        conn.baremetal.set_node_provision_state(node, "provide")
    node = conn.baremetal.update_node(node, is_retired=False)
    assert node.retired_reason is None
    # 1.69: deploy steps run in the deploy; an unknown one is refused
    node = conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=60)
    settings = [{"name": "hyperthreading", "value": "disabled"}]
    step = {
        "interface": "bios",
        "step": "apply_configuration",
        "args": {"settings": settings},
        "priority": 90,
    }
    with pytest.raises(exceptions.BadRequestException, match=r"no deploy step 'bios\.flash'"):
        conn.baremetal.set_node_provision_state(
            node, "active", deploy_steps=[{**step, "step": "flash"}]
        )
    assert conn.baremetal.get_node("sdk-81").provision_state == "available"
    # 1.76
    conn.baremetal.set_node_boot_mode(node, "bios")
    assert conn.baremetal.get_node("sdk-81").boot_mode == "bios"
    # 1.81: the endpoint exists; nothing was inspected
    with pytest.raises(exceptions.NotFoundException):
        conn.baremetal.get_node_inventory(node)
    # 1.69 again: the deploy runs the step asked for
    node = conn.baremetal.set_node_provision_state(
        node, "active", deploy_steps=[step], wait=True, timeout=60
    )
    assert node.provision_state == "active"
