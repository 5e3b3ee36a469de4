"""The ``keystone`` strategy without a Keystone: settings, the WSGI bridge, 401s.

What needs a real Keystone (valid, bogus and forged tokens, the cache) is in
tests/integration/keystone.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_harness import Client, fault_of
from keystoneauth1 import access
from starlette.datastructures import Headers

from metalcast.api.app import create_app
from metalcast.api.auth import Credentials, build_authenticator, check_startup
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.auth.keystone import (
    GROUP,
    KeystoneAuth,
    KeystoneSettingsError,
    check_settings,
    context_of,
    oslo_options,
    wsgi_environ,
)
from metalcast.config import ApiSettings, KeystoneSettings, Settings, load_settings
from metalcast.db.engine import Database
from metalcast.errors import Unauthorized

KEYSTONE = "http://127.0.0.1:9/v3"  # never contacted: no request here carries a token


def complete(**changes: Any) -> KeystoneSettings:
    values: dict[str, Any] = {
        "www_authenticate_uri": "https://keystone.example:5000/v3",
        "auth_url": KEYSTONE,
        "username": "ironic",
        "password": "service-secret",
        "project_name": "service",
    }
    values.update(changes)
    return KeystoneSettings(**values)


# ------------------------------------------------------------------------ settings


def test_settings_come_from_ironics_keys_in_the_environment() -> None:
    settings = load_settings(
        None,
        {
            "METALCAST_API__AUTH_STRATEGY": "keystone",
            "METALCAST_KEYSTONE__WWW_AUTHENTICATE_URI": "https://keystone.example:5000/v3",
            "METALCAST_KEYSTONE__AUTH_URL": "http://keystone.internal:5000/v3",
            "METALCAST_KEYSTONE__USERNAME": "ironic",
            "METALCAST_KEYSTONE__PASSWORD": "service-secret",
            "METALCAST_KEYSTONE__PROJECT_NAME": "service",
            "METALCAST_KEYSTONE__MEMCACHED_SERVERS": "10.0.0.5:11211, 10.0.0.6:11211",
        },
    )
    assert check_startup(settings) == "keystone"
    assert settings.keystone.memcached_servers == ("10.0.0.5:11211", "10.0.0.6:11211")
    check_settings(settings.keystone)


def test_the_settings_file_takes_the_section_as_ironic_writes_it(tmp_path: Path) -> None:
    config = tmp_path / "metalcast.toml"
    config.write_text(
        "[api]\nauth_strategy = 'keystone'\n"
        "[keystone]\n"
        "www_authenticate_uri = 'https://keystone.example:5000/v3'\n"
        "auth_url = 'http://keystone.internal:5000/v3'\n"
        "auth_type = 'password'\n"
        "username = 'ironic'\npassword = 'service-secret'\nproject_name = 'service'\n"
        "user_domain_name = 'Default'\nproject_domain_name = 'Default'\n"
        "memcached_servers = '10.0.0.5:11211'\n"
    )
    settings = load_settings(config, {})
    check_settings(settings.keystone)
    assert settings.keystone.memcached_servers == ("10.0.0.5:11211",)


def test_start_up_names_every_missing_key() -> None:
    with pytest.raises(KeystoneSettingsError) as caught:
        check_settings(KeystoneSettings())
    message = str(caught.value)
    for key in ("www_authenticate_uri", "auth_url", "username", "password", "project_name"):
        assert f"keystone.{key}" in message
        assert f"METALCAST_KEYSTONE__{key.upper()}" in message


def test_start_up_names_only_what_is_missing() -> None:
    with pytest.raises(KeystoneSettingsError) as caught:
        check_settings(complete(password="", project_name=None))
    message = str(caught.value)
    assert "keystone.password" in message and "keystone.project_name" in message
    assert "keystone.auth_url" not in message and "keystone.username" not in message


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"auth_type": "v3applicationcredential"}, "auth_type 'v3applicationcredential'"),
        ({"auth_url": "keystone.example:5000"}, "keystone.auth_url 'keystone.example:5000'"),
        ({"www_authenticate_uri": "ftp://k/v3"}, "is not an http(s) URL"),
        ({"memcache_security_strategy": "ENCRYPT"}, "needs keystone.memcache_secret_key"),
    ],
)
def test_unusable_settings_are_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(KeystoneSettingsError, match=re.escape(says)):
        check_settings(complete(**changes))


def test_the_app_refuses_to_start_with_incomplete_settings(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        api=ApiSettings(auth_strategy="keystone"),
        keystone=KeystoneSettings(auth_url=KEYSTONE),
    )
    with pytest.raises(KeystoneSettingsError, match=r"keystone\.username"):
        create_app(settings, Database(settings.database_url), conductor=None)  # type: ignore[arg-type]


def test_keystonemiddleware_gets_the_settings_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # left to itself, oslo.config would read these variables and ~/metalcast.conf
    monkeypatch.setenv("OS_KEYSTONE_AUTHTOKEN__AUTH_URL", "http://attacker.example/v3")
    monkeypatch.setenv("OS_KEYSTONE_AUTHTOKEN__DELAY_AUTH_DECISION", "true")
    monkeypatch.setenv("OS_KEYSTONE_AUTHTOKEN__ENFORCE_TOKEN_BIND", "disabled")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "metalcast.conf").write_text(
        "[keystone_authtoken]\ninclude_service_catalog = false\n"
    )
    settings = complete(memcached_servers=("127.0.0.1:11211",), token_cache_time=60)
    options = oslo_options(settings)[GROUP]
    assert options.auth_url == KEYSTONE
    assert options.www_authenticate_uri == "https://keystone.example:5000/v3"
    assert (options.username, options.password) == ("ironic", "service-secret")
    assert (options.user_domain_name, options.project_name) == ("Default", "service")
    assert options.memcached_servers == ["127.0.0.1:11211"]
    assert options.token_cache_time == 60
    assert options.delay_auth_decision is False
    assert options.enforce_token_bind == "permissive"
    assert options.insecure is False
    assert options.include_service_catalog is True


# --------------------------------------------------------------------- the bridge


def test_the_environ_carries_method_path_and_headers_but_no_underscored_names() -> None:
    credentials = Credentials(
        headers=Headers(
            raw=[
                (b"x-auth-token", b"tok"),
                (b"x-roles", b"admin"),
                (b"x_roles", b"admin"),
                (b"accept", b"a"),
                (b"accept", b"b"),
            ]
        ),
        client="10.0.0.9",
        request_id="req-1",
        method="PATCH",
        path="/v1/nodes/n\u00e9",
    )
    environ = wsgi_environ(credentials)
    assert environ["REQUEST_METHOD"] == "PATCH"
    assert environ["PATH_INFO"] == "/v1/nodes/n\u00e9".encode().decode("latin-1")
    assert environ["HTTP_X_AUTH_TOKEN"] == "tok"
    # keystonemiddleware strips X-Roles itself; the underscored alias never gets in
    assert environ["HTTP_X_ROLES"] == "admin"
    assert environ["HTTP_ACCEPT"] == "a,b"
    assert not any(key.lower().startswith("http_x_roles_") for key in environ)
    assert environ["REMOTE_ADDR"] == "10.0.0.9"
    assert environ["wsgi.input"].read() == b""


def _token(scope: dict[str, Any]) -> Any:
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    body = {
        "token": {
            "methods": ["password"],
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default"}},
            "roles": [{"id": "r1", "name": "Member"}, {"id": "r2", "name": "reader"}],
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": "2026-01-01T00:00:00.000000Z",
            **scope,
        }
    }
    return access.create(body=body, auth_token="tok")


def test_a_project_token_gives_its_project_and_roles() -> None:
    project = {"project": {"id": "p1", "name": "team-a", "domain": {"id": "default"}}}
    context = context_of(_token(project), request_id="req-1")
    assert (context.user, context.user_name) == ("u1", "alice")
    assert (context.project, context.project_name) == ("p1", "team-a")
    assert context.roles == {"member", "reader"}
    assert context.system_scope is None and not context.is_admin


def test_a_system_token_gives_the_system_scope_and_no_project() -> None:
    context = context_of(_token({"system": {"all": True}}), request_id="req-1")
    assert context.system_scope == "all"
    assert context.project is None
    assert not context.is_admin  # a member, not an admin


# --------------------------------------------------------------------------- 401s


@pytest.fixture
def keystone_app(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(
        state_dir=tmp_path, api=ApiSettings(auth_strategy="keystone"), keystone=complete()
    )
    db = Database(settings.database_url)
    db.migrate()
    yield Client(create_app(settings, db, conductor=None))  # type: ignore[arg-type]
    db.dispose()


def test_no_token_is_401_with_keystones_challenge(keystone_app: Client) -> None:
    forged = {"X-Roles": "admin", "OpenStack-System-Scope": "all", "X-Identity-Status": "Confirmed"}
    for headers in ({}, forged, {"X-Auth-Token": ""}):
        response = keystone_app.request("GET", "/v1/nodes", content=None, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == (
            'Keystone uri="https://keystone.example:5000/v3"'
        )
        assert "send a Keystone token in X-Auth-Token" in fault_of(response)


def test_public_routes_need_no_token(keystone_app: Client) -> None:
    for path in ("/", "/v1"):
        response = keystone_app.request("GET", path, content=None, headers={})
        assert response.status_code == 200


def test_no_token_is_refused_before_any_thread_or_network() -> None:
    authenticator = build_authenticator(
        Settings(api=ApiSettings(auth_strategy="keystone"), keystone=complete()), "keystone"
    )
    assert isinstance(authenticator, KeystoneAuth)
    credentials = Credentials(headers=Headers({}), client="127.0.0.1", request_id="req-1")
    with pytest.raises(Unauthorized) as caught:
        anyio.run(authenticator.authenticate, credentials)
    assert caught.value.challenge == authenticator.challenge


# --------------------------------------------------------------------- the cache


class _Verdicts:
    """Stands in for keystonemiddleware's verdict: counts the validations."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.calls = 0

    def __call__(self, environ: dict[str, Any]) -> Any:
        self.calls += 1
        return self.token


