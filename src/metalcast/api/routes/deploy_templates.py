"""/v1/deploy_templates (API 1.55): named sets of deploy steps, Ironic's validation.

Templates carry no node state, so their writes go straight to the repository.  A
deploy runs the steps of the templates named like the node's instance traits
(:mod:`metalcast.conductor.deploy_steps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.routing import Route

from metalcast.api import patching, step_sets
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.listing import Listed
from metalcast.api.operations import Operation, array, obj, patch, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import fields_param, parse_fields
from metalcast.api.schema import Field, check_uuid, validate_body
from metalcast.api.versions import require
from metalcast.api.views import allocations as view
from metalcast.db import deploy_templates as repo_tpl
from metalcast.db.models import DeployTemplate

_NOT_SERVED = "The API version does not allow deploy templates"

STEP_INTERFACES = step_sets.STEP_INTERFACES
MAX_PRIORITY = step_sets.MAX_RANK
check_name = step_sets.DEPLOY_TEMPLATE.check_name
check_steps = step_sets.DEPLOY_TEMPLATE.check_steps


def _require(call: Call) -> None:
    require("deploy_templates", call.version, method=call.method, message=_NOT_SERVED)


CREATABLE: Mapping[str, Field] = {
    "uuid": Field(check=check_uuid),
    "name": Field(nullable=False, check=check_name),
    "steps": Field("list", nullable=False, max_length=None),
    "extra": Field("object", max_length=None),
    "description": Field(),
}
PATCHABLE = patching.Patchable(
    fields={
        "name": Field(nullable=False, check=check_name),
        "steps": Field("list", nullable=False, max_length=None),
        "extra": Field("object", nullable=False, max_length=None),
        "description": Field(),
    },
    readonly=frozenset(view.TEMPLATE_FIELDS),
    removed={"extra": {}},
    mandatory=frozenset({"name", "steps"}),
)
LISTED = Listed(
    "deploy_templates",
    view.TEMPLATE_FIELDS,
    view.TEMPLATE_LIST_FIELDS,
    view.TEMPLATE_SORTABLE,
    "deploy_templates",
)
_FEATURE = "deploy_templates"
#: writes before 1.55 are 405, as in Ironic
_WRITE_ERRORS = frozenset({405})
#: the request body's steps (check_steps says the rest: no interface and step twice)
_STEPS = array(
    obj(
        {
            "interface": string(enum=list(STEP_INTERFACES)),
            "step": string(minLength=1),
            "args": obj(),
            "priority": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY},
                    string(pattern="^[0-9]{1,10}$"),
                ]
            },
        },
        required=("interface", "step", "args", "priority"),
    ),
    minItems=1,
)
_NAME = string(
    maxLength=255,
    pattern="^(CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*)$",
    description="Named like the trait that selects it.",
)


def _render(call: Call, template: DeployTemplate, **kw: Any) -> dict[str, Any]:
    return view.render_template(template, base_url=call.base_url, **kw)


@endpoint(
    "baremetal:deploy_template:get",
    doc=Operation(
        "List deploy templates",
        answers={200: collection_of("deploy_templates", view.TEMPLATE)},
        query=LISTED.query,
        feature=_FEATURE,
    ),
)
def get_templates(call: Call) -> object:
    _require(call)
    return LISTED.page(
        call,
        repo_tpl.list_deploy_templates,
        lambda template, fields: _render(call, template, fields=fields),
    )


@endpoint(
    "baremetal:deploy_template:get",
    doc=Operation(
        "Show a deploy template",
        answers={200: view.TEMPLATE},
        query=(fields_param(view.TEMPLATE_FIELDS),),
        feature=_FEATURE,
    ),
)
def get_template(call: Call) -> object:
    _require(call)
    fields = parse_fields(call.query.get("fields"), view.TEMPLATE_FIELDS, version=call.version)
    with call.deps.db.read() as conn:
        template = repo_tpl.get_deploy_template(conn, call.args["deploy_template"])
    return _render(call, template, fields=fields)


@endpoint(
    "baremetal:deploy_template:create",
    body=True,
    doc=Operation(
        "Create a deploy template",
        answers={201: view.TEMPLATE},
        body=obj(
            {
                "uuid": string(format="uuid"),
                "name": _NAME,
                "description": string(maxLength=255),
                "steps": _STEPS,
                "extra": obj(),
            },
            required=("name", "steps"),
        ),
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
        examples=(
            {
                "name": "CUSTOM_RAID1",
                "steps": [
                    {
                        "interface": "raid",
                        "step": "apply_configuration",
                        "args": {},
                        "priority": 10,
                    }
                ],
            },
        ),
    ),
)
def create_template(call: Call) -> object:
    _require(call)
    body = validate_body(
        call.body,
        CREATABLE,
        what="deploy template",
        version=call.version,
        required=("name", "steps"),
    )
    body["steps"] = check_steps(body.get("steps"))
    values = {k: v for k, v in body.items() if v is not None}
    with call.deps.db.begin() as conn:
        template = repo_tpl.create_deploy_template(conn, values)
    location = call.url("v1", "deploy_templates", template.uuid)
    return Reply(201, _render(call, template), {"Location": location})


@endpoint(
    "baremetal:deploy_template:update",
    body=True,
    doc=Operation(
        "Update a deploy template (JSON Patch)",
        answers={200: view.TEMPLATE},
        body=patch(PATCHABLE.fields, name="DeployTemplatePatch"),
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
    ),
)
def patch_template(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        template = repo_tpl.get_deploy_template(conn, call.args["deploy_template"])
        before = {name: getattr(template, name) for name in PATCHABLE.fields}
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        if "steps" in changes:
            changes["steps"] = check_steps(changes["steps"])
        if changes:
            repo_tpl.update_deploy_template(conn, template.id, changes)
            template = repo_tpl.get_deploy_template_by_id(conn, template.id)
    return _render(call, template)


@endpoint(
    "baremetal:deploy_template:delete",
    doc=Operation(
        "Delete a deploy template", answers={204: None}, feature=_FEATURE, errors=_WRITE_ERRORS
    ),
)
def delete_template(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        template = repo_tpl.get_deploy_template(conn, call.args["deploy_template"])
        repo_tpl.destroy_deploy_template(conn, template.id)
    return Reply(204)


ROUTES = [
    Route("/v1/deploy_templates", get_templates, methods=["GET"]),
    Route("/v1/deploy_templates", create_template, methods=["POST"]),
    Route("/v1/deploy_templates/{deploy_template}", get_template, methods=["GET"]),
    Route("/v1/deploy_templates/{deploy_template}", patch_template, methods=["PATCH"]),
    Route("/v1/deploy_templates/{deploy_template}", delete_template, methods=["DELETE"]),
]
