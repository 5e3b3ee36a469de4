"""``builtin`` authentication with unmodified clients against `metalcast server`.

python-ironicclient's ``baremetal`` with ``http_basic`` (user name and password) and
``admin_token`` (an API token); openstacksdk with the same two; 401 for missing,
wrong, expired and revoked credentials; one project's member sees only that
project's nodes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from openstack import exceptions

from metalcast.db import identity
from metalcast.db.engine import Database
from metalcast.db.rows import utcnow

pytestmark = pytest.mark.integration

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
BUILTIN = {"METALCAST_API__AUTH_STRATEGY": "builtin"}
VERSION = {"X-OpenStack-Ironic-API-Version": "1.51"}
MEMBER_PASSWORD = "member's long password"


@dataclass(frozen=True)
class Site:
    """A builtin server, its first administrator's password, and its database."""

    url: str
    password: str
    database_url: str

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=("admin", self.password), headers=VERSION)


def first_admin_password(stdout: str) -> str:
    found = re.findall(r"^\s+password: (\S+)$", stdout, re.MULTILINE)
    assert len(found) == 1, stdout
    return found[0]


@pytest.fixture(scope="module")
def site(start_metalcast_server: Any) -> Iterator[Site]:
    with start_metalcast_server(env=BUILTIN) as server:
        password = first_admin_password(server.stdout_path.read_text())
        yield Site(server.url, password, f"sqlite:///{server.state_dir / 'metalcast.sqlite'}")


