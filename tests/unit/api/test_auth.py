"""Authentication strategies: which settings may start, who is believed, 401s."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from api_harness import Api, fault_of, make_settings
from starlette.datastructures import Headers

from metalcast.api import auth
from metalcast.api.app import create_app
from metalcast.api.auth import UnsafeAuthStrategy, check_startup
from metalcast.api.auth.header import HeaderAuth
from metalcast.config import ApiSettings, Settings
from metalcast.db.engine import Database
from metalcast.errors import Unauthorized


def settings(**api: object) -> Settings:
    return Settings(api=ApiSettings(**api))  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.53"])
def test_noauth_and_auto_are_noauth_on_loopback(host: str) -> None:
    assert check_startup(settings(host=host, auth_strategy="noauth")) == "noauth"
    assert check_startup(settings(host=host)) == "noauth"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_noauth_is_refused_off_loopback_and_auto_means_builtin(host: str) -> None:
    with pytest.raises(UnsafeAuthStrategy, match="only allowed while the API listens on loopback"):
        check_startup(settings(host=host, auth_strategy="noauth"))
    assert check_startup(settings(host=host)) == "builtin"


def test_header_off_loopback_needs_trusted_proxies() -> None:
    with pytest.raises(UnsafeAuthStrategy, match=r"api\.trusted_proxies"):
        check_startup(settings(host="0.0.0.0", auth_strategy="header"))
    trusted = settings(host="0.0.0.0", auth_strategy="header", trusted_proxies=("10.0.0.0/24",))
    assert check_startup(trusted) == "header"


def test_a_trusted_proxy_must_be_an_address() -> None:
    with pytest.raises(UnsafeAuthStrategy, match=r"'proxy\.example' is not an IP address"):
        check_startup(settings(auth_strategy="header", trusted_proxies=("proxy.example",)))


def test_create_app_refuses_noauth_off_loopback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, host="0.0.0.0")
    db = Database(settings.database_url)
    with pytest.raises(UnsafeAuthStrategy):
        create_app(settings, db, conductor=None)  # type: ignore[arg-type]


def _header_context(headers: dict[str, str], client: str) -> object:
    authenticator = HeaderAuth(trusted=auth.parse_networks(["10.0.0.0/24"]))
    credentials = auth.Credentials(headers=Headers(headers), client=client, request_id="req-1")
    return anyio.run(authenticator.authenticate, credentials)


def test_header_identity_from_a_trusted_peer() -> None:
    headers = {"x-roles": "Member", "x-project-id": "p", "x-user-id": "u"}
    for peer in ("127.0.0.1", "10.0.0.7"):
        context = _header_context(headers, peer)
        assert context.roles == {"member", "reader"}  # type: ignore[attr-defined]
        assert (context.project, context.user) == ("p", "u")  # type: ignore[attr-defined]
        assert not context.is_admin  # type: ignore[attr-defined]


def test_header_system_scope_makes_a_system_admin() -> None:
    context = _header_context({"x-roles": "admin", "openstack-system-scope": "all"}, "::1")
    assert context.is_admin  # type: ignore[attr-defined]
    assert context.project is None  # type: ignore[attr-defined]


def test_header_identity_from_anyone_else_is_refused() -> None:
    with pytest.raises(Unauthorized, match="only accepted from the authenticating proxy"):
        _header_context({"x-roles": "admin", "openstack-system-scope": "all"}, "10.0.1.7")


def test_no_identity_headers_is_no_identity() -> None:
    assert _header_context({}, "127.0.0.1") is None


def test_requests_without_credentials_get_401_except_public_routes(secured: Api) -> None:
    anonymous = Api(secured.client, secured.db, secured.service, secured.version, {})
    response = anonymous.get("/v1/nodes")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "carries no credentials" in fault_of(response)
    assert anonymous.get("/").status_code == 200
    assert anonymous.get("/v1").status_code == 200
    assert anonymous.get("/v1/lookup?addresses=52:54:00:00:00:01").status_code == 404
