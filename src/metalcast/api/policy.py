"""Who may do what: the request's identity and the one policy check.

Every request builds a :class:`~metalcast.context.RequestContext` (:func:`build_context`)
and every endpoint passes through :func:`enforce` before it touches anything; endpoints
acting on one node call it again with the node as target.

Roles: ``admin`` may do everything.  ``member`` and ``reader`` belong to a project
and only see nodes that project owns or leases (and the ports and portgroups of those
nodes); someone else's node is "not found" to them.  A ``reader`` may only read.  A
``member`` of the owner project may act on and update the node; a member of the
lessee project may only read it and change its power and provision state.
A few actions are public (no role needed): version discovery and, as in Ironic,
the ramdisk agent's lookup and heartbeat, which therefore never return secrets.

Errors: ``Forbidden`` (403) when the role does not allow the action, ``NotFound``
(404) when the caller may not see the node.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from metalcast.context import RequestContext
from metalcast.errors import Forbidden, NotFound


class Scope(enum.Enum):
    """Which non-admin callers may perform an action on a target node."""

    PUBLIC = "anyone, even without a role"
    READ = "readers and members of the owner or lessee project"
    LESSEE = "members of the owner or lessee project"
    OWNER = "members of the owner project"
    ADMIN = "admins only"


#: action -> who may do it.  Actions not listed here are refused.
RULES: Mapping[str, Scope] = {
    "api:discovery": Scope.PUBLIC,
    # the ramdisk agent has no credentials (Ironic: baremetal:driver:ipa_lookup and
    # baremetal:node:ipa_heartbeat are public); neither returns secrets
    "driver:ipa_lookup": Scope.PUBLIC,
    "node:ipa_heartbeat": Scope.PUBLIC,
    "node:get": Scope.READ,
    "node:create": Scope.ADMIN,
    "node:update": Scope.OWNER,
    "node:update:owner": Scope.ADMIN,
    "node:delete": Scope.OWNER,
    "node:power": Scope.LESSEE,
    "node:provision": Scope.LESSEE,
    "node:maintenance": Scope.OWNER,
    "node:management": Scope.OWNER,
    "node:validate": Scope.READ,
    "node:traits": Scope.OWNER,
    "node:vif": Scope.OWNER,
    "node:vendor_passthru": Scope.OWNER,
    "node:console": Scope.OWNER,
    "node:raid": Scope.OWNER,
    "node:bios:get": Scope.READ,
    "port:get": Scope.READ,
    "port:write": Scope.OWNER,
    "portgroup:get": Scope.READ,
    "portgroup:write": Scope.OWNER,
    "volume:get": Scope.READ,
    "volume:write": Scope.OWNER,
    "chassis:get": Scope.READ,
    "chassis:write": Scope.ADMIN,
    "driver:get": Scope.READ,
    "driver:vendor_passthru": Scope.ADMIN,
    "conductor:get": Scope.READ,
    # metalcast's audit log (GET /v1/audit): meant for system readers; the closest
    # scope here is admins only, since READ would let any project reader see it all
    "audit:list": Scope.ADMIN,
}

_WRITERS = frozenset({"admin", "member"})
_READERS = frozenset({"admin", "member", "reader"})


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """What policy needs to know of a node."""

    uuid: str
    owner: str | None
    lessee: str | None


def enforce(context: RequestContext, action: str, *, node: NodeTarget | None = None) -> None:
    """Allow ``context`` to perform ``action`` (on ``node`` when given) or raise.

    Without ``node`` this checks the caller's role only; endpoints that act on a
    node call it again with the node once it is loaded.

    Raises:
        Forbidden: the caller's role does not allow the action.
        NotFound: the caller may not see ``node``.
    """
    scope = RULES.get(action, Scope.ADMIN)
    if scope is Scope.PUBLIC or context.is_admin:
        return
    if scope is Scope.ADMIN or not _has_role(context, scope):
        raise _forbidden(action)
    if node is None:
        return
    relation = _relation(context, node)
    if relation is None:
        raise NotFound(f"Node {node.uuid} could not be found.")
    if scope is Scope.OWNER and relation != "owner":
        raise _forbidden(action)


def project_scope(context: RequestContext) -> str | None:
    """The project a listing must be limited to (``None``: no limit, an admin).

    A non-admin without a project sees nothing: the empty string matches no node.
    """
    return None if context.is_admin else (context.project or "")


def _has_role(context: RequestContext, scope: Scope) -> bool:
    allowed = _READERS if scope is Scope.READ else _WRITERS
    return bool(context.roles & allowed)


def _relation(context: RequestContext, node: NodeTarget) -> str | None:
    if not context.project:
        return None
    if node.owner == context.project:
        return "owner"
    if node.lessee == context.project:
        return "lessee"
    return None


def _forbidden(action: str) -> Forbidden:
    return Forbidden(f"Access was denied to the following resource: baremetal:{action}")
