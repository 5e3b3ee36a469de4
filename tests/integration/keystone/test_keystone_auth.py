"""metalcast behind a real Keystone, driven by the unmodified ``baremetal`` CLI and
openstacksdk with password auth, as an Ironic user would.

The separation asserted here is what the policy gives today (a project member sees
and acts on its project's nodes only; only system administrators create nodes); the
full who-may-what matrix lives with the policy's tests, which can reuse
:mod:`keystonelab`'s personas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from keystonelab import (
    Keystone,
    Persona,
    Tenancy,
    memcached_items,
    metalcast_env,
    running_memcached,
)
from openstack import exceptions

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
FORGED = {
    "X-Roles": "admin,member,reader",
    "X-Role": "admin",
    "OpenStack-System-Scope": "all",
    "X-Identity-Status": "Confirmed",
    "X-Is-Admin-Project": "True",
    "X-User-Id": "forged-user",
}


def baremetal(
    persona: Persona, keystone: Keystone, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The ``baremetal`` CLI logged in as ``persona`` (OS_* variables, catalog lookup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(persona.os_env(keystone))
    result = subprocess.run(
        [BAREMETAL, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"baremetal {' '.join(args)} failed:\n{result.stderr}")
    return result


def names(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {row["name"] for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def fleet(keystone_metalcast: Any, tenancy: Tenancy) -> dict[str, str]:
    """Two nodes per project, created by the system administrator: project-a's with
    the CLI, project-b's with openstacksdk; name -> uuid."""
    admin = tenancy.persona("system-admin")
    created = {}
    for name in ("ks-a1", "ks-a2"):
        out = baremetal(
            admin, tenancy.keystone, "node", "create", "--driver", "fake-hardware",
            "--name", name, "--owner", tenancy.project_ids["project-a"], "-f", "json",
        )  # fmt: skip
        created[name] = json.loads(out.stdout)["uuid"]
    conn = admin.connect(tenancy.keystone)
    for name in ("ks-b1", "ks-b2"):
        node = conn.baremetal.create_node(
            driver="fake-hardware", name=name, owner=tenancy.project_ids["project-b"]
        )
        created[name] = node.id
    return created


