"""`metalcast host create/list/delete` and `metalcast allocation ...`, as subprocesses,
end to end against a real `metalcast server` with fake-hardware nodes (whose deploy is
instant): a host allocated and deployed in one call, freed in another, and every way
`host create` can fail giving back what it took."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli_server import api_get, cli

RC = "baremetal-gold"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Yx1uVwYm0dJ3J2x1k7q7c1jY2o4aN0dE9w7g4aN0d me@laptop"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def node(url: str, name: str, *extra: str) -> str:
    created = json.loads(
        cli(
            url, "--json", "node", "create", "--driver", "fake-hardware", "--name", name,
            "--resource-class", RC, *extra,
        ).stdout
    )  # fmt: skip
    cli(url, "node", "manage", name, "--wait", "60")
    cli(url, "node", "provide", name, "--wait", "60")
    return str(created["uuid"])


def host_create(url: str, tmp_path: Path, *extra: str, check: bool = True) -> Any:
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nruncmd: [touch, /tmp/hello]\n")
    return cli(
        url, "host", "create", "--resource-class", RC, "--image", "http://127.0.0.1:9/img.raw",
        "--checksum", SHA, "--ssh-key", KEY, "--user-data", str(user_data), *extra,
        check=check,
    )  # fmt: skip


def allocations(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api_get(url, "/v1/allocations").json()["allocations"]
    return found


def test_a_host_is_created_listed_and_deleted(metalcast_url: str, tmp_path: Path) -> None:
    uuid = node(metalcast_url, "box-1")
    created = host_create(metalcast_url, tmp_path, "--hostname", "web-1.example.com", "--wait")
    assert f"host web-1.example.com is up on node box-1 ({uuid})" in created.stdout

    shown = api_get(metalcast_url, "/v1/nodes/box-1").json()
    assert shown["provision_state"] == "active"
    assert shown["instance_info"]["image_source"] == "http://127.0.0.1:9/img.raw"
    assert shown["instance_info"]["image_checksum"] == SHA
    assert shown["instance_info"]["configdrive"] == "******"  # user data is never shown
    [allocation] = allocations(metalcast_url)
    assert allocation["name"] == "web-1.example.com"
    assert allocation["node_uuid"] == uuid == shown["uuid"]
    assert allocation["extra"] == {
        "hostname": "web-1.example.com",
        "image_source": "http://127.0.0.1:9/img.raw",
    }

    [listed] = json.loads(cli(metalcast_url, "--json", "host", "list").stdout)
    assert (listed["hostname"], listed["provision_state"]) == ("web-1.example.com", "active")
    assert "web-1.example.com" in cli(metalcast_url, "host", "list").stdout

    deleted = cli(metalcast_url, "host", "delete", "web-1.example.com")
    assert f"node {uuid} is free" in deleted.stdout
    freed = api_get(metalcast_url, "/v1/nodes/box-1").json()
    assert freed["provision_state"] == "available"
    assert (freed["instance_uuid"], freed["allocation_uuid"]) == (None, None)
    assert allocations(metalcast_url) == []


def test_without_wait_the_host_is_left_deploying(metalcast_url: str, tmp_path: Path) -> None:
    node(metalcast_url, "box-2")
    created = host_create(metalcast_url, tmp_path, "--hostname", "web-2", "--name", "two")
    assert "host two is deploying on node box-2" in created.stdout
    assert [a["name"] for a in allocations(metalcast_url)] == ["two"]


def test_no_matching_node_frees_the_allocation(metalcast_url: str, tmp_path: Path) -> None:
    node(metalcast_url, "box-3")
    failed = host_create(
        metalcast_url, tmp_path, "--hostname", "web-3", "--trait", "CUSTOM_GPU", check=False
    )
    assert failed.returncode == 1
    assert "host web-3 not created: allocation web-3 failed" in failed.stderr
    assert "has all the traits CUSTOM_GPU" in failed.stderr
    assert "allocation web-3 deleted" in failed.stderr
    assert allocations(metalcast_url) == []


def test_a_failed_deploy_is_undeployed_and_freed(metalcast_url: str, tmp_path: Path) -> None:
    uuid = node(metalcast_url, "box-4", "--driver-info", "fake_fail=deploy")
    failed = host_create(metalcast_url, tmp_path, "--hostname", "web-4", "--wait", check=False)
    assert failed.returncode == 1
    assert f"host web-4 not created: node {uuid} ended in 'deploy failed'" in failed.stderr
    assert f"node {uuid} undeployed" in failed.stderr
    freed = api_get(metalcast_url, "/v1/nodes/box-4").json()
    assert freed["provision_state"] == "available"
    assert freed["instance_uuid"] is None
    assert allocations(metalcast_url) == []


def test_a_node_in_maintenance_is_not_taken(metalcast_url: str, tmp_path: Path) -> None:
    node(metalcast_url, "box-5")
    cli(metalcast_url, "node", "maintenance", "set", "box-5")
    failed = host_create(metalcast_url, tmp_path, "--hostname", "web-5", check=False)
    assert "1 in maintenance" in failed.stderr
    assert allocations(metalcast_url) == []


def test_bad_input_is_refused_before_anything_is_taken(metalcast_url: str, tmp_path: Path) -> None:
    node(metalcast_url, "box-6")
    bad_key = host_create(
        metalcast_url, tmp_path, "--hostname", "web-6", "--ssh-key", "hello", check=False
    )
    assert bad_key.returncode == 1
    assert "is neither an OpenSSH public key" in bad_key.stderr
    bad_name = host_create(metalcast_url, tmp_path, "--hostname", "web_6", check=False)
    assert "is not a valid host name" in bad_name.stderr
    assert allocations(metalcast_url) == []


def test_allocation_commands(metalcast_url: str) -> None:
    uuid = node(metalcast_url, "box-7")
    made = json.loads(
        cli(
            metalcast_url, "--json", "allocation", "create", "--resource-class", RC,
            "--name", "mine", "--wait",
        ).stdout
    )  # fmt: skip
    assert (made["state"], made["node_uuid"]) == ("active", uuid)
    assert "mine" in cli(metalcast_url, "allocation", "list").stdout
    assert json.loads(cli(metalcast_url, "--json", "allocation", "show", "mine").stdout) == made
    failed = cli(
        metalcast_url, "allocation", "create", "--resource-class", "silver", "--wait", check=False
    )
    assert failed.returncode == 1
    assert "no node has resource class silver" in failed.stderr
    cli(metalcast_url, "allocation", "delete", "mine")
    assert api_get(metalcast_url, "/v1/nodes/box-7").json()["allocation_uuid"] is None
