"""What a rule is, and the personas and composites the default check strings use.

Check strings are written in terms of a few named *personas* (``rule:system_reader``,
``rule:owner_member``, ...), each one of Ironic's building blocks (``SYSTEM_READER``,
``PROJECT_OWNER_MEMBER``, ...) as a rule of its own, so that the defaults read like
Ironic's ``ironic/common/policy.py`` and an operator can redefine a persona in one place.
The composite rules mean exactly what Ironic's composites (``SYSTEM_OR_PROJECT_READER``
and the like) mean.  Roles imply each other as in Keystone (admin > manager > member >
reader; :func:`metalcast.context.with_implied`), so ``role:member`` admits admins too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Subject(enum.Enum):
    """What a rule is checked against, which decides who calls ``enforce`` for it."""

    #: the caller alone: the endpoint decorator checks it before the handler runs
    CALLER = "caller"
    #: a node (``node.owner``, ``node.lessee``): checked once the node is loaded
    NODE = "node"
    #: an allocation (``allocation.owner``; ``node.*`` too for a node's allocation)
    ALLOCATION = "allocation"
    #: an API token (``token.user_id``)
    TOKEN = "token"
    #: a runbook (``runbook.owner``)
    RUNBOOK = "runbook"
    #: a listing: ``...:list_all`` or else ``...:list`` filtered to the caller's project
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule and its default."""

    name: str
    check: str
    description: str
    #: (method, path) pairs the rule guards
    operations: tuple[tuple[str, str], ...] = ()
    subject: Subject = Subject.CALLER
    #: a note for the docs (e.g. no route serves it yet)
    note: str = ""


# ---------------------------------------------------------------------- personas

_OWNER = "project_id:%(node.owner)s"
_LESSEE = "project_id:%(node.lessee)s"

#: Ironic's building blocks, one rule each (not guarding any route themselves)
BASE_RULES: tuple[Rule, ...] = (
    Rule(
        "service_role",
        "!",
        "A service project's 'service' role with system-wide rights. Ironic matches "
        "'role:service and project_name:<[DEFAULT]rbac_service_project_name>' only when "
        "rbac_service_role_elevated_access is on (off by default); metalcast has no such "
        "setting, so override this rule to turn it on, e.g. "
        "'role:service and project_name:service'.",
    ),
    Rule("system_admin", "role:admin and system_scope:all", "System-scoped administrators."),
    Rule(
        "system_member",
        "(role:member and system_scope:all) or rule:service_role",
        "System-scoped members (and administrators).",
    ),
    Rule(
        "system_reader",
        "(role:reader and system_scope:all) or (role:service and system_scope:all) "
        "or rule:service_role",
        "System-scoped readers (and members, administrators) and system-scoped services.",
    ),
    Rule("system_service", "role:service and system_scope:all", "System-scoped services."),
    Rule("owner_admin", f"role:admin and {_OWNER}", "Administrators of the node's owner."),
    Rule("owner_manager", f"role:manager and {_OWNER}", "Managers of the node's owner."),
    Rule("owner_member", f"role:member and {_OWNER}", "Members of the node's owner."),
    Rule("owner_reader", f"role:reader and {_OWNER}", "Readers of the node's owner."),
    Rule("owner_service", f"role:service and {_OWNER}", "Services of the node's owner."),
    Rule("lessee_admin", f"role:admin and {_LESSEE}", "Administrators of the node's lessee."),
    Rule("lessee_manager", f"role:manager and {_LESSEE}", "Managers of the node's lessee."),
    Rule(
        "project_member",
        f"role:member and ({_OWNER} or {_LESSEE})",
        "Members of the node's owner or lessee.",
    ),
    Rule(
        "project_reader",
        f"role:reader and ({_OWNER} or {_LESSEE})",
        "Readers of the node's owner or lessee.",
    ),
    Rule(
        "allocation_owner_member",
        "role:member and project_id:%(allocation.owner)s",
        "Members of the allocation's owner.",
    ),
    Rule(
        "allocation_owner_reader",
        "role:reader and project_id:%(allocation.owner)s",
        "Readers of the allocation's owner.",
    ),
    Rule(
        "runbook_owner_manager",
        "role:manager and project_id:%(runbook.owner)s",
        "Managers of the runbook's owner.",
    ),
    Rule(
        "runbook_owner_reader",
        "role:reader and project_id:%(runbook.owner)s",
        "Readers of the runbook's owner.",
    ),
    Rule("api_reader", "role:reader or role:service", "Any reader or service, in any scope."),
)

# Ironic's composite check strings, in terms of the personas above
SYSTEM_ADMIN = "rule:system_admin"
SYSTEM_MEMBER = "rule:system_member"
SYSTEM_READER = "rule:system_reader"
SYSTEM_OR_PROJECT_MEMBER = "rule:system_member or rule:project_member or rule:system_service"
SYSTEM_OR_PROJECT_READER = "rule:system_reader or rule:project_reader or rule:owner_service"
SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN = (
    "rule:system_member or rule:system_service or rule:owner_member or rule:lessee_admin "
    "or rule:lessee_manager or rule:owner_service"
)
SYSTEM_ADMIN_OR_OWNER_ADMIN = (
    "rule:system_admin or rule:system_service or rule:owner_admin or rule:owner_manager "
    "or rule:owner_service"
)
SYSTEM_MEMBER_OR_OWNER_ADMIN = (
    "rule:system_member or rule:system_service or rule:owner_admin or rule:owner_manager "
    "or rule:owner_service"
)
SYSTEM_MEMBER_OR_OWNER_MEMBER = (
    "rule:system_member or rule:system_service or rule:owner_member or rule:owner_service"
)
SYSTEM_OR_OWNER_READER = (
    "rule:system_reader or rule:system_service or rule:owner_reader or rule:owner_service"
)
SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN = (
    "rule:system_member or rule:system_service or rule:owner_admin or rule:owner_manager "
    "or rule:lessee_admin or rule:lessee_manager or rule:owner_service"
)
ALLOCATION_MEMBER = "rule:system_member or rule:allocation_owner_member"
ALLOCATION_READER = "rule:system_reader or rule:allocation_owner_reader"
ALLOCATION_CREATOR = "rule:system_member or role:member"
API_READER = "rule:api_reader"
# Ironic's runbook composites: any service, in any scope, passes them
RUNBOOK_ADMIN = "rule:system_member or rule:runbook_owner_manager or role:service"
RUNBOOK_READER = "rule:system_reader or rule:runbook_owner_reader or role:service"
RUNBOOK_CREATOR = "rule:system_member or role:manager or role:service"
#: an empty check string lets everyone in, even without credentials
PUBLIC = ""
#: the path of one node, which most rules guard something below
NODE_PATH = "/v1/nodes/{node}"


def group(
    kind: str, *rules: tuple[str, str, str, tuple[tuple[str, str], ...], Subject]
) -> tuple[Rule, ...]:
    """``baremetal:<kind>:<name>`` rules from (name, check, description, operations,
    subject) tuples."""
    return tuple(
        Rule(f"baremetal:{kind}:{name}", check, description, ops, subject)
        for name, check, description, ops, subject in rules
    )
