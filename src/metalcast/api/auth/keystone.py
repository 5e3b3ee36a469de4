"""``keystone``: Keystone tokens, validated by keystonemiddleware as Ironic does.

Ironic puts keystonemiddleware's ``auth_token`` (a WSGI middleware) in its WSGI
pipeline.  metalcast's API is ASGI, so :class:`KeystoneAuth` keeps one
``AuthProtocol`` and, for each request that carries a token, runs it over a
synthetic WSGI environ built from the request's headers, in a worker thread; a tiny
WSGI app behind it marks the environ when keystonemiddleware let the request
through, and the caller's identity is read from the validated token that
keystonemiddleware left there (``keystone.token_auth``).  Why this way:

- the validation itself is keystonemiddleware's, unchanged: the token cache (in
  memory, or memcached with its MAC/ENCRYPT protection), expiry, access rules of
  application credentials, the service user's own token, retries, and the
  stripping of identity headers a client sent (``X-Roles``, ``X-Project-Id``,
  ``X-Identity-Status``, ...) before it sets its own;
- it is blocking code (HTTP to Keystone, memcached), so it runs off the event loop,
  at most :data:`VALIDATORS` at a time so that a slow Keystone cannot take every
  worker thread of the server;
- only the request's headers, method and path are needed: the request body never
  goes through it.

In front of it, a token keystonemiddleware confirmed is remembered for
``api.auth_cache_seconds`` (never past its expiry) in the server's
:class:`~metalcast.api.auth.cache.CredentialCache`, keyed by the token's SHA-256,
so a client's next requests are answered on the event loop without a thread hop or
keystonemiddleware's per-request work; tokens of application credentials with
access rules are not remembered, since their verdict depends on method and path.  A
token revoked in Keystone is therefore refused within ``api.auth_cache_seconds`` at
most, after keystonemiddleware's own cache (``token_cache_time``) no longer has it.

Its settings come only from the ``keystone`` area (:class:`KeystoneSettings`,
Ironic's ``[keystone_authtoken]`` keys), given to keystonemiddleware in a private
``oslo.config`` object that reads no file, no command line and no environment
variable; the global ``oslo_config.cfg.CONF`` is never used.

A request without a token, or with one Keystone does not confirm, gets 401 with
``WWW-Authenticate: Keystone uri="<www_authenticate_uri>"``, as Ironic answers; 503
when Keystone cannot be asked.

Errors::

    MetalcastError
    ├── KeystoneSettingsError   incomplete or invalid ``keystone`` settings (at start)
    ├── Unauthorized (401)      no token, or a wrong, expired or revoked one
    └── ServiceUnavailable (503) Keystone did not answer the validation
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import loading
from keystonemiddleware import auth_token
from oslo_config import cfg

from metalcast.api.auth import Credentials
from metalcast.api.auth.cache import CredentialCache
from metalcast.config import KeystoneSettings
from metalcast.context import RequestContext, with_implied
from metalcast.errors import MetalcastError, ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

#: keystonemiddleware's option group (the section name in Ironic's file)
GROUP: Final = "keystone_authtoken"
#: the keystoneauth plugins the ``keystone`` area has every key for
PASSWORD_PLUGINS: Final = ("password", "v3password")
#: validations running at once, each in a worker thread waiting on Keystone or memcached
VALIDATORS: Final = 16
#: headers keystonemiddleware takes the user's token from
TOKEN_HEADERS: Final = ("x-auth-token", "x-storage-token")

_PASSED: Final = "metalcast.keystone.passed"
_REQUIRED: Final = (
    "www_authenticate_uri",
    "auth_url",
    "username",
    "password",
    "project_name",
)
_URLS: Final = ("www_authenticate_uri", "auth_url")


class KeystoneSettingsError(MetalcastError):
    """The ``keystone`` settings cannot work: the server refuses to start."""


# ----------------------------------------------------------------------- settings


def check_settings(settings: KeystoneSettings) -> None:
    """Refuse settings keystonemiddleware cannot validate tokens with.

    Raises:
        KeystoneSettingsError: a required key is missing (all of them are named), the
            auth type is not a password one, or a URL is not http(s).
    """
    missing = [name for name in _REQUIRED if not _given(getattr(settings, name))]
    if missing:
        names = ", ".join(f"keystone.{name}" for name in missing)
        variables = ", ".join(f"METALCAST_KEYSTONE__{name.upper()}" for name in missing)
        raise KeystoneSettingsError(
            f"api.auth_strategy 'keystone' needs {names} (the keys of Ironic's "
            f"[keystone_authtoken] section; environment: {variables})."
        )
    if settings.auth_type not in PASSWORD_PLUGINS:
        raise KeystoneSettingsError(
            f"keystone.auth_type '{settings.auth_type}' is not supported: metalcast's "
            f"service user authenticates with {' or '.join(PASSWORD_PLUGINS)}."
        )
    for name in _URLS:
        url = urlsplit(str(getattr(settings, name)))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise KeystoneSettingsError(
                f"keystone.{name} '{getattr(settings, name)}' is not an http(s) URL "
                f"of Keystone (e.g. https://keystone.example:5000/v3)."
            )
    if settings.memcache_security_strategy.lower() != "none" and not _given(
        settings.memcache_secret_key
    ):
        raise KeystoneSettingsError(
            f"keystone.memcache_security_strategy '{settings.memcache_security_strategy}' "
            f"needs keystone.memcache_secret_key."
        )


def _given(value: object) -> bool:
    if value is None:
        return False
    secret = getattr(value, "get_secret_value", None)
    text = secret() if callable(secret) else value
    return str(text).strip() != ""


def oslo_options(settings: KeystoneSettings) -> cfg.ConfigOpts:
    """keystonemiddleware's options, from ``settings`` alone.

    A private ``ConfigOpts``: no configuration file, command line or environment
    variable is read, and the global ``cfg.CONF`` is not touched.
    """
    conf = cfg.ConfigOpts()
    conf(
        args=[],
        project="metalcast",
        default_config_files=[],
        default_config_dirs=[],
        use_env=False,
    )
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    plugin: loading.BaseLoader[Any] = loading.get_plugin_loader(settings.auth_type)
    conf.register_opts(loading.get_auth_plugin_conf_options(plugin), group=GROUP)
    for name, value in _option_values(settings).items():
        conf.set_override(name, value, group=GROUP)
    return conf


def _option_values(settings: KeystoneSettings) -> dict[str, object]:
    values: dict[str, object] = {
        name: getattr(settings, name)
        for name in (
            "www_authenticate_uri",
            "auth_url",
            "auth_type",
            "username",
            "project_name",
            "user_domain_name",
            "project_domain_name",
            "region_name",
            "interface",
            "service_type",
            "insecure",
            "http_connect_timeout",
            "memcache_security_strategy",
            "token_cache_time",
        )
    }
    values["password"] = _secret(settings.password)
    values["memcache_secret_key"] = _secret(settings.memcache_secret_key)
    values["cafile"] = str(settings.cafile) if settings.cafile else None
    values["memcached_servers"] = list(settings.memcached_servers) or None
    # keystonemiddleware answers 401 itself, as in Ironic's pipeline
    values["delay_auth_decision"] = False
    return {name: value for name, value in values.items() if value is not None}


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


# --------------------------------------------------------------- the authenticator


class KeystoneAuth:
    """Validates Keystone tokens with keystonemiddleware; see the module docstring."""

    name = "keystone"

    def __init__(self, settings: KeystoneSettings, *, cache: CredentialCache | None = None) -> None:
        """``cache`` remembers confirmed tokens (none: every request is validated).

        Raises:
            KeystoneSettingsError: see :func:`check_settings`.
        """
        check_settings(settings)
        self._cache = cache
        self.challenge = f'Keystone uri="{settings.www_authenticate_uri}"'
        self._uri = str(settings.www_authenticate_uri)
        self._protocol = auth_token.AuthProtocol(
            _let_through, {"oslo_config_config": oslo_options(settings)}
        )
        self._limiter = anyio.CapacityLimiter(VALIDATORS)

    async def authenticate(self, credentials: Credentials) -> RequestContext:
        """The token's identity, as Keystone confirmed it.

        Raises:
            Unauthorized: no token, or one Keystone does not confirm.
            ServiceUnavailable: Keystone could not be asked.
        """
        if not any(credentials.headers.get(name) for name in TOKEN_HEADERS):
            # refused here rather than with the middleware's generic answer, so that
            # the challenge names Keystone
            raise Unauthorized(
                f"Authentication required: send a Keystone token in X-Auth-Token "
                f"(get one from {self._uri}).",
                challenge=self.challenge,
            )
        key = _cache_key(credentials)
        generation = 0
        if self._cache is not None:
            known = self._cache.get(key)
            if known is not None:
                return dataclasses.replace(known, request_id=credentials.request_id)
            generation = self._cache.generation
        environ = wsgi_environ(credentials)
        access = await anyio.to_thread.run_sync(self._validate, environ, limiter=self._limiter)
        context = context_of(access, request_id=credentials.request_id)
        if self._cache is not None and not access.application_credential_access_rules:
            self._cache.put(key, context, generation=generation, seconds=_lifetime(access))
        return context

    def _validate(self, environ: dict[str, Any]) -> Any:
        """keystonemiddleware's verdict on the token in ``environ`` (a worker thread).

        Returns the token's ``keystoneauth1.access.AccessInfo``.

        Raises:
            Unauthorized: keystonemiddleware refused the token.
            ServiceUnavailable: Keystone could not be asked.
        """
        try:
            status = call_wsgi(self._protocol, environ)
        except ksa_exceptions.ClientException as exc:
            log.error("cannot validate a token with Keystone: %s", exc)
            raise ServiceUnavailable(
                "Keystone cannot be asked to validate the token now; try again later."
            ) from exc
        if environ.get(_PASSED) and environ.get("HTTP_X_IDENTITY_STATUS") == "Confirmed":
            return environ["keystone.token_auth"].user
        if status == 401:
            raise Unauthorized(
                f"The token is not valid (wrong, expired or revoked): get a new one "
                f"from Keystone at {self._uri}.",
                challenge=self.challenge,
            )
        raise ServiceUnavailable(
            "Keystone cannot be asked to validate the token now; try again later."
        )


def _cache_key(credentials: Credentials) -> str:
    """The cache key of the request's token: its SHA-256, never the token."""
    token = next(v for name in TOKEN_HEADERS if (v := credentials.headers.get(name)))
    return "keystone:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _lifetime(access: Any) -> float:
    """Seconds until the token expires (0 when it does not say)."""
    expires = access.expires
    if not isinstance(expires, datetime):
        return 0.0
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return max(0.0, (expires - datetime.now(UTC)).total_seconds())


