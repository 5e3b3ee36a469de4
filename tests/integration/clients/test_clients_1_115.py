"""What API 1.82 to 1.115 added (but firmware components, virtual media and deploy
hold), through the real clients asking for ``latest`` against `metalcast server`:
python-ironicclient's `baremetal` and openstacksdk."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openstack
import pytest
from test_baremetal_cli import baremetal, create, show

pytestmark = pytest.mark.integration
LATEST = {"X-OpenStack-Ironic-API-Version": "latest"}


def _json(url: str, *args: str) -> Any:
    return json.loads(baremetal(url, *args, "-f", "json").stdout)


def _uuid(node: dict[str, Any]) -> str:
    # `node list` names its columns "UUID", or "uuid" when a filter asks for fields
    return str(node.get("UUID") or node["uuid"])


def test_the_cli_uses_shards_children_and_the_new_fields(metalcast_url: str) -> None:
    url = metalcast_url
    parent = create(url, "cli-parent")
    child = create(url, "cli-child")
    # 1.82 shards
    baremetal(url, "node", "set", "cli-parent", "--shard", "rack-1")
    assert show(url, "cli-parent")["shard"] == "rack-1"
    shards = _json(url, "shard", "list")
    assert {"name": "rack-1", "count": 1} in shards
    sharded = _json(url, "node", "list", "--shards", "rack-1")
    assert [_uuid(n) for n in sharded] == [parent]
    # 1.83 child nodes: a child leaves the plain list, is in its parent's children
    baremetal(url, "node", "set", "cli-child", "--parent-node", "cli-parent")
    assert show(url, "cli-child")["parent_node"] == parent
    listed = {_uuid(n) for n in _json(url, "node", "list")}
    assert parent in listed and child not in listed
    everything = {_uuid(n) for n in _json(url, "node", "list", "--include-children")}
    assert child in everything
    children = _json(url, "node", "children", "list", "cli-parent")
    assert children == {"children": [child]}
    # 1.95, 1.104
    baremetal(url, "node", "set", "cli-child", "--disable-power-off", "--instance-name", "vm-1")
    node = show(url, "cli-child")
    assert (node["disable_power_off"], node["instance_name"]) == (True, "vm-1")
    refused = baremetal(url, "node", "power", "off", "cli-child", check=False)
    assert refused.returncode != 0
    assert "Failed to set node power state to power off" in refused.stderr
    # 1.97, 1.100, 1.101: port fields; 1.102, 1.103: portgroup fields
    group = _json(
        url, "port", "group", "create", "--node", parent,
        "--physical-network", "physnet1", "--category", "bond",
    )  # fmt: skip
    assert (group["physical_network"], group["category"]) == ("physnet1", "bond")
    port = _json(
        url, "port", "create", "52:54:00:aa:bb:01", "--node", parent,
        "--description", "uplink", "--vendor", "acme", "--category", "data",
    )  # fmt: skip
    # the CLI sends them, but shows only the fields it knows: read them back from the API
    shown = httpx.get(f"{url}/v1/ports/{port['uuid']}", headers=LATEST).json()
    assert (shown["description"], shown["vendor"], shown["category"]) == ("uplink", "acme", "data")


def test_the_cli_drives_runbook_traits(metalcast_url: str) -> None:
    url = metalcast_url
    steps = json.dumps([{"interface": "management", "step": "reset_bmc", "args": {}, "order": 1}])
    baremetal(url, "runbook", "create", "--name", "reset-bmc", "--steps", steps)
    baremetal(url, "runbook", "trait", "add", "reset-bmc", "CUSTOM_RESET")
    traits = _json(url, "runbook", "trait", "list", "reset-bmc")
    assert [t.get("Traits", t.get("traits")) for t in traits] == ["CUSTOM_RESET"], traits
    create(url, "cli-rb")
    baremetal(url, "node", "add", "trait", "cli-rb", "CUSTOM_RESET")
    baremetal(url, "node", "manage", "cli-rb", "--wait", "60")
    baremetal(url, "node", "clean", "cli-rb", "--runbook", "reset-bmc", "--wait", "60")
    node = show(url, "cli-rb")
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)


@pytest.fixture
def conn(metalcast_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )


def test_openstacksdk_uses_the_features_of_1_82_to_1_115(
    conn: openstack.connection.Connection,
) -> None:
    # openstacksdk 4.22 speaks up to 1.109 and has node fields and filters, but no
    # calls for /v1/shards or a node's children: those go through its adapter
    parent = conn.baremetal.create_node(driver="fake-hardware", name="sdk-parent", shard="s1")
    assert parent.shard == "s1"
    child = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-child", parent_node=parent.id
    )
    assert child.parent_node == parent.id
    assert [n.id for n in conn.baremetal.nodes(shard="s1")] == [parent.id]
    assert child.id not in [n.id for n in conn.baremetal.nodes()]
    assert child.id in [n.id for n in conn.baremetal.nodes(include_children=True)]
    assert [n.id for n in conn.baremetal.nodes(parent_node=parent.id)] == [child.id]
    children = conn.baremetal.get(f"/nodes/{parent.id}/children", microversion="1.83").json()
    assert children["children"] == [child.id]
    shards = conn.baremetal.get("/shards", microversion="1.82").json()["shards"]
    assert {"name": "s1", "count": 1} in shards
    node = conn.baremetal.update_node(child, instance_name="vm-9")
    assert node.instance_name == "vm-9"
    # a child node is in a list with include_children only, whatever the filter
    assert list(conn.baremetal.nodes(instance_name="vm-9")) == []
    named = conn.baremetal.nodes(instance_name="vm-9", include_children=True)
    assert [n.id for n in named] == [child.id]
    assert conn.baremetal.get_node(child.id).health is None