def baremetal(
    url: str, auth: list[str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The unmodified ``baremetal`` CLI with ``auth`` options (no OS_* from outside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    result = subprocess.run(
        [BAREMETAL, "--os-endpoint", url, *auth, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"baremetal {' '.join(args)} failed:\n{result.stderr}")
    return result


def token_of(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def sdk(site: Site, auth_type: str, auth: dict[str, str]) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type=auth_type,
        auth=auth,
        baremetal_endpoint_override=site.url,
        load_yaml_config=False,
        load_envvars=False,
    )


# -------------------------------------------------------------------- first admin


def test_the_first_admin_is_printed_once(run_server_in: Any, tmp_path: Path) -> None:
    with run_server_in(tmp_path / "state", env=BUILTIN) as server:
        first = server.stdout_path.read_text()
        password = first_admin_password(first)
        assert f"export METALCAST_URL={server.url} METALCAST_USERNAME=admin" in first
        assert f"export METALCAST_PASSWORD='{password}'" in first
        assert password not in server.stderr_path.read_text()  # not in the log
        whoami = httpx.get(f"{server.url}/v1/auth/whoami", auth=("admin", password))
        assert whoami.json()["system"] == "all"
    with run_server_in(tmp_path / "state", env=BUILTIN) as server:
        again = server.stdout_path.read_text()
        assert "password" not in again and "listening on" in again
        assert httpx.get(f"{server.url}/v1/nodes", auth=("admin", password)).status_code == 200


# ------------------------------------------------------------- python-ironicclient


def test_baremetal_with_http_basic(site: Site) -> None:
    auth = ["--os-auth-type", "http_basic", "--os-username", "admin"]
    auth += ["--os-password", site.password]
    created = json.loads(
        baremetal(
            site.url, auth, "node", "create", "--driver", "fake-hardware", "--name", "basic-1",
            "-f", "json",
        ).stdout
    )  # fmt: skip
    listed = json.loads(baremetal(site.url, auth, "node", "list", "-f", "json").stdout)
    assert "basic-1" in [n["name"] for n in listed]
    shown = json.loads(baremetal(site.url, auth, "node", "show", "basic-1", "-f", "json").stdout)
    assert shown["uuid"] == created["uuid"]

    wrong = ["--os-auth-type", "http_basic", "--os-username", "admin", "--os-password", "nope"]
    result = baremetal(site.url, wrong, "node", "list", check=False)
    assert result.returncode != 0
    assert "The user name or password is wrong." in result.stderr and "401" in result.stderr


def test_baremetal_with_a_token(site: Site) -> None:
    with site.admin() as admin:
        secret = token_of(admin, description="baremetal")["token"]
    auth = ["--os-auth-type", "admin_token", "--os-token", secret]
    baremetal(site.url, auth, "node", "create", "--driver", "fake-hardware", "--name", "tok-1")
    listed = json.loads(baremetal(site.url, auth, "node", "list", "-f", "json").stdout)
    assert "tok-1" in [n["name"] for n in listed]
    shown = json.loads(baremetal(site.url, auth, "node", "show", "tok-1", "-f", "json").stdout)
    assert shown["provision_state"] == "enroll"

    # auth type "none" sends the token "notused"
    none = baremetal(site.url, ["--os-auth-type", "none"], "node", "list", check=False)
    assert none.returncode != 0 and "HTTP 401" in none.stderr
    assert "not a metalcast API token" in none.stderr and "http_basic" in none.stderr


# --------------------------------------------------------------------- openstacksdk


def test_openstacksdk_with_http_basic_and_admin_token(site: Site) -> None:
    basic = sdk(site, "http_basic", {"username": "admin", "password": site.password})
    node = basic.baremetal.create_node(driver="fake-hardware", name="sdk-basic")
    assert basic.baremetal.get_node("sdk-basic").id == node.id

    with site.admin() as admin:
        secret = token_of(admin)["token"]
    for auth_type in ("admin_token", "token_endpoint"):  # the SDK takes both names
        tokened = sdk(site, auth_type, {"token": secret, "endpoint": site.url})
        assert "sdk-basic" in {n.name for n in tokened.baremetal.nodes()}

    wrong = sdk(site, "http_basic", {"username": "admin", "password": "nope"})
    with pytest.raises(exceptions.HttpException) as refused:
        list(wrong.baremetal.nodes())
    assert refused.value.status_code == 401


# ----------------------------------------------------------------------------- 401s


def test_missing_expired_and_revoked_credentials_get_401(site: Site) -> None:
    anonymous = httpx.get(f"{site.url}/v1/nodes", headers=VERSION)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="metalcast"'

    db = Database(site.database_url)  # as another process would: straight to the table
    try:
        with db.begin() as conn:
            admin_user = identity.get_user(conn, "admin")
            _, expired = identity.create_token(
                conn, admin_user, project=None, expires_at=utcnow() - timedelta(seconds=1)
            )
    finally:
        db.dispose()
    stale = httpx.get(f"{site.url}/v1/nodes", headers={**VERSION, "X-Auth-Token": expired})
    assert stale.status_code == 401 and "expired" in stale.text

    with site.admin() as admin:
        token = token_of(admin)
        tokened = sdk(site, "admin_token", {"token": token["token"], "endpoint": site.url})
        list(tokened.baremetal.nodes())  # works, and is now cached by the server
        assert admin.delete(f"/v1/auth/tokens/{token['id']}").status_code == 204
    with pytest.raises(exceptions.HttpException) as refused:
        list(tokened.baremetal.nodes())
    assert refused.value.status_code == 401 and "revoked" in str(refused.value)


# ------------------------------------------------------------------------- projects


def test_a_members_token_sees_only_its_projects_nodes(site: Site) -> None:
    with site.admin() as admin:
        ids = {}
        for name in ("blue", "green"):
            response = admin.post("/v1/auth/projects", json={"name": name})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
            owned = {"driver": "fake-hardware", "name": f"{name}-node", "owner": ids[name]}
            assert admin.post("/v1/nodes", json=owned).status_code == 201
        body = {"name": "blue-member", "password": MEMBER_PASSWORD, "default_project": "blue"}
        assert admin.post("/v1/auth/users", json=body).status_code == 201
        grant = "/v1/auth/projects/blue/users/blue-member/roles/member"
        assert admin.put(grant).status_code == 204
    with httpx.Client(base_url=site.url, auth=("blue-member", MEMBER_PASSWORD)) as member:
        secret = token_of(member)["token"]

    auth = ["--os-auth-type", "admin_token", "--os-token", secret]
    listed = json.loads(baremetal(site.url, auth, "node", "list", "-f", "json").stdout)
    assert [n["name"] for n in listed] == ["blue-node"]
    other = baremetal(site.url, auth, "node", "show", "green-node", check=False)
    assert other.returncode != 0 and "could not be found" in other.stderr
    forged = httpx.get(
        f"{site.url}/v1/nodes",
        headers={**VERSION, "X-Auth-Token": secret, "X-Project-Id": ids["green"]},
    )
    assert [n["name"] for n in forged.json()["nodes"]] == ["blue-node"]
    create = baremetal(site.url, auth, "node", "create", "--driver", "fake-hardware", check=False)
    assert create.returncode != 0 and "403" in create.stderr