def _let_through(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The WSGI app behind keystonemiddleware: reached only with a confirmed token."""
    environ[_PASSED] = True
    start_response("204 No Content", [])
    return []


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> int:
    """Run the WSGI ``app`` on ``environ``; its response's status code."""
    statuses: list[str] = []

    def start_response(
        status: str, headers: object, exc_info: object = None
    ) -> Callable[..., None]:
        statuses.append(status)
        return lambda _data: None

    body = app(environ, start_response)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if callable(close):
            close()
    return int(statuses[-1].split(" ", 1)[0]) if statuses else 500


def wsgi_environ(credentials: Credentials) -> dict[str, Any]:
    """A bodiless WSGI environ with the request's method, path and headers.

    All headers go in, so that keystonemiddleware strips the identity headers a
    client sent, as it does in Ironic; names with ``_`` are left out (as Apache and
    nginx do), since ``X_Roles`` would otherwise become ``X-Roles``.
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": credentials.method,
        "SCRIPT_NAME": "",
        # PEP 3333: the path's bytes as latin-1
        "PATH_INFO": credentials.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "metalcast",
        "SERVER_PORT": "0",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": credentials.client or "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    headers = credentials.headers
    for name in set(headers.keys()):
        if "_" in name or name in ("content-type", "content-length"):
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = ",".join(headers.getlist(name))
    return environ


def context_of(access: Any, *, request_id: str) -> RequestContext:
    """The request context of a validated token (a keystoneauth ``AccessInfo``)."""
    system = "all" if access.system_scoped and (access.system or {}).get("all") else None
    return RequestContext(
        user=access.user_id,
        user_name=access.username,
        project=None if system else access.project_id,
        project_name=None if system else access.project_name,
        roles=with_implied({role.lower() for role in access.role_names}),
        system_scope=system,
        request_id=request_id,
    )
