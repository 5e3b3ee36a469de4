"""Allocations, events, deploy templates, runbooks and inspection rules (Ironic's rules), and
metalcast's own:
identity, audit, version discovery."""

from __future__ import annotations

from metalcast.api.policy.rules.base import (
    ALLOCATION_CREATOR,
    ALLOCATION_MEMBER,
    ALLOCATION_READER,
    API_READER,
    NODE_PATH,
    PUBLIC,
    RUNBOOK_ADMIN,
    RUNBOOK_CREATOR,
    RUNBOOK_READER,
    SYSTEM_ADMIN,
    SYSTEM_MEMBER,
    SYSTEM_READER,
    Rule,
    Subject,
    group,
)

_N = NODE_PATH
_CALLER = Subject.CALLER
_LISTED = Subject.LIST


_A = "/v1/allocations/{allocation}"
_ALLOCATION = Subject.ALLOCATION
ALLOCATION_RULES = (
    *group(
        "allocation",
        (
            "get",
            ALLOCATION_READER,
            "Retrieve Allocation records",
            (("GET", _A),),
            _ALLOCATION,
        ),
        (
            "list",
            API_READER,
            "Retrieve multiple Allocation records, filtered by owner",
            (("GET", "/v1/allocations"),),
            _LISTED,
        ),
        (
            "list_all",
            SYSTEM_READER,
            "Retrieve multiple Allocation records",
            (("GET", "/v1/allocations"),),
            _LISTED,
        ),
        (
            "create",
            ALLOCATION_CREATOR,
            "Create Allocation records",
            (("POST", "/v1/allocations"),),
            _CALLER,
        ),
        (
            "create_restricted",
            SYSTEM_MEMBER,
            "Create Allocation records with a specific owner (another project's)",
            (("POST", "/v1/allocations"),),
            _CALLER,
        ),
        (
            "delete",
            ALLOCATION_MEMBER,
            "Delete Allocation records",
            (("DELETE", _A),),
            _ALLOCATION,
        ),
        (
            "update",
            ALLOCATION_MEMBER,
            "Change name and extra fields of an allocation",
            (("PATCH", _A),),
            _ALLOCATION,
        ),
    ),
    # Ironic checks baremetal:node:get (404) then baremetal:allocation:get/delete (403)
    # for a node's allocation; metalcast names the second check so that it can be
    # overridden apart, with the same default
    Rule(
        "baremetal:node:get_allocation",
        "rule:baremetal:allocation:get",
        "Retrieve a node's allocation (after baremetal:node:get on the node)",
        (("GET", f"{_N}/allocation"),),
        _ALLOCATION,
    ),
    Rule(
        "baremetal:node:delete_allocation",
        "rule:baremetal:allocation:delete",
        "Delete a node's allocation (after baremetal:node:get on the node)",
        (("DELETE", f"{_N}/allocation"),),
        _ALLOCATION,
    ),
)

EVENT_RULES = (
    Rule("baremetal:events:post", SYSTEM_ADMIN, "Post events", (("POST", "/v1/events"),)),
    Rule(
        "baremetal:events:get",
        API_READER,
        "Watch or list node events (each only for a node the caller may get: baremetal:node:get)",
        (("GET", "/v1/events"),),
    ),
)

_W = "/v1/webhooks"
WEBHOOK_RULES = (
    Rule(
        "baremetal:webhook:get",
        SYSTEM_ADMIN,
        "Retrieve webhooks and their deliveries",
        (("GET", _W), ("GET", f"{_W}/{{webhook}}"), ("GET", f"{_W}/{{webhook}}/deliveries")),
    ),
    Rule("baremetal:webhook:create", SYSTEM_ADMIN, "Create a webhook", (("POST", _W),)),
    Rule(
        "baremetal:webhook:delete",
        SYSTEM_ADMIN,
        "Delete a webhook",
        (("DELETE", f"{_W}/{{webhook}}"),),
    ),
)

_T = "/v1/deploy_templates"
DEPLOY_TEMPLATE_RULES = group(
    "deploy_template",
    (
        "get",
        SYSTEM_READER,
        "Retrieve Deploy Template records",
        (("GET", _T), ("GET", f"{_T}/{{deploy_template}}")),
        _CALLER,
    ),
    ("create", SYSTEM_ADMIN, "Create Deploy Template records", (("POST", _T),), _CALLER),
    (
        "delete",
        SYSTEM_ADMIN,
        "Delete Deploy Template records",
        (("DELETE", f"{_T}/{{deploy_template}}"),),
        _CALLER,
    ),
    (
        "update",
        SYSTEM_ADMIN,
        "Update Deploy Template records",
        (("PATCH", f"{_T}/{{deploy_template}}"),),
        _CALLER,
    ),
)

