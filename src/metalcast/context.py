"""Who is asking: the identity every API request carries down to the conductor.

A context is made once per request by the API's authentication
(:mod:`metalcast.api.auth`) and never changes.  Its fields are what Keystone puts in
a token and Ironic's policy reads: the user, the project the credentials are scoped
to *or* the system scope, and the roles held there (implied roles included: an
``admin`` is also a ``member`` and a ``reader``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

#: roles each role implies, as Keystone's default role inference rules do
IMPLIED_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "manager", "member", "reader"}),
    "manager": frozenset({"manager", "member", "reader"}),
    "member": frozenset({"member", "reader"}),
    "reader": frozenset({"reader"}),
    "service": frozenset({"service"}),
}


def with_implied(roles: frozenset[str] | set[str]) -> frozenset[str]:
    """``roles`` plus every role they imply (unknown roles are kept as they are)."""
    out: set[str] = set()
    for role in roles:
        out |= IMPLIED_ROLES.get(role, frozenset({role}))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller of one request.

    ``project`` is the id of the project the credentials are scoped to, None for
    system-scoped ones (``system_scope == "all"``) and for anonymous callers.
    ``roles`` drive policy.
    """

    user: str | None = None
    project: str | None = None
    roles: frozenset[str] = frozenset()
    system_scope: str | None = None
    user_name: str | None = None
    project_name: str | None = None
    #: False for a request that presented no credentials (public routes only)
    authenticated: bool = True
    #: when the credentials expire (a token's expiry, UTC); None: they do not
    #: (a password) or the strategy does not say
    expires_at: datetime | None = None
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")

    @property
    def is_admin(self) -> bool:
        """A system-scoped administrator: may see and do everything."""
        return "admin" in self.roles and self.system_scope == "all"

    @property
    def who(self) -> str:
        """How history records name the caller."""
        return self.user_name or self.user or self.project or "admin"

    def policy_credentials(self) -> dict[str, object]:
        """The caller as oslo.policy's ``creds`` (Ironic's keys)."""
        return {
            "user_id": self.user,
            "user_name": self.user_name,
            "project_id": self.project,
            "project_name": self.project_name,
            "roles": sorted(self.roles),
            "system_scope": self.system_scope,
        }


#: the identity of the conductor's own periodic work
SYSTEM = RequestContext(
    user="metalcast-conductor", roles=with_implied({"admin"}), system_scope="all"
)


# ------------------------------------------------------------- the acting caller

_CALLER: ContextVar[RequestContext | None] = ContextVar("metalcast_caller", default=None)


@contextmanager
def acting_for(context: RequestContext) -> Iterator[None]:
    """Mark ``context`` as the caller whose request this thread is serving (the
    API's handlers run inside it), so that what the conductor writes on its behalf,
    such as history rows, can name its project as well as its name (as Ironic reads
    oslo.context's thread-local).  A conductor serving requests from another process
    enters it with the context it received."""
    token = _CALLER.set(context)
    try:
        yield
    finally:
        _CALLER.reset(token)


def project_of(user: str | None) -> str | None:
    """The project of the caller this thread serves, when ``user`` is that caller's
    :attr:`RequestContext.who` (work done as someone else, e.g. the conductor's own,
    gets None)."""
    caller = _CALLER.get()
    if caller is None or user is None or caller.who != user:
        return None
    return caller.project


def current_request_id() -> str | None:
    """The request id of the caller this thread serves (None outside a request)."""
    caller = _CALLER.get()
    return None if caller is None else caller.request_id
