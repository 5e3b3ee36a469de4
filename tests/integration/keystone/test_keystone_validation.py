"""The keystone authenticator itself against a real Keystone (no metalcast server),
and ``metalcast server``'s refusal to start without the settings it needs."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from keystonelab import SERVICE_USER, Keystone, Tenancy, free_port
from starlette.datastructures import Headers

from metalcast.api.auth import Credentials
from metalcast.api.auth.keystone import KeystoneAuth
from metalcast.config import KeystoneSettings
from metalcast.context import RequestContext
from metalcast.errors import ServiceUnavailable, Unauthorized


def settings_for(auth_url: str) -> KeystoneSettings:
    return KeystoneSettings(
        www_authenticate_uri=auth_url,
        auth_url=auth_url,
        username=SERVICE_USER.username,
        password=SERVICE_USER.password,  # type: ignore[arg-type]
        project_name="service",
        region_name="RegionOne",
    )


def identify(authenticator: KeystoneAuth, headers: dict[str, str]) -> RequestContext:
    credentials = Credentials(
        headers=Headers(headers), client="127.0.0.1", request_id="req-1", path="/v1/nodes"
    )
    return anyio.run(authenticator.authenticate, credentials)


def test_identity_comes_from_the_token_and_never_from_the_clients_headers(
    keystone: Keystone, tenancy: Tenancy
) -> None:
    authenticator = KeystoneAuth(settings_for(keystone.url))
    member = tenancy.persona("a-member")
    token = member.token(keystone)
    honest = identify(authenticator, {"X-Auth-Token": token})
    assert honest.project == tenancy.project_ids["project-a"]
    assert (honest.project_name, honest.user_name) == ("project-a", member.username)
    assert honest.roles == {"member", "reader"}
    assert honest.system_scope is None

    forged = identify(
        authenticator,
        {
            "X-Auth-Token": token,
            "X-Roles": "admin",
            "X-Project-Id": tenancy.project_ids["project-b"],
            "X-Tenant-Id": tenancy.project_ids["project-b"],
            "X-User-Id": "someone-else",
            "OpenStack-System-Scope": "all",
            "X-Identity-Status": "Confirmed",
            "X-Service-Catalog": "[]",
        },
    )
    assert (forged.user, forged.project, forged.roles) == (
        honest.user,
        honest.project,
        honest.roles,
    )
    assert forged.system_scope is None and not forged.is_admin


def test_a_system_scoped_token_gives_the_system_scope(keystone: Keystone, tenancy: Tenancy) -> None:
    authenticator = KeystoneAuth(settings_for(keystone.url))
    context = identify(
        authenticator, {"X-Auth-Token": tenancy.persona("system-admin").token(keystone)}
    )
    assert context.system_scope == "all" and context.project is None
    assert context.is_admin
    reader = identify(
        authenticator, {"X-Auth-Token": tenancy.persona("system-reader").token(keystone)}
    )
    assert reader.system_scope == "all" and reader.roles == {"reader"}
    assert not reader.is_admin


def test_a_wrong_token_is_unauthorized_with_keystones_challenge(
    keystone: Keystone, tenancy: Tenancy
) -> None:
    authenticator = KeystoneAuth(settings_for(keystone.url))
    with pytest.raises(Unauthorized) as caught:
        identify(authenticator, {"X-Auth-Token": "gAAAAAB-not-a-fernet-token"})
    assert caught.value.challenge == f'Keystone uri="{keystone.url}"'
    assert "not valid" in str(caught.value)


def test_an_unreachable_keystone_is_503_not_401() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v3"
    authenticator = KeystoneAuth(settings_for(nowhere))
    with pytest.raises(ServiceUnavailable, match="try again later"):
        identify(authenticator, {"X-Auth-Token": "gAAAAAB-some-token"})


def test_the_server_refuses_to_start_without_the_keys_it_needs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state_dir = tmp_path_factory.mktemp("refused")
    env = {
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "1000",
        "METALCAST_BOOT__ENABLED": "false",
        "METALCAST_API__AUTH_STRATEGY": "keystone",
        "METALCAST_KEYSTONE__AUTH_URL": "http://127.0.0.1:5000/v3",
        "METALCAST_KEYSTONE__USERNAME": "ironic",
    }
    result = subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", "server", "--port", str(free_port()),
         "--state-dir", str(state_dir)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    for key in ("www_authenticate_uri", "password", "project_name"):
        assert f"keystone.{key}" in output
    assert "keystone.auth_url" not in output and "keystone.username" not in output
