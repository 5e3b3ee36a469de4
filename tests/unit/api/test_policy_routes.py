"""Every route, every persona: the API answers what the persona matrix says.

The app runs with header identities (``OpenStack-System-Scope: all`` for system
scope, ``X-Project-Id`` + ``X-Roles`` otherwise) on one database per module: a node
owned by the owner project and leased to the lessee project (with a port, a
portgroup, a volume connector and target, BIOS settings and history), and nodes of
other projects for the listings, an allocation of each project, a node an
allocation took, a deploy template (``policy_world.World``).  Requests that change or
delete something get a fresh object of their own for each persona.  The identity
API's routes are walked with builtin users in ``test_policy_identity_routes.py``;
``test_the_matrix_walks_every_route`` checks that the two walks leave no route out.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from api_harness import Api, fault_of
from policy_matrix import (
    ACTIONS,
    BAREMETAL_ACTIONS,
    MATRIX,
    NOT_WALKED,
    PERSONAS,
    SHOWS_TARGET_PROPERTIES,
    Action,
    Outcome,
    redacted_fields,
    visible_allocations,
    visible_nodes,
)
from policy_walk import identity_headers, judge, portal_api, sender, settle, with_headers
from policy_world import World, fill, prepare
from starlette.routing import Match, Route

from metalcast.api.policy import REDACTED
from metalcast.api.policy.callers import Caller, Scope
from metalcast.db import tables as t

_SYSTEM_ADMIN = {"X-Roles": "admin", "X-User-Id": "root", "OpenStack-System-Scope": "all"}


class HeaderWorld(World):
    """The matrix's objects in an app with header identities."""

    def __init__(self, api: Api) -> None:
        self.api = with_headers(api, _SYSTEM_ADMIN)
        super().__init__(sender(self.api), settle=lambda node: settle(api))

    def as_caller(self, caller: Caller) -> Api:
        return with_headers(self.api, identity_headers(caller))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeaderWorld]:
    with portal_api(tmp_path_factory.mktemp("policy-routes"), "header") as api:
        yield HeaderWorld(api)


# ----------------------------------------------------------------------- the walk


def perform(world: HeaderWorld, caller: Caller, action: Action) -> httpx.Response:
    api = world.as_caller(caller)
    path, body, _ = prepare(world, action)
    response = api.request(action.method, path, body)
    if response.status_code == 202:
        settle(world.api)
    return response


@pytest.mark.parametrize("action", BAREMETAL_ACTIONS, ids=[a.name for a in BAREMETAL_ACTIONS])
def test_each_persona_gets_what_the_matrix_says(world: HeaderWorld, action: Action) -> None:
    wrong = []
    for caller in PERSONAS:
        expected = MATRIX[action.name][caller.name]
        response = perform(world, caller, action)
        problem = judge(action, expected, response)
        if problem:
            wrong.append(f"{caller.name}: expected {expected.name}, got {problem}")
    assert not wrong, f"{action.method} {action.path}:\n" + "\n".join(wrong)


def test_a_malformed_identifier_is_400_whoever_asks(world: HeaderWorld) -> None:
    # Ironic checks an identifier's form before it looks the object up or asks the
    # policy: 400 to every caller with credentials, also to those who could not see
    # the object, which tells them nothing about it
    leased = uuid.UUID(world.leased)
    paths = [
        f"/v1/nodes/{leased.hex}",
        "/v1/nodes/not%20a%20name",
        f"/v1/ports/{{{world.ports['leased']}}}",
    ]
    wrong = []
    for caller, path in itertools.product(PERSONAS, paths):
        response = world.as_caller(caller).get(path)
        expected = 401 if caller.name == "anonymous" else 400
        if response.status_code != expected:
            wrong.append(f"{caller.name} {path}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", ["show node", "show port", "show portgroup"])
