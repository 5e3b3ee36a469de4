"""/v1/auth: users, projects, role assignments and tokens, and every refusal."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_harness import Api, build, fault_of
from identity_harness import (
    PASSWORD,
    admin,
    login,
    make_node,
    new_token,
    project,
    user,
    with_token,
)

from metalcast.api.routes.tokens import MAX_TOKENS_PER_USER
from metalcast.db import identity
from metalcast.db import tables as t


def refused(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in fault_of(response)


# ------------------------------------------------------------------------- projects


def test_project_lifecycle(builtin: Api) -> None:
    boss = admin(builtin)
    created = boss.post("/v1/auth/projects", {"name": "team-a", "description": "the A team"})
    assert created.status_code == 201
    doc = created.json()
    assert created.headers["location"].endswith(f"/v1/auth/projects/{doc['id']}")
    assert len(doc["id"]) == 32 and doc["enabled"] is True
    assert boss.get(f"/v1/auth/projects/{doc['id']}").json()["name"] == "team-a"
    assert boss.get("/v1/auth/projects/TEAM-A").json()["id"] == doc["id"]
    renamed = boss.patch("/v1/auth/projects/team-a", {"name": "team-z", "description": None})
    assert (renamed.json()["name"], renamed.json()["description"]) == ("team-z", None)
    assert [p["name"] for p in boss.get("/v1/auth/projects").json()["projects"]] == ["team-z"]
    assert boss.delete("/v1/auth/projects/team-z").status_code == 204
    refused(boss.get("/v1/auth/projects/team-z"), 404, "Project team-z could not be found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "a" * 65},
        {"name": "has space"},
        {"name": "-dash-first"},
        {"name": "ünïcode"},
        {"name": "0123456789abcdef0123456789abcdef"},
        {"name": 7},
        {"name": None},
        {"name": "ok", "enabled": "yes"},
        {"name": "ok", "owner": "me"},
        ["name", "ok"],
    ],
)
def test_bad_project_bodies_are_400(builtin: Api, body: Any) -> None:
    response = admin(builtin).post("/v1/auth/projects", body)
    assert response.status_code == 400, response.text
    fault_of(response)
    assert admin(builtin).get("/v1/auth/projects").json()["projects"] == []


def test_names_are_unique_regardless_of_case(builtin: Api) -> None:
    boss = admin(builtin)
    assert boss.post("/v1/auth/projects", {"name": "Team"}).status_code == 201
    refused(boss.post("/v1/auth/projects", {"name": "team"}), 409, "named 'team' already")
    body = {"name": "ADMIN", "password": PASSWORD}
    refused(boss.post("/v1/auth/users", body), 409, "named 'ADMIN' already")


def test_a_project_holding_nodes_is_not_deleted(builtin: Api) -> None:
    boss = admin(builtin)
    a = project(builtin, "team-a")
    node = make_node(boss, name="leased", lessee=a.uuid)
    refused(boss.delete("/v1/auth/projects/team-a"), 409, f"({node['uuid']})")
    assert boss.get("/v1/auth/projects/team-a").status_code == 200


# ---------------------------------------------------------------------------- users


def test_user_lifecycle_never_shows_the_password(builtin: Api) -> None:
    boss = admin(builtin)
    project(builtin, "team-a")
    body = {"name": "alice", "password": PASSWORD, "default_project": "team-a"}
    created = boss.post("/v1/auth/users", body)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["default_project_name"] == "team-a" and doc["roles"] == []
    assert boss.put("/v1/auth/projects/team-a/users/alice/roles/member").status_code == 204
    shown = boss.get("/v1/auth/users/alice").json()
    assert shown["roles"] == [
        {
            "role": "member",
            "user_id": doc["id"],
            "user_name": "alice",
            "project_id": doc["default_project_id"],
            "project_name": "team-a",
            "system": None,
        }
    ]
    listed = boss.get("/v1/auth/users?project=team-a").json()["users"]
    assert [u["name"] for u in listed] == ["alice"]
    every = orjson.dumps([created.json(), shown, listed]).decode()
    with builtin.db.read() as conn:
        stored = identity.get_user(conn, "alice").password_hash
    assert stored is not None
    assert PASSWORD not in every and stored not in every and "password" not in every
    cleared = boss.patch("/v1/auth/users/alice", {"default_project": None, "description": "x"})
    assert (cleared.json()["default_project_id"], cleared.json()["description"]) == (None, "x")
    assert boss.delete("/v1/auth/users/alice").status_code == 204
    assert [u["name"] for u in boss.get("/v1/auth/users").json()["users"]] == ["admin"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "bob"}, "'password' is a required property"),
        ({"password": PASSWORD}, "'name' is a required property"),
        ({"name": "bob", "password": "short"}, "at least 12 characters"),
        ({"name": "bob", "password": "tab\there-is-long"}, "no control characters"),
        ({"name": "bob", "password": "x" * 1025}, "longer than 1024"),
        ({"name": "bob", "password": PASSWORD, "roles": ["admin"]}, "Unknown field(s)"),
        ({"name": "bob", "password": PASSWORD, "password_hash": "$x"}, "Unknown field(s)"),
        ({"name": "b@b", "password": PASSWORD}, "names are 1 to 64"),
        ({"name": "bob", "password": PASSWORD, "default_project": "nope"}, "Project nope"),
        ({"name": "bob", "password": PASSWORD, "enabled": None}, "can not be null"),
    ],
)
def test_bad_user_bodies_are_400(builtin: Api, body: dict[str, Any], words: str) -> None:
    response = admin(builtin).post("/v1/auth/users", body)
    refused(response, 400, words)
    if isinstance(body.get("password"), str):
        assert body["password"] not in fault_of(response)


def test_an_administrator_cannot_lock_themselves_out(builtin: Api) -> None:
    boss = admin(builtin)
    refused(boss.patch("/v1/auth/users/admin", {"enabled": False}), 409, "authenticated as")
    refused(boss.delete("/v1/auth/users/admin"), 409, "authenticated as")
    assert boss.get("/v1/auth/whoami").status_code == 200


def test_unknown_parameters_are_400(builtin: Api) -> None:
    boss = admin(builtin)
    refused(boss.get("/v1/auth/users?limit=1"), 400, "Unknown parameter(s) for listing users")
    refused(boss.get("/v1/auth/projects?x=1"), 400, "Unknown parameter(s)")
    refused(boss.get("/v1/auth/tokens?all=1"), 400, "Unknown parameter(s)")
    refused(boss.get("/v1/auth/role_assignments?scope=galaxy"), 400, "system, project")
    refused(boss.get("/v1/auth/users?project=nope"), 400, "Project nope could not be found")


# ---------------------------------------------------------------------------- roles


def test_role_assignments(builtin: Api) -> None:
    boss = admin(builtin)
    a = project(builtin, "team-a")
    user(builtin, "alice")
    on_a = "/v1/auth/projects/team-a/users/alice/roles/member"
    on_system = "/v1/auth/system/users/alice/roles/reader"
    assert boss.put(on_a).status_code == 204
    assert boss.put(on_a).status_code == 204  # already there: still fine
    assert boss.put(on_system).status_code == 204
    found = boss.get("/v1/auth/role_assignments?user=alice").json()["role_assignments"]
    assert [(r["role"], r["project_id"], r["system"]) for r in found] == [
        ("member", a.uuid, None),
        ("reader", None, "all"),
    ]
    system_only = boss.get("/v1/auth/role_assignments?scope=system").json()["role_assignments"]
    assert {r["user_name"] for r in system_only} == {"admin", "alice"}
    assert boss.delete(on_system).status_code == 204
    refused(boss.delete(on_system), 404, "has no role 'reader' on the system")
    refused(boss.put("/v1/auth/system/users/alice/roles/superuser"), 400, "Unknown role")
    refused(boss.put("/v1/auth/projects/nope/users/alice/roles/member"), 404, "Project nope")
    refused(boss.put("/v1/auth/system/users/nobody/roles/admin"), 404, "User nobody")


# ------------------------------------------------------------------------- who may


def test_project_people_may_not_manage_identities(builtin: Api) -> None:
    a = project(builtin, "team-a")
    user(builtin, "boss-of-a", ("admin", a))
    caller = login(builtin, "boss-of-a")
    for method, path, body in [
        ("GET", "/v1/auth/users", None),
        ("GET", "/v1/auth/users/boss-of-a", None),
        ("GET", "/v1/auth/projects", None),
        ("GET", "/v1/auth/role_assignments", None),
        ("POST", "/v1/auth/users", {"name": "eve", "password": PASSWORD}),
        ("POST", "/v1/auth/projects", {"name": "mine"}),
        ("PATCH", "/v1/auth/projects/team-a", {"enabled": False}),
        ("PUT", "/v1/auth/system/users/boss-of-a/roles/admin", None),
        ("PUT", "/v1/auth/projects/team-a/users/boss-of-a/roles/service", None),
        ("DELETE", "/v1/auth/users/admin", None),
    ]:
        response = caller.request(method, path, body)
        assert response.status_code == 403, (method, path, response.text)
        assert "Access was denied" in fault_of(response)
    with builtin.db.read() as conn:
        assert identity.count_users(conn) == 1


def test_a_system_reader_reads_but_does_not_write(builtin: Api) -> None:
    admin(builtin)
    user(builtin, "auditor", ("reader", None))
    caller = login(builtin, "auditor")
    assert caller.get("/v1/auth/users").status_code == 200
    assert caller.get("/v1/auth/projects").status_code == 200
    assert caller.get("/v1/auth/role_assignments").status_code == 200
    assert caller.post("/v1/auth/projects", {"name": "x"}).status_code == 403
    assert caller.put("/v1/auth/system/users/auditor/roles/admin").status_code == 403


# --------------------------------------------------------------------------- tokens


def _token_doc(caller: Api, **body: Any) -> dict[str, Any]:
    response = caller.post("/v1/auth/tokens", body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_a_token_is_shown_once_and_stored_as_a_hash(builtin: Api) -> None:
    boss = admin(builtin)
    doc = _token_doc(boss, description="ci", expires_in=600)
    secret = doc["token"]
    assert doc["system"] == "all" and doc["status"] == "active" and doc["description"] == "ci"
    expires = datetime.fromisoformat(doc["expires_at"]) - datetime.fromisoformat(doc["created_at"])
    assert timedelta(seconds=599) < expires <= timedelta(seconds=600)
    assert secret not in boss.get("/v1/auth/tokens").text
    assert secret not in boss.get(f"/v1/auth/tokens/{doc['id']}").text
    with builtin.db.read() as conn:
        stored = [dict(r) for r in conn.execute(t.api_tokens.select()).mappings()]
    assert secret not in repr(stored)
    assert stored[0]["secret_hash"] == identity.secret_hash(secret)


def test_token_scope_and_lifetime(builtin: Api) -> None:
    boss = admin(builtin)
    a, b = project(builtin, "team-a"), project(builtin, "team-b")
    user(builtin, "alice", ("member", a), ("reader", b), default=a)
    alice = login(builtin, "alice")
    assert _token_doc(alice)["project_id"] == a.uuid  # the scope logged in to
    assert _token_doc(alice, project="team-b")["project_name"] == "team-b"
    refused(alice.post("/v1/auth/tokens", {"system": True}), 403, "no role on the system")
    refused(alice.post("/v1/auth/tokens", {"project": "nope"}), 400, "Project nope")
    both = {"project": "team-a", "system": True}
    refused(alice.post("/v1/auth/tokens", both), 400, "not both")
    for seconds in (0, -5, 24 * 3600 + 1):
        refused(alice.post("/v1/auth/tokens", {"expires_in": seconds}), 400, "api.token_ttl")
    refused(alice.post("/v1/auth/tokens", {"expires_in": True}), 400, "type 'integer'")
    refused(alice.post("/v1/auth/tokens", {"user": "admin"}), 400, "Unknown field(s)")
    assert boss.patch("/v1/auth/projects/team-b", {"enabled": False}).status_code == 200
    refused(alice.post("/v1/auth/tokens", {"project": "team-b"}), 409, "disabled")


def test_a_token_made_with_a_token_does_not_outlive_it(builtin: Api) -> None:
    boss = admin(builtin)
    short = _token_doc(boss, expires_in=60)
    child = _token_doc(with_token(builtin, short["token"]))
    assert child["expires_at"] <= short["expires_at"]
    grandchild = _token_doc(with_token(builtin, child["token"]), expires_in=30)
    assert grandchild["expires_at"] < short["expires_at"]


def test_users_see_and_revoke_only_their_own_tokens(builtin: Api) -> None:
    boss = admin(builtin)
    a = project(builtin, "team-a")
    user(builtin, "alice", ("member", a))
    user(builtin, "bob", ("member", a))
    alice, bob = login(builtin, "alice"), login(builtin, "bob")
    mine = _token_doc(alice)
    theirs = _token_doc(bob)
    assert [tk["id"] for tk in alice.get("/v1/auth/tokens").json()["tokens"]] == [mine["id"]]
    assert {tk["user_name"] for tk in boss.get("/v1/auth/tokens").json()["tokens"]} == {
        "alice",
        "bob",
    }
    for method in ("GET", "DELETE"):
        response = alice.request(method, f"/v1/auth/tokens/{theirs['id']}")
        refused(response, 404, f"Token {theirs['id']} could not be found")
    assert with_token(builtin, theirs["token"]).get("/v1/auth/whoami").status_code == 200
    assert alice.delete(f"/v1/auth/tokens/{mine['id']}").status_code == 204
    assert alice.delete(f"/v1/auth/tokens/{mine['id']}").status_code == 204  # idempotent
    assert alice.get(f"/v1/auth/tokens/{mine['id']}").json()["status"] == "revoked"
    assert boss.delete(f"/v1/auth/tokens/{theirs['id']}").status_code == 204
    assert with_token(builtin, theirs["token"]).get("/v1/auth/whoami").status_code == 401
    refused(alice.get("/v1/auth/tokens/not-an-id"), 404, "could not be found")


def test_a_token_one_sees_but_may_not_revoke_is_403(tmp_path: Path) -> None:
    # a policy file keeps revoking to system admins; seeing one's own is unchanged
    rules = tmp_path / "policy.yaml"
    rules.write_text('"identity:token:delete": "rule:system_admin"\n')
    for api in build(tmp_path, "builtin", policy_file=rules):
        builtin = Api(api.client, api.db, api.service, api.version, {})
        boss = admin(builtin)
        user(builtin, "alice", ("member", project(builtin, "team-a")))
        alice = login(builtin, "alice")
        mine, theirs = _token_doc(alice), _token_doc(boss)
        assert alice.get(f"/v1/auth/tokens/{mine['id']}").status_code == 200
        refused(
            alice.delete(f"/v1/auth/tokens/{mine['id']}"),
            403,
            "Access was denied to the following resource: identity:token:delete",
        )
        refused(alice.delete(f"/v1/auth/tokens/{theirs['id']}"), 404, "could not be found")
        assert alice.get(f"/v1/auth/tokens/{mine['id']}").json()["status"] == "active"
        assert boss.delete(f"/v1/auth/tokens/{mine['id']}").status_code == 204


def test_a_user_holds_a_bounded_number_of_tokens(builtin: Api) -> None:
    user(builtin, "alice", ("reader", project(builtin, "team-a")))
    alice = login(builtin, "alice")
    with builtin.db.begin() as conn:
        owner = identity.get_user(conn, "alice")
        for _ in range(MAX_TOKENS_PER_USER - 1):
            identity.create_token(conn, owner, project=None, expires_at=datetime(2100, 1, 1))
    new_token(alice)
    refused(alice.post("/v1/auth/tokens", {}), 409, f"holds {MAX_TOKENS_PER_USER} tokens")


def test_expired_tokens_are_pruned_when_a_token_is_made(builtin: Api) -> None:
    boss = admin(builtin)
    with builtin.db.begin() as conn:
        owner = identity.get_user(conn, "admin")
        identity.create_token(conn, owner, project=None, expires_at=datetime(2000, 1, 1))
    assert len(boss.get("/v1/auth/tokens").json()["tokens"]) == 1
    new_token(boss)
    assert [tk["status"] for tk in boss.get("/v1/auth/tokens").json()["tokens"]] == ["active"]


def test_identity_api_answers_at_every_microversion(builtin: Api) -> None:
    boss = admin(builtin)
    for version in ("1.1", "1.51", None):
        assert boss.get("/v1/auth/whoami", version=version).status_code == 200


def test_tokens_need_the_builtin_strategy(api: Api) -> None:
    """Under noauth every caller is an anonymous admin: there is no one to own a token."""
    refused(api.post("/v1/auth/tokens", {}), 400, "uses 'noauth'")
    assert api.get("/v1/auth/whoami").json()["system"] == "all"
    assert api.post("/v1/auth/projects", {"name": "prepared"}).status_code == 201
