"""Allocations through the unmodified clients: python-ironicclient's `baremetal` CLI
(`allocation create --wait`, ...) and openstacksdk (`create_allocation`,
`wait_for_allocation`), against `metalcast server`."""

from __future__ import annotations

import json
from typing import Any

import openstack
import pytest
from openstack import exceptions
from test_baremetal_cli import baremetal, show

pytestmark = pytest.mark.integration

RC = "baremetal-gold"


def allocation(url: str, *args: str, check: bool = True) -> Any:
    result = baremetal(url, "allocation", *args, "-f", "json", check=check)
    return json.loads(result.stdout) if result.returncode == 0 else result


def available_node(url: str, name: str, *traits: str) -> str:
    out = baremetal(
        url, "node", "create", "--driver", "fake-hardware", "--name", name,
        "--resource-class", RC, "-f", "json",
    ).stdout  # fmt: skip
    if traits:
        baremetal(url, "node", "add", "trait", name, *traits)
    baremetal(url, "node", "manage", name, "--wait", "60")
    baremetal(url, "node", "provide", name, "--wait", "60")
    return str(json.loads(out)["uuid"])


def test_allocations_through_the_baremetal_cli(metalcast_url: str) -> None:
    plain = available_node(metalcast_url, "cli-alloc-1")
    gpu = available_node(metalcast_url, "cli-alloc-2", "CUSTOM_GPU")

    made = allocation(
        metalcast_url, "create", "--resource-class", RC, "--trait", "CUSTOM_GPU",
        "--name", "gpu-box", "--extra", "team=blue", "--wait", "30",
    )  # fmt: skip
    assert (made["state"], made["node_uuid"], made["last_error"]) == ("active", gpu, None)
    assert made["traits"] == ["CUSTOM_GPU"]
    assert show(metalcast_url, "cli-alloc-2")["allocation_uuid"] == made["uuid"]
    assert show(metalcast_url, "cli-alloc-2")["instance_uuid"] == made["uuid"]

    listed = allocation(metalcast_url, "list", "--state", "active")
    assert [a["node_uuid"] for a in listed] == [gpu]
    shown = allocation(metalcast_url, "show", "gpu-box")
    assert shown["extra"] == {"team": "blue"}
    baremetal(metalcast_url, "allocation", "set", "gpu-box", "--name", "renamed")
    assert allocation(metalcast_url, "show", "renamed")["uuid"] == made["uuid"]

    second = allocation(
        metalcast_url, "create", "--resource-class", RC, "--candidate-node", "cli-alloc-1",
        "--wait", "30",
    )  # fmt: skip
    assert second["node_uuid"] == plain
    assert second["candidate_nodes"] == [plain]

    baremetal(metalcast_url, "allocation", "delete", "renamed", second["uuid"])
    assert show(metalcast_url, "cli-alloc-2")["instance_uuid"] is None
    assert allocation(metalcast_url, "list") == []


def test_a_failed_allocation_says_why_through_the_cli(metalcast_url: str) -> None:
    available_node(metalcast_url, "cli-alloc-3")
    failed = allocation(
        metalcast_url, "create", "--resource-class", "silver", "--wait", "30", check=False
    )
    assert failed.returncode != 0
    assert "no node has resource class silver" in failed.stderr


def test_backfill_through_the_cli(metalcast_url: str) -> None:
    node = available_node(metalcast_url, "cli-alloc-4")
    baremetal(metalcast_url, "node", "deploy", "cli-alloc-4", "--wait", "60")
    made = allocation(metalcast_url, "create", "--node", "cli-alloc-4")
    assert (made["state"], made["node_uuid"], made["resource_class"]) == ("active", node, RC)
    refused = baremetal(metalcast_url, "allocation", "delete", made["uuid"], check=False)
    assert refused.returncode != 0
    assert "because the node is active" in refused.stderr
    baremetal(metalcast_url, "node", "undeploy", "cli-alloc-4", "--wait", "60")
    assert allocation(metalcast_url, "list") == []  # undeploy took the allocation with it


# ----------------------------------------------------------------------- openstacksdk


@pytest.fixture
def conn(metalcast_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )


def sdk_node(conn: openstack.connection.Connection, name: str) -> Any:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name=name, resource_class=RC, provision_state="manageable"
    )
    return conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=60)


def test_allocations_through_openstacksdk(conn: openstack.connection.Connection) -> None:
    node = sdk_node(conn, "sdk-alloc-1")
    made = conn.baremetal.create_allocation(resource_class=RC, name="sdk-box")
    assert made.state == "allocating"
    done = conn.baremetal.wait_for_allocation(made, timeout=30)
    assert (done.state, done.node_id) == ("active", node.id)
    assert conn.baremetal.get_node(node.id).allocation_id == done.id

    renamed = conn.baremetal.update_allocation(done, name="sdk-renamed")
    assert renamed.name == "sdk-renamed"
    assert [a.id for a in conn.baremetal.allocations(node=node.id)] == [done.id]

    conn.baremetal.delete_allocation(done)
    assert conn.baremetal.get_node(node.id).instance_id is None
    with pytest.raises(exceptions.NotFoundException):
        conn.baremetal.get_allocation(done.id)


def test_a_failed_allocation_raises_in_openstacksdk(conn: openstack.connection.Connection) -> None:
    sdk_node(conn, "sdk-alloc-2")
    made = conn.baremetal.create_allocation(resource_class=RC, traits=["CUSTOM_NOPE"])
    with pytest.raises(exceptions.ResourceFailure, match="CUSTOM_NOPE"):
        conn.baremetal.wait_for_allocation(made, timeout=30)
    failed = conn.baremetal.wait_for_allocation(made, timeout=30, ignore_error=True)
    assert failed.state == "error"