def _remembering(verdicts: _Verdicts) -> KeystoneAuth:
    authenticator = KeystoneAuth(complete(), cache=CredentialCache(10))
    authenticator._validate = verdicts  # type: ignore[method-assign]
    return authenticator


def _ask(authenticator: KeystoneAuth, token: str, request_id: str) -> Any:
    headers = Headers({"X-Auth-Token": token})
    credentials = Credentials(headers=headers, client="127.0.0.1", request_id=request_id)
    return anyio.run(authenticator.authenticate, credentials)


def test_a_confirmed_token_is_remembered_under_its_hash() -> None:
    verdicts = _Verdicts(_token({"project": {"id": "p1", "name": "a", "domain": {"id": "d"}}}))
    authenticator = _remembering(verdicts)
    first = _ask(authenticator, "tok-a", "req-1")
    again = _ask(authenticator, "tok-a", "req-2")
    assert verdicts.calls == 1
    assert (again.user, again.project, again.request_id) == ("u1", "p1", "req-2")
    assert first.request_id == "req-1"
    _ask(authenticator, "tok-b", "req-3")  # another token is validated on its own
    assert verdicts.calls == 2
    keys = list(authenticator._cache._entries)  # type: ignore[union-attr]
    assert keys and not any("tok-" in key for key in keys)


def test_tokens_with_access_rules_are_validated_every_time() -> None:
    token = _token({"project": {"id": "p1", "name": "a", "domain": {"id": "d"}}})
    token._data["token"]["application_credential"] = {
        "id": "ac1",
        "name": "ci",
        "restricted": True,
        "access_rules": [{"service": "baremetal", "method": "GET", "path": "/v1/nodes"}],
    }
    verdicts = _Verdicts(token)
    authenticator = _remembering(verdicts)
    _ask(authenticator, "tok-a", "req-1")
    _ask(authenticator, "tok-a", "req-2")
    assert verdicts.calls == 2