def test_an_upper_case_uuid_is_the_same_object_to_every_persona(
    world: HeaderWorld, name: str
) -> None:
    action = next(a for a in ACTIONS if a.name == name)
    names = {k: v.upper() for k, v in world.fresh(None).items()}
    wrong = []
    for caller in PERSONAS:
        response = world.as_caller(caller).get(fill(action.path, names, world))
        problem = judge(action, MATRIX[name][caller.name], response)
        if problem:
            wrong.append(f"{caller.name}: {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_walks_every_route(world: HeaderWorld) -> None:
    # the identity actions are walked with builtin users: test_policy_identity_routes.py
    routes = [r for r in world.api.client.app.routes if isinstance(r, Route)]
    walked = set()
    for action in ACTIONS:
        scope = {"type": "http", "path": action.path.split("?")[0], "method": action.method}
        route = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
        walked.add((route.path, action.method))
    missing = []
    for route in routes:
        # the dashboard's routes have no rule of their own: they call the API routes
        # walked here, as their caller (tests/unit/api/test_dashboard.py)
        if route.path in NOT_WALKED or route.path.startswith("/dashboard"):
            continue
        methods = (route.methods or set()) - {"HEAD"}
        # a vendor passthru route takes every method: one of them is enough
        if len(methods) > 3 and any(path == route.path for path, _ in walked):
            continue
        missing += [f"{m} {route.path}" for m in sorted(methods) if (route.path, m) not in walked]
    assert not missing, "routes the persona matrix does not walk: " + ", ".join(missing)


# ------------------------------------------------------------------- listings


LISTINGS = {
    "node": ("/v1/nodes/detail", "nodes", "nodes"),
    "port": ("/v1/ports/detail", "ports", "ports"),
    "portgroup": ("/v1/portgroups/detail", "portgroups", "portgroups"),
    "volume": ("/v1/volume/connectors/detail", "connectors", "connectors"),
}


@pytest.mark.parametrize("kind", [*LISTINGS, "volume targets"])
def test_listings_show_each_persona_what_its_project_owns_or_leases(
    world: HeaderWorld, kind: str
) -> None:
    path, key, attribute = LISTINGS.get(kind, ("/v1/volume/targets/detail", "targets", "targets"))
    by_uuid = {uuid: label for label, uuid in getattr(world, attribute).items()}
    wrong = []
    for caller in PERSONAS[:-1]:
        expected = visible_nodes(caller, kind.split()[0])
        response = world.as_caller(caller).get(path)
        if expected is None:
            if response.status_code != 403:
                wrong.append(f"{caller.name}: {response.status_code}, expected 403")
            continue
        shown = {by_uuid[doc["uuid"]] for doc in response.json()[key] if doc["uuid"] in by_uuid}
        if shown != expected:
            wrong.append(f"{caller.name}: sees {sorted(shown)}, expected {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


def test_allocation_listings_show_each_persona_its_projects(world: HeaderWorld) -> None:
    by_uuid = {uuid: label for label, uuid in world.allocations.items()}
    wrong = []
    for caller in PERSONAS[:-1]:
        expected = visible_allocations(caller)
        response = world.as_caller(caller).get("/v1/allocations")
        if expected is None:
            if response.status_code != 403:
                wrong.append(f"{caller.name}: {response.status_code}, expected 403")
            continue
        docs = response.json()["allocations"]
        shown = {by_uuid[doc["uuid"]] for doc in docs if doc["uuid"] in by_uuid}
        if shown != expected:
            wrong.append(f"{caller.name}: sees {sorted(shown)}, expected {sorted(expected)}")
        own = world.project_id(caller.project)
        if caller.scope is not Scope.SYSTEM and any(d["owner"] != own for d in docs):
            wrong.append(f"{caller.name}: sees another project's allocation")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------- what is shown


def _set_node_internals(world: HeaderWorld) -> None:
    nodes = t.nodes.c
    with world.api.db.begin() as conn:
        conn.execute(
            t.nodes.update()
            .where(nodes.uuid == world.leased)
            .values(
                last_error="BMC at 10.0.0.7 refused",
                driver_info={"fake_info": "rack 7"},
                driver_internal_info={"agent_url": "http://10.1.1.1:9999"},
            )
        )


def test_node_fields_are_redacted_for_who_may_not_see_them(world: HeaderWorld) -> None:
    _set_node_internals(world)
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show node"][caller.name] is not Outcome.ALLOWED:
            continue
        api = world.as_caller(caller)
        shown = api.get(f"/v1/nodes/{world.leased}").json()
        listed = next(
            n for n in api.get("/v1/nodes/detail").json()["nodes"] if n["uuid"] == world.leased
        )
        expected = redacted_fields(caller.name)
        for name, doc in (("show", shown), ("list", listed)):
            redacted = {f for f, (_, notice) in REDACTED.items() if doc[f] == notice()}
            if redacted != expected:
                wrong.append(f"{caller.name} ({name}): {sorted(redacted)} != {sorted(expected)}")
        if "last_error" not in expected and shown["last_error"] != "BMC at 10.0.0.7 refused":
            wrong.append(f"{caller.name}: last_error is {shown['last_error']!r}")
    assert not wrong, "\n".join(wrong)


def test_lessee_sees_last_error_in_states_as_ironic_shows_it(world: HeaderWorld) -> None:
    _set_node_internals(world)
    lessee = world.as_caller(Caller(Scope.LESSEE, "reader"))
    assert lessee.get(f"/v1/nodes/{world.leased}").json()["last_error"].startswith("** ")
    states = lessee.get(f"/v1/nodes/{world.leased}/states").json()
    assert states["last_error"] == "BMC at 10.0.0.7 refused"


def test_target_properties_only_for_who_may_view_them(world: HeaderWorld) -> None:
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show target"][caller.name] is not Outcome.ALLOWED:
            continue
        api = world.as_caller(caller)
        shown = api.get(f"/v1/volume/targets/{world.targets['leased']}").json()["properties"]
        assert "chap-secret" not in str(shown)  # a secret is masked even for who may see
        visible = shown == {"auth_password": "******"}
        if visible != (caller.name in SHOWS_TARGET_PROPERTIES):
            wrong.append(f"{caller.name}: {shown}")
        if not visible and set(shown) != {"redacted_contents"}:
            wrong.append(f"{caller.name}: not Ironic's redaction: {shown}")
    assert not wrong, "\n".join(wrong)


def test_responses_are_json_errors_in_ironics_shape(world: HeaderWorld) -> None:
    other = world.as_caller(Caller(Scope.OTHER, "member"))
    response = other.get(f"/v1/nodes/{world.leased}")
    assert response.status_code == 404
    assert fault_of(response) == f"Node {world.leased} could not be found."
    port = other.get(f"/v1/ports/{world.ports['leased']}")
    assert fault_of(port) == f"Port {world.ports['leased']} could not be found."
    body = orjson.loads(other.get("/v1/chassis").content)
    assert "baremetal:chassis:get" in body["error_message"]
