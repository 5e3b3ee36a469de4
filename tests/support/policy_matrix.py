"""Who may do what through metalcast's API: the persona matrix, as data.

Written from Ironic's secure-RBAC defaults (``ironic/common/policy.py`` and the
controllers that apply them), independently of the check strings in
``metalcast.api.policy.rules``, so that the tests comparing the two can fail.

- :data:`EXPECTED`: rule -> the personas it lets in, for a node owned by the owner
  project and leased to the lessee project (an allocation the owner project owns, a
  token of the caller's own).
- :data:`EXPECTED_ON_OWN_ALLOCATION`: what a listing checks on each allocation it
  shows, an allocation of the caller's own project.
- :data:`ACTIONS`: every route metalcast serves, as a request with placeholders
  (``{node}``, ``{port}``, ...) and the rules Ironic checks for it, in order:
  :data:`BAREMETAL_ACTIONS` (Ironic's API) and :data:`IDENTITY_ACTIONS` (metalcast's
  users, projects, roles and tokens, which need the ``builtin`` strategy's users).
- :data:`MATRIX`: persona -> action -> expected :class:`Outcome`, derived from the two
  the way Ironic answers: no right to see the node, 404; sees it but the rule
  refuses, 403; no credentials, 401.
- :func:`visible_nodes`, :func:`redacted_fields`, :data:`SHOWS_TARGET_PROPERTIES`:
  what listings and node documents show each persona.

Nothing here talks to a server: ``tests/unit/api/test_policy_routes.py`` runs the
matrix through the ASGI app (header identities; builtin users for the identity API),
``tests/integration/clients/test_policy_clients.py`` through a real server with real
users, openstacksdk and the ``baremetal`` CLI, and
``tests/integration/keystone/test_keystone_policy.py`` with Keystone tokens
(:mod:`policy_world` builds the objects the actions name, for all three).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from metalcast.api.policy.callers import (
    BY_NAME as CALLERS,
)
from metalcast.api.policy.callers import (
    LESSEE_PROJECT,
    OTHER_PROJECT,
    OWNER_PROJECT,
    Caller,
)

#: the personas every rule and route is tried with
PERSONAS: tuple[Caller, ...] = tuple(
    CALLERS[name]
    for name in (
        "system admin",
        "system member",
        "system reader",
        "system service",
        "owner admin",
        "owner manager",
        "owner member",
        "owner reader",
        "owner service",
        "lessee admin",
        "lessee manager",
        "lessee member",
        "lessee reader",
        "other admin",
        "other member",
        "anonymous",
    )
)
NAMES = frozenset(p.name for p in PERSONAS)


def _ladder(scope: str, lowest: str) -> frozenset[str]:
    """The personas of ``scope`` holding ``lowest`` or a role above it."""
    ladder = ("admin", "manager", "member", "reader")
    if scope == "system":
        ladder = ("admin", "member", "reader")
    roles = ladder[: ladder.index(lowest) + 1]
    return frozenset(f"{scope} {role}" for role in roles) & NAMES


NOBODY: frozenset[str] = frozenset()
SYSTEM_ADMIN = _ladder("system", "admin")
SYSTEM_MEMBER = _ladder("system", "member")
SYSTEM_READER = _ladder("system", "reader") | {"system service"}
SYSTEM_SERVICE = frozenset({"system service"})
OWNER_ADMIN = _ladder("owner", "admin")
OWNER_MANAGER = _ladder("owner", "manager")
OWNER_MEMBER = _ladder("owner", "member")
OWNER_READER = _ladder("owner", "reader")
OWNER_SERVICE = frozenset({"owner service"})
LESSEE_ADMIN = _ladder("lessee", "admin")
LESSEE_MANAGER = _ladder("lessee", "manager")
LESSEE_MEMBER = _ladder("lessee", "member")
LESSEE_READER = _ladder("lessee", "reader")
ANY_ADMIN = frozenset(p for p in NAMES if p.endswith(" admin"))
ANY_SERVICE = frozenset(p for p in NAMES if p.endswith(" service"))
ANY_MEMBER = frozenset(p for p in NAMES if p.split(" ")[-1] in ("admin", "manager", "member"))
ANY_READER = frozenset(p for p in NAMES if p != "anonymous" and not p.endswith(" service"))
EVERYONE = NAMES
AUTHENTICATED = NAMES - {"anonymous"}

# Ironic's composites (ironic/common/policy.py), as personas
SYSTEM_OR_PROJECT_READER = SYSTEM_READER | OWNER_READER | LESSEE_READER | OWNER_SERVICE
SYSTEM_OR_PROJECT_MEMBER = SYSTEM_MEMBER | OWNER_MEMBER | LESSEE_MEMBER | SYSTEM_SERVICE
SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN = (
    SYSTEM_MEMBER | SYSTEM_SERVICE | OWNER_MEMBER | LESSEE_MANAGER | OWNER_SERVICE
)
SYSTEM_ADMIN_OR_OWNER_ADMIN = SYSTEM_ADMIN | SYSTEM_SERVICE | OWNER_MANAGER | OWNER_SERVICE
SYSTEM_MEMBER_OR_OWNER_ADMIN = SYSTEM_MEMBER | SYSTEM_SERVICE | OWNER_MANAGER | OWNER_SERVICE
SYSTEM_MEMBER_OR_OWNER_MEMBER = SYSTEM_MEMBER | SYSTEM_SERVICE | OWNER_MEMBER | OWNER_SERVICE
SYSTEM_OR_OWNER_READER = SYSTEM_READER | OWNER_READER | OWNER_SERVICE
SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN = (
    SYSTEM_MEMBER | SYSTEM_SERVICE | OWNER_MANAGER | LESSEE_MANAGER | OWNER_SERVICE
)
API_READER = ANY_READER | ANY_SERVICE
ALLOCATION_READER = SYSTEM_READER | OWNER_READER
ALLOCATION_MEMBER = SYSTEM_MEMBER | OWNER_MEMBER
ANY_MANAGER = frozenset(p for p in NAMES if p.split(" ")[-1] in ("admin", "manager"))
# a runbook owned by the owner project; any service, in any scope, passes these
RUNBOOK_READER = SYSTEM_READER | OWNER_READER | ANY_SERVICE
RUNBOOK_ADMIN = SYSTEM_MEMBER | OWNER_MANAGER | ANY_SERVICE
RUNBOOK_CREATOR = SYSTEM_MEMBER | ANY_MANAGER | ANY_SERVICE

#: rule -> the personas it lets in (node owned by the owner project and leased to
#: the lessee project; allocation owned by the owner project; the caller's own token)
EXPECTED: dict[str, frozenset[str]] = {
    "baremetal:node:create": SYSTEM_ADMIN | SYSTEM_SERVICE,
    "baremetal:node:create:self_owned_node": ANY_ADMIN | ANY_SERVICE,
    "baremetal:node:list": API_READER,
    "baremetal:node:list_all": SYSTEM_READER,
    "baremetal:node:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:get:filter_threshold": SYSTEM_READER,
    "baremetal:node:get:last_error": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:reservation": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:driver_internal_info": SYSTEM_OR_OWNER_READER,
    "baremetal:node:get:driver_info": SYSTEM_OR_OWNER_READER,
    "baremetal:node:update:driver_info": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:properties": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:chassis_uuid": SYSTEM_ADMIN,
    "baremetal:node:update:instance_uuid": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:lessee": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:owner": SYSTEM_MEMBER,
    "baremetal:node:update:driver_interfaces": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:update:network_data": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:conductor_group": SYSTEM_MEMBER,
    "baremetal:node:update:name": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:retired": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:update:shard": SYSTEM_ADMIN,
    "baremetal:node:update:parent_node": SYSTEM_MEMBER,
    "baremetal:node:update:disable_power_off": SYSTEM_ADMIN,
    "baremetal:shards:get": SYSTEM_READER,
    "baremetal:node:update": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_extra": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:update_instance_info": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:update_owner_provisioned": SYSTEM_ADMIN,
    "baremetal:node:disable_cleaning": SYSTEM_ADMIN,
    "baremetal:node:delete": SYSTEM_ADMIN,
    "baremetal:node:delete:self_owned_node": OWNER_ADMIN,
    "baremetal:node:validate": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_maintenance": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:clear_maintenance": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:get_boot_device": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:set_boot_device": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:inject_nmi": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:vmedia:attach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:vmedia:detach": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:vmedia:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:get_indicator_state": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:set_indicator_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:get_states": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:set_power_state": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_boot_mode": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_secure_boot": SYSTEM_OR_PROJECT_MEMBER,
    "baremetal:node:set_provision_state": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_provision_state:clean_steps": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_provision_state:service_steps": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:set_raid_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:get_console": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:set_console_state": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "baremetal:node:vif:list": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:vif:attach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:vif:detach": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:node:traits:list": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:traits:set": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:traits:delete": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:node:bios:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:firmware:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:node:history:get": SYSTEM_OR_OWNER_READER,
    "baremetal:node:inventory:get": SYSTEM_OR_OWNER_READER,
    "baremetal:node:vendor_passthru": SYSTEM_ADMIN,
    "baremetal:node:ipa_heartbeat": EVERYONE,
    "baremetal:port:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:port:list": API_READER,
    "baremetal:port:list_all": SYSTEM_READER,
    "baremetal:port:create": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:delete": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:port:update": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:portgroup:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:portgroup:create": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:portgroup:delete": SYSTEM_ADMIN_OR_OWNER_ADMIN,
    "baremetal:portgroup:update": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "baremetal:portgroup:list": API_READER,
    "baremetal:portgroup:list_all": SYSTEM_READER,
    "baremetal:chassis:get": SYSTEM_READER,
    "baremetal:chassis:create": SYSTEM_ADMIN,
    "baremetal:chassis:delete": SYSTEM_ADMIN,
    "baremetal:chassis:update": SYSTEM_MEMBER,
    "baremetal:driver:get": SYSTEM_READER,
    "baremetal:driver:get_properties": SYSTEM_READER,
    "baremetal:driver:get_raid_logical_disk_properties": SYSTEM_READER,
    "baremetal:driver:vendor_passthru": SYSTEM_ADMIN,
    "baremetal:driver:ipa_lookup": EVERYONE,
    "baremetal:driver:ipa_continue_inspection": EVERYONE,
    "baremetal:volume:list_all": SYSTEM_READER,
    "baremetal:volume:list": API_READER,
    "baremetal:volume:get": SYSTEM_OR_PROJECT_READER,
    "baremetal:volume:create": SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
    "baremetal:volume:delete": SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
    "baremetal:volume:update": SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    "baremetal:volume:view_target_properties": SYSTEM_READER | ANY_ADMIN,
    "baremetal:conductor:get": SYSTEM_READER,
    "baremetal:allocation:get": ALLOCATION_READER,
    "baremetal:allocation:list": API_READER,
    "baremetal:allocation:list_all": SYSTEM_READER,
    "baremetal:allocation:create": SYSTEM_MEMBER | ANY_MEMBER,
    "baremetal:allocation:create_restricted": SYSTEM_MEMBER,
    "baremetal:allocation:delete": ALLOCATION_MEMBER,
    "baremetal:allocation:update": ALLOCATION_MEMBER,
    "baremetal:node:get_allocation": ALLOCATION_READER,
    "baremetal:node:delete_allocation": ALLOCATION_MEMBER,
    "baremetal:events:post": SYSTEM_ADMIN,
    # metalcast's node event stream: any reader; each event then only for a node the
    # caller may get (tests/unit/api/test_node_events.py)
    "baremetal:events:get": API_READER,
    # metalcast's webhooks: system administrators only
    "baremetal:webhook:get": SYSTEM_ADMIN,
    "baremetal:webhook:create": SYSTEM_ADMIN,
    "baremetal:webhook:delete": SYSTEM_ADMIN,
    "baremetal:deploy_template:get": SYSTEM_READER,
    "baremetal:deploy_template:create": SYSTEM_ADMIN,
    "baremetal:deploy_template:update": SYSTEM_ADMIN,
    "baremetal:deploy_template:delete": SYSTEM_ADMIN,
    "baremetal:runbook:get": RUNBOOK_READER,
    "baremetal:runbook:list": API_READER,
    "baremetal:runbook:list_all": SYSTEM_READER,
    "baremetal:runbook:create": RUNBOOK_CREATOR,
    "baremetal:runbook:update": RUNBOOK_ADMIN,
    "baremetal:runbook:update:public": SYSTEM_MEMBER,
    "baremetal:runbook:update:owner": SYSTEM_MEMBER,
    "baremetal:runbook:delete": RUNBOOK_ADMIN,
    "baremetal:runbook:use": RUNBOOK_ADMIN,
    "baremetal:inspection_rule:get": SYSTEM_READER,
    "baremetal:inspection_rule:create": SYSTEM_ADMIN,
    "baremetal:inspection_rule:update": SYSTEM_ADMIN,
    "baremetal:inspection_rule:delete": SYSTEM_ADMIN,
    "api:discovery": EVERYONE,
    # "@": the API answers 401 to a caller without credentials before any rule
    "identity:token:create": EVERYONE,
    "identity:whoami": EVERYONE,
    "identity:role:list": SYSTEM_READER,
    "identity:token:list": AUTHENTICATED,
    "identity:token:delete": AUTHENTICATED,
    "identity:user:get": SYSTEM_READER,
    "identity:user:list": SYSTEM_READER,
    "identity:user:create": SYSTEM_ADMIN,
    "identity:user:update": SYSTEM_ADMIN,
    "identity:user:delete": SYSTEM_ADMIN,
    "identity:project:get": SYSTEM_READER,
    "identity:project:list": SYSTEM_READER,
    "identity:project:create": SYSTEM_ADMIN,
    "identity:project:update": SYSTEM_ADMIN,
    "identity:project:delete": SYSTEM_ADMIN,
    "identity:role:assign": SYSTEM_ADMIN,
    "identity:role:unassign": SYSTEM_ADMIN,
    "audit:list": SYSTEM_READER,
    "metrics:get": SYSTEM_READER,
}
#: token rules on someone else's token
EXPECTED_ON_OTHERS_TOKEN = {
    "identity:token:list": SYSTEM_ADMIN,
    "identity:token:delete": SYSTEM_ADMIN,
}
#: rules checked without any object where Ironic checks them so
EXPECTED_WITHOUT_TARGET = {
    # GET /v1/volume and /v1/nodes/{node}/volume: no node, only system readers pass
    "baremetal:volume:get": SYSTEM_READER,
}
#: rules checked on an allocation of the caller's own project: Ironic's allocation
#: listing checks baremetal:allocation:get on every allocation it shows, and a
#: project's service role, which may list, may not get (a system service may)
EXPECTED_ON_OWN_ALLOCATION = {
    "baremetal:allocation:get": (ANY_READER | SYSTEM_SERVICE),
}


# ------------------------------------------------------------------------ routes


class Outcome(enum.Enum):
    """What a persona gets from an action."""

    ALLOWED = "allowed"
    #: the object's node is hidden as Ironic hides a node that does not exist there
    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    UNAUTHORIZED = 401


#: a requirement: the rule (or any of several rules) that must let the persona in;
#: ``@caller`` after a rule name: checked without the node (before any lookup);
#: ``@others`` after a token rule: on someone else's token; ``@own``: checked on an
#: allocation of the caller's own project
Requirement = str | tuple[str, ...]

#: the only paths a caller without credentials reaches (version discovery, the
#: ramdisk agent's lookup and heartbeat, as in Ironic, and the OpenAPI description):
#: everywhere else 401 comes before any rule, even a rule that lets everyone in ("@")
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/v1",
        "/v1/lookup",
        "/v1/heartbeat",
        "/v1/heartbeat/{node}",
        "/v1/continue_inspection",
        "/v1/openapi.json",
    }
)


@dataclass(frozen=True)
class Action:
    """One request, and the rules Ironic checks for it."""

    name: str
    method: str
    #: with placeholders: {node}, {port}, {portgroup}, {connector}, {target},
    #: {chassis}, {event}, {conductor}, {user}, {project}, {token} (someone else's),
    #: {own_token}, {allocation}, {allocated} (a node with an allocation), {template},
    #: {rule} (an inspection rule), {runbook} (the owner project's runbook),
    #: {unique} (a value of its own for every request); in a body also
    #: {owner_project}, {unique_int}, {unique_mac}, {unique_uuid}
    path: str
    #: checked in order; the first refusal decides
    requires: tuple[Requirement, ...]
    body: Any = None
    #: the rule whose refusal hides the object (404); None: no object is looked up
    hides: str | None = "baremetal:node:get"
    #: what a persona the ``hides`` rule refuses gets
    hidden_as: Outcome = Outcome.NOT_FOUND
    #: the status of a success
    status: int = 200
    #: what the request needs of its own (it changes or deletes it): see ``FRESH``
    fresh: str | None = None


def _node(name: str, method: str, path: str, rule: str, **kw: Any) -> Action:
    return Action(name, method, f"/v1/nodes/{{node}}{path}", (rule,), **kw)


def _patch(field_path: str, value: Any, rule: str, op: str = "add") -> Action:
    return Action(
        f"PATCH node {field_path}",
        "PATCH",
        "/v1/nodes/{node}",
        (rule,),
        body=[{"op": op, "path": field_path, "value": value}],
        fresh="node",
    )


_LIST = {
    kind: (f"baremetal:{kind}:list_all", f"baremetal:{kind}:list")
    for kind in ("node", "port", "portgroup", "volume", "allocation", "runbook")
}
_N = "baremetal:node:"

NODE_ACTIONS: tuple[Action, ...] = (
    Action("list nodes", "GET", "/v1/nodes", (_LIST["node"],), hides=None),
    Action("list nodes detail", "GET", "/v1/nodes/detail", (_LIST["node"],), hides=None),
    Action(
        "create node",
        "POST",
        "/v1/nodes",
        ((f"{_N}create:self_owned_node", f"{_N}create"),),
        body={"driver": "fake-hardware"},
        hides=None,
        status=201,
    ),
    _node("show node", "GET", "", f"{_N}get"),
    Action("node children", "GET", "/v1/nodes/{node}/children", (f"{_N}get", _LIST["node"])),
    _patch("/extra/a", 1, f"{_N}update_extra"),
    _patch("/instance_info/image_source", "http://images/x.qcow2", f"{_N}update_instance_info"),
    _patch("/driver_info/fake_info", "x", f"{_N}update:driver_info"),
    _patch("/properties/cpus", 4, f"{_N}update:properties"),
    _patch("/chassis_uuid", "{chassis}", f"{_N}update:chassis_uuid"),
    _patch("/instance_uuid", "{unique_uuid}", f"{_N}update:instance_uuid"),
    _patch("/lessee", "someone-else", f"{_N}update:lessee", op="replace"),
    _patch("/owner", "{owner_project}", f"{_N}update:owner", op="replace"),
    _patch("/driver", "fake-hardware", f"{_N}update:driver_interfaces", op="replace"),
    _patch("/network_interface", "noop", f"{_N}update:driver_interfaces", op="replace"),
    _patch("/network_data", {}, f"{_N}update:network_data"),
    _patch("/conductor_group", "", f"{_N}update:conductor_group", op="replace"),
    _patch("/name", "renamed-{unique}", f"{_N}update:name"),
    _patch("/retired", True, f"{_N}update:retired", op="replace"),
    _patch("/shard", "shard-{unique}", f"{_N}update:shard"),
    _patch("/parent_node", None, f"{_N}update:parent_node", op="replace"),
    _patch("/disable_power_off", False, f"{_N}update:disable_power_off", op="replace"),
    _patch("/instance_name", "vm-{unique}", f"{_N}update_instance_info"),
    _patch("/description", "rack 4", f"{_N}update"),
    _patch("/automated_clean", False, f"{_N}disable_cleaning", op="replace"),
    Action(
        "delete node",
        "DELETE",
        "/v1/nodes/{node}",
        ((f"{_N}delete", f"{_N}delete:self_owned_node"),),
        status=204,
        fresh="node",
    ),
    _node("states", "GET", "/states", f"{_N}get_states"),
    _node(
        "power",
        "PUT",
        "/states/power",
        f"{_N}set_power_state",
        body={"target": "power on"},
        status=202,
        fresh="node",
    ),
    _node(
        "boot mode",
        "PUT",
        "/states/boot_mode",
        f"{_N}set_boot_mode",
        body={"target": "bios"},
        status=202,
        fresh="node",
    ),
    _node(
        "secure boot",
        "PUT",
        "/states/secure_boot",
        f"{_N}set_secure_boot",
        body={"target": False},
        status=202,
        fresh="node",
    ),
    _node(
        "provision",
        "PUT",
        "/states/provision",
        f"{_N}set_provision_state",
        body={"target": "manage"},
        status=202,
        fresh="node",
    ),
    _node("get console", "GET", "/states/console", f"{_N}get_console"),
    _node("console log", "GET", "/console/log", f"{_N}get_console"),
    Action(
        "get console (tempest's path)",
        "GET",
        "/v1/nodes/states/console/{node}",
        (f"{_N}get_console",),
    ),
    _node(
        "set console",
        "PUT",
        "/states/console",
        f"{_N}set_console_state",
        body={"enabled": True},
        status=202,
        fresh="node",
    ),
    _node("raid", "PUT", "/states/raid", f"{_N}set_raid_state", body={}, status=204),
    _node(
        "set maintenance",
        "PUT",
        "/maintenance",
        f"{_N}set_maintenance",
        body={"reason": "x"},
        status=202,
        fresh="node",
    ),
    _node("clear maintenance", "DELETE", "/maintenance", f"{_N}clear_maintenance", status=202),
    _node("validate", "GET", "/validate", f"{_N}validate"),
    _node("get boot device", "GET", "/management/boot_device", f"{_N}get_boot_device"),
    _node(
        "supported boot devices",
        "GET",
        "/management/boot_device/supported",
        f"{_N}get_boot_device",
    ),
    _node(
        "set boot device",
        "PUT",
        "/management/boot_device",
        f"{_N}set_boot_device",
        body={"boot_device": "pxe"},
        status=204,
    ),
    _node("inject nmi", "PUT", "/management/inject_nmi", f"{_N}inject_nmi", body={}, status=204),
    _node(
        "attach vmedia",
        "POST",
        "/vmedia",
        f"{_N}vmedia:attach",
        body={"device_type": "cdrom", "image_url": "http://192.0.2.1/boot.iso"},
        status=204,
    ),
    _node("detach vmedia", "DELETE", "/vmedia", f"{_N}vmedia:detach", status=204),
    _node("get vmedia", "GET", "/vmedia", f"{_N}vmedia:get"),
    _node("list indicators", "GET", "/management/indicators", f"{_N}get_indicator_state"),
    _node("get indicator", "GET", "/management/indicators/led@system", f"{_N}get_indicator_state"),
    _node(
        "set indicator",
        "PUT",
        "/management/indicators/led@system",
        f"{_N}set_indicator_state",
        body={"state": "blinking"},
        status=204,
    ),
    _node("list traits", "GET", "/traits", f"{_N}traits:list"),
    _node(
        "set traits",
        "PUT",
        "/traits",
        f"{_N}traits:set",
        body={"traits": ["CUSTOM_A"]},
        status=204,
    ),
    _node("add trait", "PUT", "/traits/CUSTOM_B", f"{_N}traits:set", status=204),
    _node("remove traits", "DELETE", "/traits", f"{_N}traits:delete", status=204),
    _node(
        "remove trait",
        "DELETE",
        "/traits/CUSTOM_A",
        f"{_N}traits:delete",
        status=204,
        fresh="node with trait",
    ),
    _node("bios", "GET", "/bios", f"{_N}bios:get"),
    _node("bios setting", "GET", "/bios/hyperthreading", f"{_N}bios:get"),
    _node("firmware", "GET", "/firmware", f"{_N}firmware:get"),
    _node("list vifs", "GET", "/vifs", f"{_N}vif:list"),
    _node(
        "attach vif",
        "POST",
        "/vifs",
        f"{_N}vif:attach",
        body={"id": "vif-{unique}"},
        status=204,
        fresh="node with port",
    ),
    _node(
        "detach vif",
        "DELETE",
        "/vifs/vif-1",
        f"{_N}vif:detach",
        status=204,
        fresh="node with vif",
    ),
    _node("history", "GET", "/history", f"{_N}history:get"),
    # the walked node was never inspected: whoever may read it gets Ironic's 404
    _node("inventory", "GET", "/inventory", f"{_N}inventory:get", status=404),
    _node("history event", "GET", "/history/{event}", f"{_N}history:get"),
    _node("node vendor methods", "GET", "/vendor_passthru/methods", f"{_N}vendor_passthru"),
    _node(
        "node vendor passthru",
        "POST",
        "/vendor_passthru?method=get_state",
        f"{_N}vendor_passthru",
        body={},
    ),
    _node(
        "node vendor passthru by path",
        "POST",
        "/vendor_passthru/get_state",
        f"{_N}vendor_passthru",
        body={},
    ),
)

PORT_ACTIONS: tuple[Action, ...] = (
    Action("list ports", "GET", "/v1/ports", (_LIST["port"],), hides=None),
    Action("list ports detail", "GET", "/v1/ports/detail", (_LIST["port"],), hides=None),
    Action("node ports", "GET", "/v1/nodes/{node}/ports", (_LIST["port"],)),
    Action("node ports detail", "GET", "/v1/nodes/{node}/ports/detail", (_LIST["port"],)),
    Action("portgroup ports", "GET", "/v1/portgroups/{portgroup}/ports", (_LIST["port"],)),
    Action(
        "portgroup ports detail",
        "GET",
        "/v1/portgroups/{portgroup}/ports/detail",
        (_LIST["port"],),
    ),
    Action("show port", "GET", "/v1/ports/{port}", ("baremetal:port:get",)),
    Action(
        "create port",
        "POST",
        "/v1/ports",
        ("baremetal:port:create",),
        body={"node_uuid": "{node}", "address": "{unique_mac}"},
        hides=None,
        status=201,
    ),
    Action(
        "update port",
        "PATCH",
        "/v1/ports/{port}",
        ("baremetal:port:update",),
        body=[{"op": "add", "path": "/extra/a", "value": 1}],
    ),
    Action(
        "delete port",
        "DELETE",
        "/v1/ports/{port}",
        ("baremetal:port:delete",),
        status=204,
        fresh="port",
    ),
    Action("list portgroups", "GET", "/v1/portgroups", (_LIST["portgroup"],), hides=None),
    Action(
        "list portgroups detail",
        "GET",
        "/v1/portgroups/detail",
        (_LIST["portgroup"],),
        hides=None,
    ),
    Action("node portgroups", "GET", "/v1/nodes/{node}/portgroups", (_LIST["portgroup"],)),
    Action(
        "node portgroups detail",
        "GET",
        "/v1/nodes/{node}/portgroups/detail",
        (_LIST["portgroup"],),
    ),
    Action("show portgroup", "GET", "/v1/portgroups/{portgroup}", ("baremetal:portgroup:get",)),
    Action(
        "create portgroup",
        "POST",
        "/v1/portgroups",
        ("baremetal:portgroup:create",),
        body={"node_uuid": "{node}", "address": "{unique_mac}"},
        hides=None,
        status=201,
    ),
    Action(
        "update portgroup",
        "PATCH",
        "/v1/portgroups/{portgroup}",
        ("baremetal:portgroup:update",),
        body=[{"op": "add", "path": "/extra/a", "value": 1}],
    ),
    Action(
        "delete portgroup",
        "DELETE",
        "/v1/portgroups/{portgroup}",
        ("baremetal:portgroup:delete",),
        status=204,
        fresh="portgroup",
    ),
)


def _volume(kind: str, create_body: dict[str, Any]) -> tuple[Action, ...]:
    base = f"/v1/volume/{kind}s"
    item = f"{base}/{{{kind}}}"
    return (
        Action(f"list {kind}s", "GET", base, (_LIST["volume"],), hides=None),
        Action(f"list {kind}s detail", "GET", f"{base}/detail", (_LIST["volume"],), hides=None),
        Action(f"node {kind}s", "GET", f"/v1/nodes/{{node}}/volume/{kind}s", (_LIST["volume"],)),
        Action(f"show {kind}", "GET", item, ("baremetal:volume:get",)),
        Action(
            f"create {kind}",
            "POST",
            base,
            ("baremetal:volume:create",),
            body={"node_uuid": "{node}", **create_body},
            hides=None,
            status=201,
        ),
        Action(
            f"update {kind}",
            "PATCH",
            item,
            ("baremetal:volume:update",),
            body=[{"op": "add", "path": "/extra/a", "value": 1}],
        ),
        Action(
            f"delete {kind}",
            "DELETE",
            item,
            ("baremetal:volume:delete",),
            status=204,
            fresh=kind,
        ),
    )


VOLUME_ACTIONS: tuple[Action, ...] = (
    Action("volume", "GET", "/v1/volume", ("baremetal:volume:get@caller",), hides=None),
    # Ironic checks the rule before it looks at the node: 403 even to who cannot see it
    Action("node volume", "GET", "/v1/nodes/{node}/volume", ("baremetal:volume:get@caller",)),
    *_volume("connector", {"type": "iqn", "connector_id": "iqn.{unique}"}),
    *_volume(
        "target",
        {"volume_type": "iscsi", "boot_index": "{unique_int}", "volume_id": "v-{unique}"},
    ),
)

_C = "baremetal:chassis:"
_D = "baremetal:driver:"
OTHER_ACTIONS: tuple[Action, ...] = (
    Action("list chassis", "GET", "/v1/chassis", (f"{_C}get",), hides=None),
    Action("list chassis detail", "GET", "/v1/chassis/detail", (f"{_C}get",), hides=None),
    Action("show chassis", "GET", "/v1/chassis/{chassis}", (f"{_C}get",), hides=None),
    Action(
        "create chassis", "POST", "/v1/chassis", (f"{_C}create",), body={}, hides=None, status=201
    ),
    Action(
        "update chassis",
        "PATCH",
        "/v1/chassis/{chassis}",
        (f"{_C}update",),
        body=[{"op": "add", "path": "/extra/a", "value": 1}],
        hides=None,
    ),
    Action(
        "delete chassis",
        "DELETE",
        "/v1/chassis/{chassis}",
        (f"{_C}delete",),
        hides=None,
        status=204,
        fresh="chassis",
    ),
    Action("chassis nodes", "GET", "/v1/chassis/{chassis}/nodes", (_LIST["node"],), hides=None),
    Action("list drivers", "GET", "/v1/drivers", (f"{_D}get",), hides=None),
    Action("show driver", "GET", "/v1/drivers/fake-hardware", (f"{_D}get",), hides=None),
    Action(
        "driver properties",
        "GET",
        "/v1/drivers/fake-hardware/properties",
        (f"{_D}get_properties",),
        hides=None,
    ),
    Action(
        "driver raid properties",
        "GET",
        "/v1/drivers/fake-hardware/raid/logical_disk_properties",
        (f"{_D}get_raid_logical_disk_properties",),
        hides=None,
    ),
    Action(
        "driver vendor methods",
        "GET",
        "/v1/drivers/fake-hardware/vendor_passthru/methods",
        (f"{_D}vendor_passthru",),
        hides=None,
    ),
    Action(
        "driver vendor passthru",
        "GET",
        "/v1/drivers/fake-hardware/vendor_passthru?method=list_bmcs",
        (f"{_D}vendor_passthru",),
        hides=None,
    ),
    Action(
        "driver vendor passthru by path",
        "POST",
        "/v1/drivers/fake-hardware/vendor_passthru/list_bmcs",
        (f"{_D}vendor_passthru",),
        body={},
        hides=None,
    ),
    Action("list conductors", "GET", "/v1/conductors", ("baremetal:conductor:get",), hides=None),
    Action("list shards", "GET", "/v1/shards", ("baremetal:shards:get",), hides=None),
    Action(
        "show conductor",
        "GET",
        "/v1/conductors/{conductor}",
        ("baremetal:conductor:get",),
        hides=None,
    ),
    Action("audit log", "GET", "/v1/audit", ("audit:list",), hides=None),
    Action("metrics", "GET", "/metrics", ("metrics:get",), hides=None),
    Action("root", "GET", "/", ("api:discovery",), hides=None),
    Action("v1", "GET", "/v1", ("api:discovery",), hides=None),
    Action("openapi", "GET", "/v1/openapi.json", ("api:discovery",), hides=None),
)

_T = "identity:token:"
_AUTH = "/v1/auth"


def _identity(kind: str, create_body: dict[str, Any]) -> tuple[Action, ...]:
    base = f"{_AUTH}/{kind}s"
    item = f"{base}/{{{kind}}}"
    rule = f"identity:{kind}:"
    return (
        Action(f"list {kind}s", "GET", base, (f"{rule}list",), hides=None),
        Action(f"show {kind}", "GET", item, (f"{rule}get",), hides=None),
        Action(
            f"create {kind}",
            "POST",
            base,
            (f"{rule}create",),
            body=create_body,
            hides=None,
            status=201,
        ),
        Action(
            f"update {kind}",
            "PATCH",
            item,
            (f"{rule}update",),
            body={"description": "walked {unique}"},
            hides=None,
        ),
        Action(
            f"delete {kind}",
            "DELETE",
            item,
            (f"{rule}delete",),
            hides=None,
            status=204,
            fresh=kind,
        ),
    )


_PROJECT_ROLE = f"{_AUTH}/projects/{{project}}/users/{{user}}/roles/member"
_SYSTEM_ROLE = f"{_AUTH}/system/users/{{user}}/roles/reader"

#: metalcast's identity API: the token actions need a user of the ``builtin``
#: strategy as the caller (elsewhere they answer 400: no tokens there)
IDENTITY_ACTIONS: tuple[Action, ...] = (
    Action("whoami", "GET", f"{_AUTH}/whoami", ("identity:whoami",), hides=None),
    Action(
        "create token",
        "POST",
        f"{_AUTH}/tokens",
        (f"{_T}create",),
        body={"description": "walked {unique}"},
        hides=None,
        status=201,
    ),
    Action("list tokens", "GET", f"{_AUTH}/tokens", (f"{_T}list",), hides=None),
    Action(
        "show own token",
        "GET",
        f"{_AUTH}/tokens/{{own_token}}",
        (f"{_T}list",),
        hides=f"{_T}list",
        fresh="own token",
    ),
    Action(
        "show someone else's token",
        "GET",
        f"{_AUTH}/tokens/{{token}}",
        (f"{_T}list@others",),
        hides=f"{_T}list@others",
    ),
    # revoking: whoever may not see the token is told it does not exist (404);
    # whoever sees it but may not revoke it gets 403
    Action(
        "revoke own token",
        "DELETE",
        f"{_AUTH}/tokens/{{own_token}}",
        (f"{_T}delete",),
        hides=f"{_T}list",
        status=204,
        fresh="own token",
    ),
    Action(
        "revoke someone else's token",
        "DELETE",
        f"{_AUTH}/tokens/{{token}}",
        (f"{_T}delete@others",),
        hides=f"{_T}list@others",
        status=204,
        fresh="token",
    ),
    *_identity("user", {"name": "walked-{unique}", "password": "walked password {unique}"}),
    *_identity("project", {"name": "walked-{unique}"}),
    Action(
        "list role assignments",
        "GET",
        f"{_AUTH}/role_assignments",
        ("identity:role:list",),
        hides=None,
    ),
    Action(
        "grant project role",
        "PUT",
        _PROJECT_ROLE,
        ("identity:role:assign",),
        hides=None,
        status=204,
    ),
    Action(
        "take project role",
        "DELETE",
        _PROJECT_ROLE,
        ("identity:role:unassign",),
        hides=None,
        status=204,
        fresh="user with project role",
    ),
    Action(
        "grant system role",
        "PUT",
        _SYSTEM_ROLE,
        ("identity:role:assign",),
        hides=None,
        status=204,
    ),
    Action(
        "take system role",
        "DELETE",
        _SYSTEM_ROLE,
        ("identity:role:unassign",),
        hides=None,
        status=204,
        fresh="user with system role",
    ),
)

_A = "baremetal:allocation:"
_EXTRA = [{"op": "add", "path": "/extra/a", "value": 1}]
ALLOCATION_ACTIONS: tuple[Action, ...] = (
    Action(
        "list allocations",
        "GET",
        "/v1/allocations",
        (_LIST["allocation"], f"{_A}get@own"),
        hides=None,
    ),
    Action(
        "create allocation",
        "POST",
        "/v1/allocations",
        ((f"{_A}create", f"{_A}create_restricted"),),
        body={"resource_class": "matrix-{unique}"},
        hides=None,
        status=201,
    ),
    Action(
        "show allocation", "GET", "/v1/allocations/{allocation}", (f"{_A}get",), hides=f"{_A}get"
    ),
    Action(
        "update allocation",
        "PATCH",
        "/v1/allocations/{allocation}",
        (f"{_A}update",),
        body=_EXTRA,
        hides=f"{_A}get",
    ),
    Action(
        "delete allocation",
        "DELETE",
        "/v1/allocations/{allocation}",
        (f"{_A}delete",),
        hides=f"{_A}get",
        status=204,
        fresh="allocation",
    ),
    # Ironic answers 400 for a node that does not exist there; metalcast answers the
    # same to whoever may not see the node
    Action(
        "node allocation",
        "GET",
        "/v1/nodes/{allocated}/allocation",
        ("baremetal:node:get_allocation",),
        hidden_as=Outcome.BAD_REQUEST,
    ),
    Action(
        "delete node allocation",
        "DELETE",
        "/v1/nodes/{allocated}/allocation",
        ("baremetal:node:delete_allocation",),
        status=204,
        fresh="allocated node",
    ),
)

_DT = "baremetal:deploy_template:"
_IR = "baremetal:inspection_rule:"
_RB = "baremetal:runbook:"
_RESET = {"interface": "management", "step": "reset_bmc", "args": {}, "order": 1}
_STEP = {"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 150}
SERVICE_ACTIONS: tuple[Action, ...] = (
    Action(
        "post events",
        "POST",
        "/v1/events",
        ("baremetal:events:post",),
        body={
            "events": [
                {
                    "event": "network.bind_port",
                    "port_id": "{unique_uuid}",
                    "mac_address": "{unique_mac}",
                    "status": "ACTIVE",
                }
            ]
        },
        hides=None,
        status=204,
    ),
    Action("node events", "GET", "/v1/events", ("baremetal:events:get",), hides=None),
    Action("list deploy templates", "GET", "/v1/deploy_templates", (f"{_DT}get",), hides=None),
    Action(
        "create deploy template",
        "POST",
        "/v1/deploy_templates",
        (f"{_DT}create",),
        body={"name": "CUSTOM_MATRIX_{unique}", "steps": [_STEP]},
        hides=None,
        status=201,
    ),
    Action(
        "show deploy template",
        "GET",
        "/v1/deploy_templates/{template}",
        (f"{_DT}get",),
        hides=None,
    ),
    Action(
        "update deploy template",
        "PATCH",
        "/v1/deploy_templates/{template}",
        (f"{_DT}update",),
        body=_EXTRA,
        hides=None,
    ),
    Action(
        "delete deploy template",
        "DELETE",
        "/v1/deploy_templates/{template}",
        (f"{_DT}delete",),
        hides=None,
        status=204,
        fresh="template",
    ),
    Action("list runbooks", "GET", "/v1/runbooks", (_LIST["runbook"],), hides=None),
    Action(
        "create runbook",
        "POST",
        "/v1/runbooks",
        (f"{_RB}create",),
        body={"name": "CUSTOM_MATRIX_{unique}", "steps": [_RESET]},
        hides=None,
        status=201,
    ),
    Action("show runbook", "GET", "/v1/runbooks/{runbook}", (f"{_RB}get",), hides=f"{_RB}get"),
    Action(
        "runbook traits",
        "GET",
        "/v1/runbooks/{runbook}/traits",
        (f"{_RB}get",),
        hides=f"{_RB}get",
    ),
    Action(
        "set runbook traits",
        "PUT",
        "/v1/runbooks/{runbook}/traits",
        (f"{_RB}update",),
        body={"traits": ["CUSTOM_WALKED"]},
        hides=f"{_RB}get",
        status=204,
    ),
    Action(
        "add runbook trait",
        "PUT",
        "/v1/runbooks/{runbook}/traits/CUSTOM_WALKED",
        (f"{_RB}update",),
        hides=f"{_RB}get",
        status=204,
    ),
    Action(
        "remove runbook trait",
        "DELETE",
        "/v1/runbooks/{runbook}/traits/CUSTOM_WALKED",
        (f"{_RB}update",),
        hides=f"{_RB}get",
        status=204,
    ),
    Action(
        "remove runbook traits",
        "DELETE",
        "/v1/runbooks/{runbook}/traits",
        (f"{_RB}update",),
        hides=f"{_RB}get",
        status=204,
    ),
    Action(
        "update runbook",
        "PATCH",
        "/v1/runbooks/{runbook}",
        (f"{_RB}update",),
        body=_EXTRA,
        hides=f"{_RB}get",
    ),
    # each on a runbook of its own: a public runbook has no owner any more
    Action(
        "make runbook public",
        "PATCH",
        "/v1/runbooks/{runbook}",
        (f"{_RB}update:public",),
        body=[{"op": "replace", "path": "/public", "value": True}],
        hides=f"{_RB}get",
        fresh="runbook",
    ),
    Action(
        "give runbook away",
        "PATCH",
        "/v1/runbooks/{runbook}",
        (f"{_RB}update:owner",),
        body=[{"op": "replace", "path": "/owner", "value": "someone-else"}],
        hides=f"{_RB}get",
        fresh="runbook",
    ),
    Action(
        "delete runbook",
        "DELETE",
        "/v1/runbooks/{runbook}",
        (f"{_RB}delete",),
        hides=f"{_RB}get",
        status=204,
        fresh="runbook",
    ),
    # Ironic checks baremetal:runbook:use alone (403), not whether the caller may read it
    Action(
        "clean with runbook",
        "PUT",
        "/v1/nodes/{node}/states/provision",
        (f"{_N}set_provision_state", f"{_RB}use"),
        body={"target": "clean", "runbook": "{runbook}"},
        status=202,
        fresh="node with runbook",
    ),
    Action(
        "create webhook",
        "POST",
        "/v1/webhooks",
        ("baremetal:webhook:create",),
        body={"url": "http://127.0.0.1:9/{unique}", "secret": "matrix-secret-0123456789"},
        hides=None,
        status=201,
    ),
    Action("list webhooks", "GET", "/v1/webhooks", ("baremetal:webhook:get",), hides=None),
    Action("show webhook", "GET", "/v1/webhooks/{webhook}", ("baremetal:webhook:get",), hides=None),
    Action(
        "webhook deliveries",
        "GET",
        "/v1/webhooks/{webhook}/deliveries",
        ("baremetal:webhook:get",),
        hides=None,
    ),
    Action(
        "delete webhook",
        "DELETE",
        "/v1/webhooks/{webhook}",
        ("baremetal:webhook:delete",),
        hides=None,
        status=204,
        fresh="webhook",
    ),
    Action("list inspection rules", "GET", "/v1/inspection_rules", (f"{_IR}get",), hides=None),
    Action(
        "create inspection rule",
        "POST",
        "/v1/inspection_rules",
        (f"{_IR}create",),
        body={"actions": [{"op": "add-trait", "args": {"name": "CUSTOM_MATRIX_{unique}"}}]},
        hides=None,
        status=201,
    ),
    # each on a rule of its own: an earlier persona's "delete all" removed the world's
    Action(
        "show inspection rule",
        "GET",
        "/v1/inspection_rules/{rule}",
        (f"{_IR}get",),
        hides=None,
        fresh="rule",
    ),
    Action(
        "update inspection rule",
        "PATCH",
        "/v1/inspection_rules/{rule}",
        (f"{_IR}update",),
        body=[{"op": "replace", "path": "/description", "value": "matrix"}],
        hides=None,
        fresh="rule",
    ),
    Action(
        "delete inspection rule",
        "DELETE",
        "/v1/inspection_rules/{rule}",
        (f"{_IR}delete",),
        hides=None,
        status=204,
        fresh="rule",
    ),
    # last: it deletes the world's rule too (the walks above make their own)
    Action(
        "delete all inspection rules",
        "DELETE",
        "/v1/inspection_rules",
        (f"{_IR}delete",),
        hides=None,
        status=204,
    ),
)

#: Ironic's API: the actions any authentication strategy can walk
BAREMETAL_ACTIONS: tuple[Action, ...] = (
    *NODE_ACTIONS,
    *PORT_ACTIONS,
    *VOLUME_ACTIONS,
    *OTHER_ACTIONS,
    *ALLOCATION_ACTIONS,
    *SERVICE_ACTIONS,
)
ACTIONS: tuple[Action, ...] = (*BAREMETAL_ACTIONS, *IDENTITY_ACTIONS)
BY_ACTION: dict[str, Action] = {action.name: action for action in ACTIONS}
#: routes the matrix leaves to their own tests (tests/unit/api/test_ramdisk.py):
#: the agent's, which take its token, and the image files
NOT_WALKED = frozenset(
    {
        "/v1/lookup",
        "/v1/heartbeat",
        "/v1/heartbeat/{node}",
        "/v1/continue_inspection",
        "/images/{path:path}",
    }
)


def admits(requirement: Requirement, persona: str) -> bool:
    """Whether ``requirement`` lets ``persona`` in."""
    names = (requirement,) if isinstance(requirement, str) else requirement
    return any(persona in _expected(name) for name in names)


def _expected(name: str) -> frozenset[str]:
    if name.endswith("@caller"):
        return EXPECTED_WITHOUT_TARGET[name.removesuffix("@caller")]
    if name.endswith("@others"):
        return EXPECTED_ON_OTHERS_TOKEN[name.removesuffix("@others")]
    if name.endswith("@own"):
        return EXPECTED_ON_OWN_ALLOCATION[name.removesuffix("@own")]
    return EXPECTED[name]


def outcome(persona: str, action: Action) -> Outcome:
    """What ``persona`` gets from ``action``, as Ironic answers."""
    public = action.path.split("?")[0] in PUBLIC_PATHS
    if persona == "anonymous" and not public:
        return Outcome.UNAUTHORIZED
    for requirement in action.requires:
        before_lookup = isinstance(requirement, str) and requirement.endswith("@caller")
        if before_lookup and not admits(requirement, persona):
            return Outcome.FORBIDDEN
    if action.hides is not None and persona not in _expected(action.hides):
        return action.hidden_as
    if not all(admits(r, persona) for r in action.requires):
        return Outcome.FORBIDDEN
    return Outcome.ALLOWED


#: action name -> persona name -> outcome
MATRIX: dict[str, dict[str, Outcome]] = {
    action.name: {p.name: outcome(p.name, action) for p in PERSONAS} for action in ACTIONS
}


# ------------------------------------------------------------- what is shown

#: fixture nodes of the listing tests: label -> (owner, lessee)
NODES: dict[str, tuple[str | None, str | None]] = {
    "leased": (OWNER_PROJECT, LESSEE_PROJECT),
    "lessee's own": (LESSEE_PROJECT, None),
    "other's": (OTHER_PROJECT, None),
    "unowned": (None, None),
}


#: fixture allocations of the listing tests: label -> owner
ALLOCATIONS: dict[str, str | None] = {
    "owner's": OWNER_PROJECT,
    "lessee's": LESSEE_PROJECT,
    "other's": OTHER_PROJECT,
    "unowned": None,
}


def visible_allocations(persona: Caller) -> frozenset[str] | None:
    """Labels of :data:`ALLOCATIONS` a listing shows ``persona``; None when the
    listing is refused (403): no right to list, or no right to get its own project's
    allocations (Ironic checks each one listed)."""
    if persona.name in EXPECTED["baremetal:allocation:list_all"]:
        shown = frozenset(ALLOCATIONS)
    elif persona.project is None or persona.name not in EXPECTED["baremetal:allocation:list"]:
        return None
    else:
        shown = frozenset(label for label, owner in ALLOCATIONS.items() if owner == persona.project)
    if persona.name not in EXPECTED_ON_OWN_ALLOCATION["baremetal:allocation:get"]:
        return None
    return shown


def visible_nodes(persona: Caller, kind: str = "node") -> frozenset[str] | None:
    """Labels of :data:`NODES` (or of their ports, portgroups, volume resources) a
    listing shows ``persona``; None when the listing is refused (403)."""
    if persona.name in EXPECTED[f"baremetal:{kind}:list_all"]:
        return frozenset(NODES)
    if persona.project is None or persona.name not in EXPECTED[f"baremetal:{kind}:list"]:
        return None
    return frozenset(label for label, pair in NODES.items() if persona.project in pair)


#: node field -> the rule that shows it to callers below the filter threshold
REDACTABLE = {
    "last_error": "baremetal:node:get:last_error",
    "reservation": "baremetal:node:get:reservation",
    "driver_internal_info": "baremetal:node:get:driver_internal_info",
    "driver_info": "baremetal:node:get:driver_info",
}


def redacted_fields(persona: str) -> frozenset[str]:
    """The fields of the leased node ``persona`` sees redacted (it must see the node)."""
    if persona in EXPECTED["baremetal:node:get:filter_threshold"]:
        return frozenset()
    return frozenset(f for f, rule in REDACTABLE.items() if persona not in EXPECTED[rule])


SHOWS_TARGET_PROPERTIES = EXPECTED["baremetal:volume:view_target_properties"]
