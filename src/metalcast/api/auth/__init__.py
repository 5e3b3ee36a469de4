"""Authentication: who is calling, under the strategy ``api.auth_strategy`` chooses.

Every request passes :class:`~metalcast.api.middleware.ApiMiddleware`, which asks the
server's one :class:`Authenticator` for the caller's
:class:`~metalcast.context.RequestContext`.  Routes in :data:`PUBLIC_PATHS` (version
discovery, the ramdisk agent's lookup, heartbeat and inspection data, as in Ironic)
need no credentials; every other request without valid ones is answered 401 before
it reaches a route.  What the caller may then do is the policy's business
(:mod:`metalcast.api.policy`).

Strategies (``api.auth_strategy``):

``noauth``   every caller is a system administrator; only while the API listens on
             loopback (:mod:`.noauth`)
``builtin``  metalcast's own users, projects, roles and API tokens, HTTP Basic too
             (:mod:`.builtin`); what ``auto`` means beyond loopback
``header``   identity headers set by an authenticating proxy, believed only from
             loopback or ``api.trusted_proxies`` (:mod:`.header`)
``keystone`` Keystone tokens validated by keystonemiddleware (:mod:`.keystone`)

Errors::

    MetalcastError
    ├── UnsafeAuthStrategy   the settings would expose the API unprotected: refused at start
    └── Unauthorized (401)   missing, wrong, expired or revoked credentials
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers

from metalcast.config import Settings
from metalcast.context import RequestContext
from metalcast.errors import MetalcastError

#: paths anyone may call without credentials (Ironic's public_api_routes, plus the
#: OpenAPI description)
PUBLIC_PATHS = re.compile(
    r"^/(v1(/lookup|/heartbeat(/[^/]+)?|/continue_inspection|/openapi\.json)?)?$"
)

ANONYMOUS_ROLES: frozenset[str] = frozenset()


class UnsafeAuthStrategy(MetalcastError):
    """The settings would let callers in without proving who they are."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What one request offers to prove its identity."""

    headers: Headers
    #: the peer's address (None when unknown, e.g. a unix socket)
    client: str | None
    request_id: str
    #: what the request asks for: Keystone application credentials may be limited
    #: to some methods and paths (access rules)
    method: str = "GET"
    path: str = "/"


class Authenticator(Protocol):
    """One authentication strategy."""

    #: the strategy's name, as ``api.auth_strategy`` spells it
    name: str

    async def authenticate(self, credentials: Credentials) -> RequestContext | None:
        """The caller's context, or None when the request carries no credentials.

        Raises:
            Unauthorized: credentials were given but are not valid (wrong, expired,
                revoked, or not believed from this peer).
        """


def anonymous(request_id: str) -> RequestContext:
    """The context of a caller that proved nothing: no roles, no project."""
    return RequestContext(roles=ANONYMOUS_ROLES, authenticated=False, request_id=request_id)


def effective_strategy(settings: Settings) -> str:
    """``api.auth_strategy`` with "auto" resolved: "noauth" on loopback, else "builtin"."""
    strategy = settings.api.auth_strategy
    if strategy != "auto":
        return strategy
    return "noauth" if is_loopback(settings.api.host) else "builtin"


def check_startup(settings: Settings) -> str:
    """The effective strategy, if it is safe with these settings.

    Raises:
        UnsafeAuthStrategy: "noauth" beyond loopback; "header" beyond loopback with
            no ``api.trusted_proxies``; a trusted proxy that is not an address or network.
    """
    strategy = effective_strategy(settings)
    host = settings.api.host
    proxies = parse_networks(settings.api.trusted_proxies)
    if strategy == "noauth" and not is_loopback(host):
        raise UnsafeAuthStrategy(
            f"api.auth_strategy 'noauth' makes every caller an administrator, so it is "
            f"only allowed while the API listens on loopback, not on '{host}'. Set "
            f"api.auth_strategy to 'builtin' (metalcast's own users; the default beyond "
            f"loopback) or 'keystone', or api.host to 127.0.0.1."
        )
    if strategy == "header" and not is_loopback(host) and not proxies:
        raise UnsafeAuthStrategy(
            f"api.auth_strategy 'header' believes the X-Roles and X-Project-Id headers "
            f"of whoever sends them; on '{host}' that is anyone. List the addresses of "
            f"the authenticating proxies in api.trusted_proxies, or use 'builtin' or "
            f"'keystone'."
        )
    return strategy


def build_authenticator(settings: Settings, strategy: str, **deps: object) -> Authenticator:
    """The authenticator of ``strategy`` (from :func:`check_startup`).

    ``deps`` are what a strategy needs beyond the settings (for "builtin": ``db``,
    the :class:`~metalcast.db.engine.Database`, and ``cache``, the
    :class:`~metalcast.api.auth.cache.CredentialCache` the identity API drops
    revoked credentials from; "keystone" remembers confirmed tokens in ``cache`` too).
    """
    if strategy == "noauth":
        from metalcast.api.auth.noauth import NoAuth

        return NoAuth()
    if strategy == "header":
        from metalcast.api.auth.header import HeaderAuth

        return HeaderAuth(trusted=parse_networks(settings.api.trusted_proxies))
    if strategy == "keystone":
        from metalcast.api.auth.cache import CredentialCache
        from metalcast.api.auth.keystone import KeystoneAuth

        cache = deps.get("cache")
        return KeystoneAuth(
            settings.keystone, cache=cache if isinstance(cache, CredentialCache) else None
        )
    if strategy == "builtin":
        from metalcast.api.auth.builtin import BuiltinAuth
        from metalcast.api.auth.cache import CredentialCache
        from metalcast.db.engine import Database

        db, cache = deps.get("db"), deps.get("cache")
        if not isinstance(db, Database) or not isinstance(cache, CredentialCache):
            raise TypeError("the builtin strategy needs db= and cache=")
        return BuiltinAuth(db, cache=cache)
    raise UnsafeAuthStrategy(f"api.auth_strategy '{strategy}' is not available")


# ---------------------------------------------------------------------- addresses

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost``."""
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR networks, parsed.

    Raises:
        UnsafeAuthStrategy: an item is neither.
    """
    out: list[Network] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise UnsafeAuthStrategy(
                f"api.trusted_proxies: '{item}' is not an IP address or network (CIDR)"
            ) from None
    return tuple(out)


def peer_is_trusted(client: str | None, trusted: tuple[Network, ...]) -> bool:
    """Whether the peer ``client`` is loopback or inside one of ``trusted``."""
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return address.is_loopback or any(address in network for network in trusted)