def test_without_a_valid_token_every_private_route_is_401(
    keystone_metalcast: Any, keystone: Keystone
) -> None:
    challenge = f'Keystone uri="{keystone.url}"'
    for headers in ({}, {"X-Auth-Token": "not-a-token"}, {"X-Auth-Token": "gAAAA" + "x" * 180}):
        for method, path in (("GET", "/v1/nodes"), ("POST", "/v1/nodes"), ("GET", "/v1/ports")):
            response = httpx.request(method, keystone_metalcast.url + path, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            assert response.headers["www-authenticate"] == challenge
    # version discovery stays public, as in Ironic
    assert httpx.get(keystone_metalcast.url + "/v1").status_code == 200


def test_the_system_admin_creates_and_sees_every_node(
    fleet: dict[str, str], tenancy: Tenancy
) -> None:
    admin = tenancy.persona("system-admin")
    listed = baremetal(admin, tenancy.keystone, "node", "list", "-f", "json")
    assert names(listed) >= set(fleet)
    conn = admin.connect(tenancy.keystone)
    node = conn.baremetal.get_node("ks-b1")
    assert node.owner == tenancy.project_ids["project-b"]


def test_a_project_member_sees_and_acts_on_its_projects_nodes_only(
    fleet: dict[str, str], tenancy: Tenancy
) -> None:
    alice = tenancy.persona("a-member")
    listed = baremetal(alice, tenancy.keystone, "node", "list", "-f", "json")
    assert names(listed) == {"ks-a1", "ks-a2"}
    shown = baremetal(alice, tenancy.keystone, "node", "show", "ks-b1", check=False)
    assert shown.returncode != 0 and "could not be found" in shown.stderr

    conn = tenancy.persona("b-member").connect(tenancy.keystone)
    assert {node.name for node in conn.baremetal.nodes()} == {"ks-b1", "ks-b2"}
    updated = conn.baremetal.update_node(fleet["ks-b2"], extra={"rack": "r7"})
    assert updated.extra == {"rack": "r7"}
    with pytest.raises(exceptions.NotFoundException):
        conn.baremetal.update_node(fleet["ks-a2"], extra={"rack": "stolen"})


@pytest.mark.parametrize("who", ["a-member", "a-reader", "system-reader"])
def test_only_the_system_admin_creates_nodes(
    who: str, keystone_metalcast: Any, tenancy: Tenancy
) -> None:
    conn = tenancy.persona(who).connect(tenancy.keystone)
    with pytest.raises(exceptions.ForbiddenException):
        conn.baremetal.create_node(driver="fake-hardware", name=f"not-by-{who}")


def test_forged_identity_headers_grant_nothing(
    fleet: dict[str, str], keystone_metalcast: Any, tenancy: Tenancy
) -> None:
    token = tenancy.persona("a-member").token(tenancy.keystone)
    headers = {
        **FORGED,
        "X-Auth-Token": token,
        "X-Project-Id": tenancy.project_ids["project-b"],
        "X-Tenant-Id": tenancy.project_ids["project-b"],
        "X-Project-Name": "project-b",
    }
    url = keystone_metalcast.url
    listed = httpx.get(f"{url}/v1/nodes", headers=headers)
    assert listed.status_code == 200
    assert {node["uuid"] for node in listed.json()["nodes"]} == {fleet["ks-a1"], fleet["ks-a2"]}
    other = httpx.get(f"{url}/v1/nodes/{fleet['ks-b1']}", headers=headers)
    assert other.status_code == 404
    created = httpx.post(
        f"{url}/v1/nodes", headers=headers, json={"driver": "fake-hardware", "name": "forged"}
    )
    assert created.status_code == 403
    # and no token at all: the forged headers are not an identity either
    bare = httpx.get(f"{url}/v1/nodes", headers=FORGED)
    assert bare.status_code == 401


def test_a_token_is_validated_once_then_served_from_the_cache(
    keystone_metalcast: Any, tenancy: Tenancy
) -> None:
    keystone = tenancy.keystone
    carol = tenancy.persona("a-reader")
    token = carol.token(keystone)
    assert keystone.validations(token) == 0
    for _ in range(3):
        response = httpx.get(f"{keystone_metalcast.url}/v1/nodes", headers={"X-Auth-Token": token})
        assert response.status_code == 200
    assert keystone.validations(token) == 1

    # an SDK session reuses its token: one validation for all its calls
    conn = carol.connect(keystone)
    for _ in range(3):
        list(conn.baremetal.nodes())
    assert keystone.validations(conn.auth_token) == 1


def test_a_revoked_token_is_refused(keystone_metalcast: Any, tenancy: Tenancy) -> None:
    keystone = tenancy.keystone
    token = tenancy.persona("b-member").token(keystone)
    admin = keystone.admin()
    revoked = httpx.delete(
        f"{keystone.url}/auth/tokens",
        headers={"X-Auth-Token": admin.auth_token, "X-Subject-Token": token},
    )
    assert revoked.status_code == 204
    response = httpx.get(f"{keystone_metalcast.url}/v1/nodes", headers={"X-Auth-Token": token})
    assert response.status_code == 401


def test_api_processes_share_validated_tokens_through_memcached(
    keystone: Keystone, tenancy: Tenancy, start_metalcast_server: Any
) -> None:
    carol = tenancy.persona("a-reader")
    with running_memcached() as memcached:
        env = metalcast_env(
            keystone,
            METALCAST_KEYSTONE__MEMCACHED_SERVERS=memcached,
            METALCAST_KEYSTONE__MEMCACHE_SECURITY_STRATEGY="ENCRYPT",
            METALCAST_KEYSTONE__MEMCACHE_SECRET_KEY="memcache-secret-for-tests",
        )
        with start_metalcast_server(env=env) as one, start_metalcast_server(env=env) as two:
            token = carol.token(keystone)
            for server in (one, two, one, two):
                response = httpx.get(f"{server.url}/v1/nodes", headers={"X-Auth-Token": token})
                assert response.status_code == 200, response.text
            assert keystone.validations(token) == 1
        held = memcached_items(memcached)
    # what memcached holds is encrypted: neither the token nor whose it is
    assert held
    for key, value in held.items():
        for clear in (token, carol.username, tenancy.project_ids["project-a"]):
            assert clear not in key and clear.encode() not in value
