"""/v1/runbooks (Ironic API 1.92): named lists of clean or service steps.

A runbook runs on a node through ``PUT /v1/nodes/{node}/states/provision`` with
``{"target": "clean" | "service", "runbook": <name or UUID>}``
(:func:`steps_for_node`): before 1.112 only on a node with a trait equal to its
name, from 1.112 on a node sharing one of its traits
(:mod:`metalcast.api.routes.runbook_traits`).  Runbooks carry no node state, so
their writes go straight to the repository.  Below 1.92 the endpoints do not exist
(404, 405 for a write), as in Ironic.

The policy is applied as Ironic's runbook controller applies it: a project's caller
creates runbooks of its own project only, never a public one; lists its project's
and the public runbooks (``baremetal:runbook:list``; ``...:list_all`` lists every
one); reads a public runbook whoever owns it.  ``...:get`` on the runbook's owner
decides whether the caller may know it exists (404: metalcast hides it, where
Ironic answers 403), then ``...:update``, ``...:update:owner``,
``...:update:public`` or ``...:delete`` (403).  Running one on a node checks
``...:use`` on it (403), after the node's own rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import jsonpatch, patching, policy, step_sets
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.listing import Listed
from metalcast.api.operations import Operation, array, boolean, obj, patch, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import fields_param, parse_fields
from metalcast.api.schema import Field, check_uuid, validate_body
from metalcast.api.versions import allows, require
from metalcast.api.views import runbooks as view
from metalcast.db import repository as repo_nodes
from metalcast.db import runbooks as repo
from metalcast.db.models import Node, NodeBrief, Runbook
from metalcast.errors import Forbidden, InvalidInput

_FEATURE = "runbooks"
_NOT_SERVED = "The API version does not allow runbooks"
_WRITE_ERRORS = frozenset({405})
_RB = "baremetal:runbook:"
GET = f"{_RB}get"
USE = f"{_RB}use"
#: patched attribute -> the rule that guards changing it (the rest: ...:update)
_PATCH_RULES = {"owner": f"{_RB}update:owner", "public": f"{_RB}update:public"}
_CHECKS = step_sets.RUNBOOK


def _require(call: Call) -> None:
    require(_FEATURE, call.version, method=call.method, message=_NOT_SERVED)


_NAME_CHARS = re.compile(r"[A-Za-z0-9\-._~]{1,255}")


def check_name(name: str, value: Any) -> None:
    """From 1.112 a runbook's name is any logical name (Ironic's: letters, digits,
    ``-._~``, 1 to 255).  Raises InvalidInput."""
    if not _NAME_CHARS.fullmatch(value):
        raise InvalidInput(
            f"Invalid value for field '{name}': {value!r} is not a name of 1 to 255 letters, "
            "digits, '-', '.', '_' or '~'."
        )


CREATABLE: Mapping[str, Field] = {
    "uuid": Field(check=check_uuid),
    # named like a trait before 1.112, any logical name from it (create_runbook)
    "name": Field(nullable=False),
    "description": Field(feature="runbook_traits"),
    "steps": Field("list", nullable=False, max_length=None),
    "disable_ramdisk": Field("boolean"),
    "public": Field("boolean"),
    "owner": Field(max_length=255),
    "extra": Field("object", max_length=None),
}
PATCHABLE = patching.Patchable(
    fields={
        # as Ironic: a patch takes 1.112's names at every version, so that a runbook
        # named so remains patchable by older clients
        "name": Field(nullable=False, check=check_name),
        "description": Field(feature="runbook_traits"),
        "steps": Field("list", nullable=False, max_length=None),
        "disable_ramdisk": Field("boolean", nullable=False),
        "public": Field("boolean", nullable=False),
        "owner": Field(max_length=255),
        "extra": Field("object", nullable=False, max_length=None),
    },
    readonly=frozenset(view.FIELDS),
    removed={"extra": {}, "disable_ramdisk": False, "public": False},
    mandatory=frozenset({"name", "steps"}),
)
LISTED = Listed("runbooks", view.FIELDS, view.LIST_FIELDS, view.SORTABLE, _FEATURE)
_STEPS = array(
    obj(
        {
            "interface": string(enum=list(step_sets.STEP_INTERFACES)),
            "step": string(minLength=1),
            "args": obj(),
            "order": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": step_sets.MAX_RANK},
                    string(pattern="^[0-9]{1,10}$"),
                ]
            },
        },
        required=("interface", "step", "order"),
    ),
    minItems=1,
)
_NAME = string(
    maxLength=255,
    pattern="^(CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*)$",
    description="Named like the node trait that lets it run on a node (before 1.112; from "
    "1.112 any logical name, matched by its traits).",
)
_BODY = obj(
    {
        "uuid": string(format="uuid"),
        "name": _NAME,
        "steps": _STEPS,
        "description": string(maxLength=255, description="From 1.112."),
        "disable_ramdisk": boolean(),
        "public": boolean(),
        "owner": string(maxLength=255),
        "extra": obj(),
    },
    required=("name", "steps"),
)


def _render(call: Call, runbook: Runbook, **kw: Any) -> dict[str, Any]:
    return view.render_runbook(runbook, base_url=call.base_url, version=call.version, **kw)


def load(conn: sa.Connection, call: Call, *, ident: str, actions: tuple[str, ...]) -> Runbook:
    """The runbook ``ident`` (UUID or name) names, if the caller may see it (a
    public one: anyone) and ``actions`` let the caller at it.

    Raises:
        NotFound: no such runbook, or the caller may not see it.
        Forbidden: the caller sees it but one of ``actions`` refuses.
    """
    found = repo.get_runbook(conn, ident)
    target = policy.runbook_target(found.owner)
    if found.public and not call.allows(GET, target):
        call.checked.append(GET)  # a public runbook is anyone's to read (Ironic)
    else:
        call.enforce(GET, target, hide=f"Runbook {ident} could not be found.")
    for action in actions:
        if action != GET:
            call.enforce(action, target)
    return found


@endpoint(
    f"{_RB}list",
    doc=Operation(
        "List runbooks",
        answers={200: collection_of("runbooks", view.RUNBOOK)},
        query=LISTED.query,
        feature=_FEATURE,
        description="A project's caller sees its project's runbooks and the public ones.",
    ),
)
def get_runbooks(call: Call) -> object:
    _require(call)
    project = call.list_scope("runbook")
    return LISTED.page(
        call,
        lambda conn, page: repo.list_runbooks(conn, page, project=project),
        lambda runbook, fields: _render(call, runbook, fields=fields),
    )


@endpoint(
    GET,
    doc=Operation(
        "Show a runbook",
        answers={200: view.RUNBOOK},
        query=(fields_param(view.FIELDS),),
        feature=_FEATURE,
    ),
)
def get_runbook(call: Call) -> object:
    _require(call)
    fields = parse_fields(call.query.get("fields"), view.FIELDS, version=call.version)
    with call.deps.db.read() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=(GET,))
    return _render(call, runbook, fields=fields)


def _owner(call: Call, body: dict[str, Any]) -> str | None:
    """The new runbook's owner: the caller's project for a project's caller, which may
    neither name another nor make it public; what a system caller names.

    Raises:
        InvalidInput: an owner a project's caller may not give, or a public runbook
            with an owner.
        Forbidden: a caller scoped to neither the system nor a project.
    """
    asked = body.get("owner")
    if call.context.system_scope != "all":
        project = call.context.project
        if not project:
            # Ironic would make it a runbook of nobody, which only the system may make
            raise Forbidden(
                f"{policy.forbidden(f'{_RB}create').message}: a runbook needs a project; "
                "use credentials scoped to one."
            )
        if asked and asked != project:
            raise InvalidInput(
                "Cannot create a runbook as a project scoped admin with an owner other than "
                "your own project."
            )
        if project and body.get("public"):
            raise InvalidInput(
                "Cannot create a public runbook as a project scoped admin; ask a system "
                "member to make it public."
            )
        asked = project
    if asked and body.get("public"):
        raise InvalidInput("There cannot be an owner for a public runbook: leave owner out.")
    return asked


@endpoint(
    f"{_RB}create",
    body=True,
    doc=Operation(
        "Create a runbook",
        answers={201: view.RUNBOOK},
        body=_BODY,
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
        description="A project's caller creates a runbook of its own project.",
        examples=(
            {
                "name": "CUSTOM_ERASE",
                "steps": [{"interface": "deploy", "step": "erase_devices", "args": {}, "order": 1}],
            },
        ),
    ),
)
def create_runbook(call: Call) -> object:
    _require(call)
    body = validate_body(
        call.body, CREATABLE, what="runbook", version=call.version, required=("name", "steps")
    )
    if allows("runbook_traits", call.version):
        check_name("name", body["name"])
    else:
        _CHECKS.check_name("name", body["name"])
    body["steps"] = _CHECKS.check_steps(body.get("steps"))
    body["owner"] = _owner(call, body)
    values = {k: v for k, v in body.items() if v is not None}
    with call.deps.db.begin() as conn:
        runbook = repo.create_runbook(conn, values)
    location = call.url("v1", "runbooks", runbook.uuid)
    return Reply(201, _render(call, runbook), {"Location": location})


def _patch_rules(body: object) -> tuple[str, ...]:
    """The rules a patch needs, as Ironic picks them: ``...:update:owner`` and
    ``...:update:public`` for those attributes, ``...:update`` for any other (and
    for an empty patch).  Raises InvalidInput for a malformed patch."""
    roots = {op.tokens[0] if op.tokens else "" for op in jsonpatch.parse_patch(body)}
    rules = {_PATCH_RULES[root] for root in roots if root in _PATCH_RULES}
    if not rules or roots - set(_PATCH_RULES):
        rules.add(f"{_RB}update")
    return tuple(sorted(rules, key=len))


def _check_owner_and_public(before: Runbook, changes: dict[str, Any]) -> dict[str, Any]:
    """A runbook made public loses its owner; one both public and owned is refused.
    Raises InvalidInput."""
    public = changes.get("public", before.public)
    owner = changes.get("owner", before.owner)
    if public and owner:
        if "owner" in changes or not changes.get("public"):
            raise InvalidInput(
                "There cannot be an owner for a public runbook: remove /owner, or set "
                "/public to false."
            )
        changes["owner"] = None
    return changes


@endpoint(
    f"{_RB}update",
    body=True,
    doc=Operation(
        "Update a runbook (JSON Patch)",
        answers={200: view.RUNBOOK},
        body=patch(PATCHABLE.fields, name="RunbookPatch"),
        feature=_FEATURE,
        errors=_WRITE_ERRORS,
    ),
)
def patch_runbook(call: Call) -> object:
    _require(call)
    rules = _patch_rules(call.body)
    with call.deps.db.begin() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=rules)
        before = {name: getattr(runbook, name) for name in PATCHABLE.fields}
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        if "steps" in changes:
            changes["steps"] = _CHECKS.check_steps(changes["steps"])
        changes = _check_owner_and_public(runbook, changes)
        if changes:
            repo.update_runbook(conn, runbook.id, changes)
            runbook = repo.get_runbook_by_id(conn, runbook.id)
    return _render(call, runbook)


@endpoint(
    f"{_RB}delete",
    doc=Operation("Delete a runbook", answers={204: None}, feature=_FEATURE, errors=_WRITE_ERRORS),
)
def delete_runbook(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=(f"{_RB}delete",))
        repo.destroy_runbook(conn, runbook.id)
    return Reply(204)


# ------------------------------------------------------------- running one on a node


def steps_for_node(
    call: Call, node: Node | NodeBrief, ident: str
) -> tuple[Runbook, list[dict[str, Any]]]:
    """The runbook ``ident`` names and its steps in their ``order``, as the clean or
    service steps of ``node``, if the caller may use it there (Ironic's rule: the
    node has a trait equal to the runbook's name).

    As in Ironic, ``baremetal:runbook:use`` alone is checked (403), not whether the
    caller may read the runbook: its name is a trait of the node the caller acts on.

    Raises:
        NotFound: no such runbook.
        Forbidden: ``baremetal:runbook:use`` refuses the caller.
        InvalidInput: the node lacks the runbook's trait.
    """
    with call.deps.db.read() as conn:
        runbook = repo.get_runbook(conn, ident)
        call.enforce(USE, policy.runbook_target(runbook.owner))
        traits = repo_nodes.get_traits(conn, node.id)
    if allows("runbook_traits", call.version):
        _check_runbook_traits(runbook, node, set(traits))
    elif runbook.name not in traits:
        raise InvalidInput(
            f"This runbook has not been approved for use on this node {node.uuid}: the node "
            f"has no trait {runbook.name}. Ask an administrator to add it to the node's traits."
        )
    ordered = sorted(runbook.steps, key=lambda s: int(s["order"]))
    steps = [{"interface": s["interface"], "step": s["step"], "args": s["args"]} for s in ordered]
    return runbook, steps


def _check_runbook_traits(runbook: Runbook, node: Node | NodeBrief, traits: set[str]) -> None:
    """From 1.112 a runbook runs on a node sharing one of its traits (Ironic).
    Raises InvalidInput."""
    if not runbook.traits:
        raise InvalidInput(
            f"Runbook {runbook.uuid} has no traits configured. Please ask an administrator "
            "to add traits to the runbook."
        )
    if not set(runbook.traits) & traits:
        raise InvalidInput(
            f"This runbook has not been approved for use on this node {node.uuid}. The node "
            f"does not have any of the runbook's traits {sorted(runbook.traits)}. Please ask "
            "an administrator to add a matching trait to your node."
        )


ROUTES = [
    Route("/v1/runbooks", get_runbooks, methods=["GET"]),
    Route("/v1/runbooks", create_runbook, methods=["POST"]),
    Route("/v1/runbooks/{runbook}", get_runbook, methods=["GET"]),
    Route("/v1/runbooks/{runbook}", patch_runbook, methods=["PATCH"]),
    Route("/v1/runbooks/{runbook}", delete_runbook, methods=["DELETE"]),
]
