"""/v1/inspection_rules (Ironic API 1.96): conditions on inspection data and actions.

Rules carry no node state, so their writes go straight to the repository; the
conductor evaluates them after an inspection (:mod:`metalcast.inspection_rules`).
Below 1.96 the endpoints do not exist (404, 405 for a write), as in Ironic.
Validation is :mod:`metalcast.inspection_rules.spec`:
an unknown operation, a missing or unexpected argument, a bad regular expression
or network, a field rules may not change are 400s that say what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.routing import Route

from metalcast.api import patching
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.listing import Listed
from metalcast.api.operations import Operation, array, obj, patch, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import fields_param, parse_fields
from metalcast.api.schema import Field, check_uuid, validate_body
from metalcast.api.versions import require
from metalcast.api.views import inspection_rules as view
from metalcast.db import inspection_rules as repo
from metalcast.db.models import InspectionRule
from metalcast.inspection_rules import spec
from metalcast.secrecy import MASK

_FEATURE = "inspection_rules"
_NOT_SERVED = "The API version does not allow inspection rules"
_WRITE_ERRORS = frozenset({405})


def _require(call: Call) -> None:
    require(_FEATURE, call.version, method=call.method, message=_NOT_SERVED)


def _checked(check: Any) -> Any:
    """A Field check from a spec check (which names the field itself)."""

    def run(_name: str, value: Any) -> None:
        check(value)

    return run


CREATABLE: Mapping[str, Field] = {
    "uuid": Field(check=check_uuid),
    "description": Field(max_length=spec.MAX_DESCRIPTION),
    "priority": Field("integer", nullable=False, check=_checked(spec.check_priority)),
    "phase": Field(nullable=False, max_length=16, check=_checked(spec.check_phase)),
    "sensitive": Field("boolean", nullable=False),
    "conditions": Field("list", max_length=None),
    "actions": Field("list", nullable=False, max_length=None),
}
PATCHABLE = patching.Patchable(
    fields={k: v for k, v in CREATABLE.items() if k != "uuid"},
    readonly=frozenset(view.FIELDS) - set(CREATABLE),
    removed={"conditions": [], "priority": 0, "phase": "main", "sensitive": False},
    mandatory=frozenset({"actions"}),
)
LISTED = Listed("inspection_rules", view.FIELDS, view.LIST_FIELDS, view.SORTABLE, _FEATURE)
_OPERATIONS = array(
    obj({"op": string(), "args": {"type": ["object", "array"]}}, required=("op", "args"))
)
_BODY = obj(
    {
        "uuid": string(format="uuid"),
        "description": string(maxLength=spec.MAX_DESCRIPTION),
        "priority": {"type": "integer", "minimum": spec.MIN_PRIORITY, "maximum": spec.MAX_PRIORITY},
        "phase": string(enum=list(spec.PHASES)),
        "sensitive": {"type": "boolean"},
        "conditions": _OPERATIONS,
        "actions": _OPERATIONS,
    },
    required=("actions",),
)


def _digits_as_integer(body: object) -> object:
    """A ``priority`` sent as a digit string as an integer (python-ironicclient sends
    ``--priority 20`` as ``"20"``)."""
    if isinstance(body, dict):
        priority = body.get("priority")
        if isinstance(priority, str) and priority.isascii() and priority.isdigit():
            return {**body, "priority": int(priority[:9])}
    return body


def _render(call: Call, rule: InspectionRule, **kw: Any) -> dict[str, Any]:
    return view.render_rule(rule, base_url=call.base_url, **kw)


def _no_masked_values(name: str, value: object) -> None:
    if MASK.encode() in orjson.dumps(value):
        raise spec.InvalidRule(
            f"{name} holds {MASK}, a masked secret as the API shows it: send the "
            f"whole {name} list with its real values."
        )


def _check_rule(values: dict[str, Any]) -> dict[str, Any]:
    """The rule's conditions and actions checked (Ironic's validation).  Raises
    InvalidRule."""
    if "conditions" in values:
        values["conditions"] = spec.check_conditions(values["conditions"])
        _no_masked_values("conditions", values["conditions"])
    if "actions" in values:
        values["actions"] = spec.check_actions(values["actions"])
        _no_masked_values("actions", values["actions"])
    return values


@endpoint(
    "baremetal:inspection_rule:get",
    doc=Operation(
        "List inspection rules",
        answers={200: collection_of("inspection_rules", view.RULE)},
        query=LISTED.query,
        feature=_FEATURE,
    ),
)
def get_rules(call: Call) -> object:
    _require(call)
    return LISTED.page(
        call, repo.list_inspection_rules, lambda rule, fields: _render(call, rule, fields=fields)
    )


@endpoint(
    "baremetal:inspection_rule:get",
    doc=Operation(
        "Show an inspection rule",
        answers={200: view.RULE},
        query=(fields_param(view.FIELDS),),
        feature=_FEATURE,
    ),
)
def get_rule(call: Call) -> object:
    _require(call)
    fields = parse_fields(call.query.get("fields"), view.FIELDS, version=call.version)
    with call.deps.db.read() as conn:
        rule = repo.get_inspection_rule(conn, call.args["rule"])
    return _render(call, rule, fields=fields)


@endpoint(
    "baremetal:inspection_rule:create",
    body=True,
    doc=Operation(
        "Create an inspection rule",
        answers={201: view.RULE},
        body=_BODY,
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
        examples=(
            {
                "description": "lab machines get a trait",
                "priority": 10,
                "conditions": [
                    {
                        "op": "eq",
                        "args": {
                            "values": ["{inventory[system_vendor][manufacturer]}", "metalcast"]
                        },
                    }
                ],
                "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_LAB"}}],
            },
        ),
    ),
)
def create_rule(call: Call) -> object:
    _require(call)
    body = validate_body(
        _digits_as_integer(call.body),
        CREATABLE,
        what="inspection rule",
        version=call.version,
        required=("actions",),
    )
    values = _check_rule({k: v for k, v in body.items() if v is not None})
    with call.deps.db.begin() as conn:
        rule = repo.create_inspection_rule(conn, values)
    location = call.url("v1", "inspection_rules", rule.uuid)
    return Reply(201, _render(call, rule), {"Location": location})


@endpoint(
    "baremetal:inspection_rule:update",
    body=True,
    doc=Operation(
        "Update an inspection rule (JSON Patch)",
        answers={200: view.RULE},
        body=patch(PATCHABLE.fields, name="InspectionRulePatch"),
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
    ),
)
def patch_rule(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        rule = repo.get_inspection_rule(conn, call.args["rule"])
        before = {name: getattr(rule, name) for name in PATCHABLE.fields}
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        changes = _check_rule(changes)
        if changes:
            repo.update_inspection_rule(conn, rule.id, changes)
            rule = repo.get_inspection_rule_by_id(conn, rule.id)
    return _render(call, rule)


@endpoint(
    "baremetal:inspection_rule:delete",
    doc=Operation(
        "Delete an inspection rule", answers={204: None}, feature=_FEATURE, errors=_WRITE_ERRORS
    ),
)
def delete_rule(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        rule = repo.get_inspection_rule(conn, call.args["rule"])
        repo.destroy_inspection_rule(conn, rule.id)
    return Reply(204)


@endpoint(
    "baremetal:inspection_rule:delete",
    doc=Operation(
        "Delete every inspection rule", answers={204: None}, feature=_FEATURE, errors=_WRITE_ERRORS
    ),
)
def delete_rules(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        repo.destroy_all_inspection_rules(conn)
    return Reply(204)


ROUTES = [
    Route("/v1/inspection_rules", get_rules, methods=["GET"]),
    Route("/v1/inspection_rules", create_rule, methods=["POST"]),
    Route("/v1/inspection_rules", delete_rules, methods=["DELETE"]),
    Route("/v1/inspection_rules/{rule}", get_rule, methods=["GET"]),
    Route("/v1/inspection_rules/{rule}", patch_rule, methods=["PATCH"]),
    Route("/v1/inspection_rules/{rule}", delete_rule, methods=["DELETE"]),
]
