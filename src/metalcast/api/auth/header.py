"""``header``: identity headers set by an authenticating proxy in front of the API.

The proxy (keystonemiddleware in a proxy, an SSO gateway) validates the caller and
sets Keystone's headers: ``X-User-Id``, ``X-User-Name``, ``X-Project-Id``,
``X-Project-Name``, ``X-Roles`` (comma-separated) and ``OpenStack-System-Scope: all``
for system-scoped callers.  They are believed only from loopback peers and from
``api.trusted_proxies``; from anyone else they are refused with 401, so a caller that
goes around the proxy gets nothing.
"""

from __future__ import annotations

from metalcast.api.auth import Credentials, Network, peer_is_trusted
from metalcast.context import RequestContext, with_implied
from metalcast.errors import Unauthorized

#: the headers that carry an identity under this strategy
IDENTITY_HEADERS = (
    "x-roles",
    "x-user-id",
    "x-user-name",
    "x-project-id",
    "x-tenant-id",
    "x-project-name",
    "openstack-system-scope",
)


class HeaderAuth:
    """Believes identity headers from trusted peers only."""

    name = "header"

    def __init__(self, *, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted

    async def authenticate(self, credentials: Credentials) -> RequestContext | None:
        headers = credentials.headers
        if not any(name in headers for name in IDENTITY_HEADERS):
            return None
        if not peer_is_trusted(credentials.client, self._trusted):
            raise Unauthorized(
                "Identity headers are only accepted from the authenticating proxy; "
                "authenticate through it."
            )
        roles = {r.strip().lower() for r in headers.get("x-roles", "").split(",") if r.strip()}
        scope = headers.get("openstack-system-scope", "").strip().lower() or None
        project = headers.get("x-project-id") or headers.get("x-tenant-id") or None
        return RequestContext(
            user=headers.get("x-user-id") or None,
            user_name=headers.get("x-user-name") or None,
            project=None if scope else project,
            project_name=None if scope else headers.get("x-project-name") or None,
            roles=with_implied(roles),
            system_scope="all" if scope == "all" else None,
            request_id=credentials.request_id,
        )
