"""Typical callers, to say in plain words whom a rule lets in.

A caller is a role in a scope: the system, the project that owns a node (and its
allocation), the project that leases it, or some other project; or nobody at all
(no credentials).  docs/policy.md evaluates every rule for each of them, and the
tests hold the rules to the table of who may do what they expect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from metalcast.context import RequestContext, with_implied

OWNER_PROJECT = "owner-project"
LESSEE_PROJECT = "lessee-project"
OTHER_PROJECT = "other-project"


class Scope(enum.Enum):
    """Where a caller's role holds."""

    SYSTEM = "system"
    OWNER = "owner project"
    LESSEE = "lessee project"
    OTHER = "another project"
    NONE = "no credentials"


_PROJECTS = {Scope.OWNER: OWNER_PROJECT, Scope.LESSEE: LESSEE_PROJECT, Scope.OTHER: OTHER_PROJECT}


@dataclass(frozen=True, slots=True)
class Caller:
    """A role in a scope, e.g. the lessee project's manager."""

    scope: Scope
    #: the role granted (implied roles follow), None for anonymous callers
    role: str | None

    @property
    def name(self) -> str:
        """``system admin``, ``owner manager``, ``anonymous``."""
        if self.role is None:
            return "anonymous"
        return f"{self.scope.name.lower()} {self.role}"

    @property
    def user(self) -> str | None:
        """The caller's user id (one per caller)."""
        return None if self.role is None else self.name.replace(" ", "-")

    @property
    def project(self) -> str | None:
        """The project the caller's credentials are scoped to."""
        return _PROJECTS.get(self.scope)

    def context(self) -> RequestContext:
        """The request context such a caller has."""
        if self.role is None:
            return RequestContext(authenticated=False)
        return RequestContext(
            user=self.user,
            user_name=self.user,
            project=self.project,
            roles=with_implied({self.role}),
            system_scope="all" if self.scope is Scope.SYSTEM else None,
        )


#: roles, strongest first; each implies the ones after it (service stands apart)
LADDER = ("admin", "manager", "member", "reader")

CALLERS: tuple[Caller, ...] = (
    *(Caller(Scope.SYSTEM, role) for role in ("admin", "member", "reader", "service")),
    *(
        Caller(scope, role)
        for scope in (Scope.OWNER, Scope.LESSEE, Scope.OTHER)
        for role in (*LADDER, "service")
    ),
    Caller(Scope.NONE, None),
)

BY_NAME: dict[str, Caller] = {caller.name: caller for caller in CALLERS}
