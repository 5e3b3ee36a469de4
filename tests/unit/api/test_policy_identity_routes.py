"""The identity API (users, projects, roles, tokens), every persona: the API answers
what the persona matrix says.

The personas are users of the ``builtin`` strategy (the token routes exist for no
one else), each with the persona's role in the owner, lessee or another project or
on the system, calling with a token of their own.  ``test_policy_routes.py`` walks
Ironic's API with header identities the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_harness import Api
from policy_matrix import IDENTITY_ACTIONS, MATRIX, PERSONAS, Action
from policy_walk import builtin_users, judge, portal_api, sender, settle, with_headers
from policy_world import World, prepare

from metalcast.api.policy.callers import Caller


class BuiltinWorld(World):
    """The matrix's objects in an app with builtin users, one per persona."""

    def __init__(self, api: Api) -> None:
        made = builtin_users(api.db, PERSONAS)
        self.tokens = made["tokens"]
        self.api = api
        admin = self.as_name("root")
        super().__init__(
            sender(admin), settle=lambda node: settle(api), projects=made["projects"], identity=True
        )

    def as_name(self, name: str) -> Api:
        token = self.tokens.get(name)
        return with_headers(self.api, {"X-Auth-Token": token} if token else {})

    def as_caller(self, caller: Caller) -> Api:
        return self.as_name(caller.name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinWorld]:
    with portal_api(tmp_path_factory.mktemp("policy-identity"), "builtin") as api:
        yield BuiltinWorld(api)


def perform(world: BuiltinWorld, caller: Caller, action: Action) -> httpx.Response:
    api = world.as_caller(caller)
    if caller.role is None and action.fresh == "own token":
        # without credentials there is no token of one's own to name
        return api.request(action.method, "/v1/auth/tokens/none", None)
    path, body, _ = prepare(world, action, sender(api))
    return api.request(action.method, path, body)


@pytest.mark.parametrize("action", IDENTITY_ACTIONS, ids=[a.name for a in IDENTITY_ACTIONS])
def test_each_persona_gets_what_the_matrix_says(world: BuiltinWorld, action: Action) -> None:
    wrong = []
    for caller in PERSONAS:
        expected = MATRIX[action.name][caller.name]
        response = perform(world, caller, action)
        problem = judge(action, expected, response)
        if problem:
            wrong.append(f"{caller.name}: expected {expected.name}, got {problem}")
    assert not wrong, f"{action.method} {action.path}:\n" + "\n".join(wrong)


def test_token_listings_show_ones_own_and_a_system_admin_everyones(world: BuiltinWorld) -> None:
    everyone = {
        doc["user_name"] for doc in world.as_name("root").get("/v1/auth/tokens").json()["tokens"]
    }
    assert {p.user for p in PERSONAS if p.user} <= everyone
    wrong = []
    for caller in PERSONAS[:-1]:
        listed = world.as_caller(caller).get("/v1/auth/tokens").json()["tokens"]
        owners = {doc["user_name"] for doc in listed}
        expected = everyone if caller.name == "system admin" else {caller.user}
        if owners != expected:
            wrong.append(f"{caller.name}: lists tokens of {sorted(owners)}")
    assert not wrong, "\n".join(wrong)


def test_whoami_shows_each_persona_as_the_matrix_names_it(world: BuiltinWorld) -> None:
    for caller in PERSONAS[:-1]:
        me = world.as_caller(caller).get("/v1/auth/whoami").json()
        assert me["user_name"] == caller.user
        assert caller.role in me["roles"]
        if caller.project is None:
            assert (me["system"], me["project_name"]) == ("all", None)
        else:
            assert (me["system"], me["project_name"]) == (None, caller.project)
    assert world.as_name("anonymous").get("/v1/auth/whoami").status_code == 401