_RB = "/v1/runbooks"
_RUNBOOK = Subject.RUNBOOK
RUNBOOK_RULES = group(
    "runbook",
    (
        "get",
        RUNBOOK_READER,
        "Retrieve a single runbook record (a public runbook: anyone who may list)",
        (("GET", f"{_RB}/{{runbook}}"), ("GET", f"{_RB}/{{runbook}}/traits")),
        _RUNBOOK,
    ),
    (
        "list",
        API_READER,
        "Retrieve multiple runbook records, filtered by the caller's project "
        "(its own and the public ones)",
        (("GET", _RB),),
        _LISTED,
    ),
    ("list_all", SYSTEM_READER, "Retrieve all runbook records", (("GET", _RB),), _LISTED),
    ("create", RUNBOOK_CREATOR, "Create Runbook records", (("POST", _RB),), _CALLER),
    (
        "delete",
        RUNBOOK_ADMIN,
        "Delete a runbook record",
        (("DELETE", f"{_RB}/{{runbook}}"),),
        _RUNBOOK,
    ),
    (
        "update",
        RUNBOOK_ADMIN,
        "Update a runbook record (and, from 1.112, its traits)",
        (
            ("PATCH", f"{_RB}/{{runbook}}"),
            ("PUT", f"{_RB}/{{runbook}}/traits"),
            ("PUT", f"{_RB}/{{runbook}}/traits/{{trait}}"),
            ("DELETE", f"{_RB}/{{runbook}}/traits"),
            ("DELETE", f"{_RB}/{{runbook}}/traits/{{trait}}"),
        ),
        _RUNBOOK,
    ),
    (
        "update:public",
        SYSTEM_MEMBER,
        "Set and unset a runbook as public",
        (("PATCH", f"{_RB}/{{runbook}}"),),
        _RUNBOOK,
    ),
    (
        "update:owner",
        SYSTEM_MEMBER,
        "Set and unset the owner of a runbook",
        (("PATCH", f"{_RB}/{{runbook}}"),),
        _RUNBOOK,
    ),
    (
        "use",
        RUNBOOK_ADMIN,
        "Allowed to use a runbook for node operations (clean, service; after "
        "baremetal:node:set_provision_state on the node)",
        (("PUT", f"{_N}/states/provision"),),
        _RUNBOOK,
    ),
)

_R = "/v1/inspection_rules"
INSPECTION_RULE_RULES = group(
    "inspection_rule",
    (
        "get",
        SYSTEM_READER,
        "Retrieve Inspection Rule records",
        (("GET", _R), ("GET", f"{_R}/{{rule}}")),
        _CALLER,
    ),
    ("create", SYSTEM_ADMIN, "Create Inspection Rule records", (("POST", _R),), _CALLER),
    (
        "delete",
        SYSTEM_ADMIN,
        "Delete Inspection Rule records",
        (("DELETE", _R), ("DELETE", f"{_R}/{{rule}}")),
        _CALLER,
    ),
    (
        "update",
        SYSTEM_ADMIN,
        "Update Inspection Rule records",
        (("PATCH", f"{_R}/{{rule}}"),),
        _CALLER,
    ),
)

_IDENTITY = "/v1/auth"
_TOKEN = Subject.TOKEN


def _identity(kind: str, path: str) -> tuple[Rule, ...]:
    item = f"{path}/{{{kind}}}"
    return (
        Rule(f"identity:{kind}:get", SYSTEM_READER, f"Show a {kind}", (("GET", item),)),
        Rule(f"identity:{kind}:list", SYSTEM_READER, f"List {kind}s", (("GET", path),)),
        Rule(f"identity:{kind}:create", SYSTEM_ADMIN, f"Create a {kind}", (("POST", path),)),
        Rule(f"identity:{kind}:update", SYSTEM_ADMIN, f"Update a {kind}", (("PATCH", item),)),
        Rule(f"identity:{kind}:delete", SYSTEM_ADMIN, f"Delete a {kind}", (("DELETE", item),)),
    )


_ROLES = (
    f"{_IDENTITY}/projects/{{project}}/users/{{user}}/roles/{{role}}",
    f"{_IDENTITY}/system/users/{{user}}/roles/{{role}}",
)
METALCAST_RULES = (
    Rule(
        "api:discovery",
        PUBLIC,
        "Version discovery: the API versions, the v1 resources and the OpenAPI description",
        (("GET", "/"), ("GET", "/v1"), ("GET", "/v1/openapi.json")),
    ),
    Rule(
        "identity:token:create",
        "@",
        "Create an API token for oneself (anyone with valid credentials who is one of "
        "metalcast's own users: the endpoint refuses everyone else)",
        ((("POST", f"{_IDENTITY}/tokens")),),
    ),
    Rule(
        "identity:token:list",
        "rule:system_admin or user_id:%(token.user_id)s",
        "List or show API tokens: one's own; a system admin, everyone's",
        (("GET", f"{_IDENTITY}/tokens"), ("GET", f"{_IDENTITY}/tokens/{{token}}")),
        _TOKEN,
    ),
    Rule(
        "identity:token:delete",
        "rule:system_admin or user_id:%(token.user_id)s",
        "Revoke an API token: one's own; a system admin, anyone's",
        (("DELETE", f"{_IDENTITY}/tokens/{{token}}"),),
        _TOKEN,
    ),
    *_identity("user", f"{_IDENTITY}/users"),
    *_identity("project", f"{_IDENTITY}/projects"),
    Rule(
        "identity:whoami",
        "@",
        "Show the caller's own identity, scope and roles (anyone with valid credentials: "
        "the API answers 401 without them before any rule)",
        (("GET", f"{_IDENTITY}/whoami"),),
    ),
    Rule(
        "identity:role:list",
        SYSTEM_READER,
        "List role assignments",
        (("GET", f"{_IDENTITY}/role_assignments"),),
    ),
    Rule(
        "identity:role:assign",
        SYSTEM_ADMIN,
        "Grant a user a role on a project or the system",
        tuple(("PUT", path) for path in _ROLES),
    ),
    Rule(
        "identity:role:unassign",
        SYSTEM_ADMIN,
        "Take a user's role on a project or the system",
        tuple(("DELETE", path) for path in _ROLES),
    ),
    Rule("audit:list", SYSTEM_READER, "Read the audit log", (("GET", "/v1/audit"),)),
    Rule(
        "metrics:get",
        SYSTEM_READER,
        "Read the Prometheus metrics (unless metrics.public serves them to anyone)",
        (("GET", "/metrics"),),
    ),
)

#: every rule an endpoint may enforce, in the order the docs list them
