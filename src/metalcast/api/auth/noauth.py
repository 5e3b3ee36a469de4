"""``noauth``: every caller is a system administrator (loopback only, checked at start)."""

from __future__ import annotations

from metalcast.api.auth import Credentials
from metalcast.context import RequestContext, with_implied

_ADMIN_ROLES = with_implied({"admin"})


class NoAuth:
    """Believes everyone; :func:`metalcast.api.auth.check_startup` keeps it on loopback."""

    name = "noauth"

    async def authenticate(self, credentials: Credentials) -> RequestContext:
        return RequestContext(
            roles=_ADMIN_ROLES, system_scope="all", request_id=credentials.request_id
        )
