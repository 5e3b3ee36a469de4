"""/v1/runbooks/{runbook}/traits (Ironic API 1.112): the traits a runbook serves.

From 1.112 a runbook runs on a node that has one of its traits (before, on a node
with a trait equal to its name: :func:`metalcast.api.routes.runbooks.steps_for_node`).
Reading them is ``baremetal:runbook:get``, changing them ``baremetal:runbook:update``,
as in Ironic; below 1.112 the paths do not exist (404).
"""

from __future__ import annotations

from starlette.routing import Route

from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Operation, array, no_content, obj, string
from metalcast.api.routes.runbooks import GET, load
from metalcast.api.schema import MAX_TRAITS, Field, check_trait, check_traits, validate_body
from metalcast.api.versions import allows
from metalcast.db import runbooks as repo
from metalcast.errors import InvalidInput, NotFound

_UPDATE = "baremetal:runbook:update"
_FEATURE = "runbook_traits"
_TRAITS = obj({"traits": array(string(maxLength=255), maxItems=MAX_TRAITS)}, required=("traits",))
_BODY = {"traits": Field("list", nullable=False, max_length=None)}


def _require(call: Call) -> None:
    if not allows(_FEATURE, call.version):
        raise NotFound("The API version does not allow runbook traits")


def _set(call: Call, *, traits: list[str] | None, add: str | None = None) -> None:
    """Replace the runbook's traits with ``traits``, or add ``add`` to them."""
    with call.deps.db.begin() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=(_UPDATE,))
        if traits is None:
            traits = [*runbook.traits, *([add] if add and add not in runbook.traits else [])]
        if len(traits) > MAX_TRAITS:
            raise InvalidInput(f"A runbook has at most {MAX_TRAITS} traits.")
        repo.update_runbook(conn, runbook.id, {"traits": traits})


@endpoint(
    GET,
    doc=Operation("List a runbook's traits", answers={200: _TRAITS}, feature=_FEATURE),
)
def get_traits(call: Call) -> object:
    _require(call)
    with call.deps.db.read() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=(GET,))
    return {"traits": list(runbook.traits)}


@endpoint(
    _UPDATE,
    body=True,
    doc=no_content("Replace a runbook's traits", body=_TRAITS, feature=_FEATURE),
)
def put_traits(call: Call) -> object:
    _require(call)
    body = validate_body(
        call.body, _BODY, what="traits request", version=call.version, required=("traits",)
    )
    _set(call, traits=list(dict.fromkeys(check_traits(body["traits"]))))
    return Reply(204)


@endpoint(
    _UPDATE,
    body=True,
    doc=no_content(
        "Add a trait to a runbook", feature=_FEATURE, location=True, body_required=False
    ),
)
def put_trait(call: Call) -> object:
    _require(call)
    if call.body:
        raise InvalidInput("No body should be provided when adding a trait")
    trait = check_trait(call.args["trait"])
    _set(call, traits=None, add=trait)
    location = call.url("v1", "runbooks", call.args["runbook"], "traits", trait)
    return Reply(204, headers={"Location": location})


@endpoint(_UPDATE, doc=no_content("Remove every trait of a runbook", feature=_FEATURE))
def delete_traits(call: Call) -> object:
    _require(call)
    _set(call, traits=[])
    return Reply(204)


@endpoint(_UPDATE, doc=no_content("Remove a trait of a runbook", feature=_FEATURE))
def delete_trait(call: Call) -> object:
    _require(call)
    with call.deps.db.begin() as conn:
        runbook = load(conn, call, ident=call.args["runbook"], actions=(_UPDATE,))
        # removing a trait the runbook lacks is no error (Ironic)
        kept = [t for t in runbook.traits if t != call.args["trait"]]
        repo.update_runbook(conn, runbook.id, {"traits": kept})
    return Reply(204)


_PATH = "/v1/runbooks/{runbook}/traits"
ROUTES = [
    Route(_PATH, get_traits, methods=["GET"]),
    Route(_PATH, put_traits, methods=["PUT"]),
    Route(_PATH, delete_traits, methods=["DELETE"]),
    Route(_PATH + "/{trait}", put_trait, methods=["PUT"]),
    Route(_PATH + "/{trait}", delete_trait, methods=["DELETE"]),
]
