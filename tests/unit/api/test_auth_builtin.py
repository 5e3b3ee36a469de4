"""The ``builtin`` strategy: passwords, tokens, scopes, and what takes a right away."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from api_harness import Api, fault_of
from argon2 import PasswordHasher
from identity_harness import (
    ADMIN_PASSWORD,
    PASSWORD,
    admin,
    as_,
    basic,
    login,
    make_node,
    new_token,
    node_names,
    project,
    token_header,
    user,
    with_token,
)
from starlette.datastructures import Headers

from metalcast.api.auth import Credentials
from metalcast.api.auth.builtin import WRONG_PASSWORD, BuiltinAuth
from metalcast.api.auth.cache import CredentialCache
from metalcast.context import RequestContext
from metalcast.db import identity, passwords
from metalcast.db.engine import Database
from metalcast.db.rows import utcnow
from metalcast.errors import Unauthorized


def whoami(caller: Api) -> dict[str, object]:
    response = caller.get("/v1/auth/whoami")
    assert response.status_code == 200, response.text
    found: dict[str, object] = response.json()
    return found


def refusal(caller: Api, path: str = "/v1/nodes") -> str:
    """The message of the 401 ``caller`` gets."""
    response = caller.get(path)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="metalcast"'
    return fault_of(response)


# -------------------------------------------------------------------------- passwords


def test_passwords_are_stored_as_argon2id_hashes() -> None:
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert stored != passwords.hash_password(PASSWORD)  # salted
    assert passwords.verify_password(stored, PASSWORD)
    assert not passwords.verify_password(stored, PASSWORD + "x")
    assert not passwords.verify_password(None, PASSWORD)
    assert not passwords.verify_password("not a hash", PASSWORD)
    assert not passwords.verify_password(stored, "x" * (passwords.MAX_LENGTH + 1))
    assert not passwords.needs_rehash(stored)
    assert passwords.needs_rehash("not a hash")


def test_a_login_with_an_old_hash_stores_a_new_one(builtin: Api) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    alice = user(builtin, "alice")
    with builtin.db.begin() as conn:
        identity.update_user(conn, alice.id, {"password_hash": old})
    assert whoami(login(builtin, "alice"))["user_name"] == "alice"
    with builtin.db.read() as conn:
        renewed = identity.get_user(conn, "alice").password_hash
    assert renewed != old and renewed is not None and not passwords.needs_rehash(renewed)


# ---------------------------------------------------------------------- HTTP Basic


def test_basic_admin_is_a_system_admin(builtin: Api) -> None:
    me = whoami(admin(builtin))
    assert me["user_name"] == "admin" and me["system"] == "all"
    assert me["roles"] == ["admin", "manager", "member", "reader"]
    assert me["project_id"] is None


def test_unknown_user_and_wrong_password_get_the_same_answer(builtin: Api) -> None:
    admin(builtin)
    wrong = refusal(as_(builtin, basic("admin", "not-the-password")))
    unknown = refusal(as_(builtin, basic("nobody", ADMIN_PASSWORD)))
    assert wrong == unknown == WRONG_PASSWORD
    assert refusal(as_(builtin, basic("a" * 65, ADMIN_PASSWORD))) == WRONG_PASSWORD
    assert refusal(as_(builtin, basic("admin@" + "p" * 65, ADMIN_PASSWORD))) == WRONG_PASSWORD
    no_password_set = user(builtin, "svc")
    with builtin.db.begin() as conn:
        identity.update_user(conn, no_password_set.id, {"password_hash": None})
    assert refusal(login(builtin, "svc", "")) == WRONG_PASSWORD


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic !!!notbase64", "not base64 of 'user:password'"),
        ("Basic bm9jb2xvbg==", "not base64 of 'user:password'"),  # "nocolon"
        ("Digest username=admin", "scheme 'Digest' is not supported"),
        ("Bearer gAAAAAB-a-keystone-token", "not a metalcast API token"),
    ],
)
def test_malformed_credentials_are_refused(builtin: Api, header: str, message: str) -> None:
    assert message in refusal(as_(builtin, {"Authorization": header}))


def test_no_credentials_and_bare_identity_headers_get_401(builtin: Api) -> None:
    assert "carries no credentials" in refusal(builtin)
    forged = {"X-Roles": "admin", "OpenStack-System-Scope": "all", "X-User-Id": "x"}
    assert "carries no credentials" in refusal(as_(builtin, forged))
    assert builtin.get("/v1").status_code == 200  # discovery stays public


def _team(api: Api) -> tuple[Api, dict[str, str]]:
    """Projects a and b, a node each; returns the admin and the nodes' names by project."""
    boss = admin(api)
    a, b = project(api, "team-a"), project(api, "team-b")
    make_node(boss, name="node-a", owner=a.uuid)
    make_node(boss, name="node-b", owner=b.uuid)
    return boss, {"team-a": "node-a", "team-b": "node-b"}


def test_basic_scope_is_the_default_project_or_the_only_one(builtin: Api) -> None:
    _team(builtin)
    with builtin.db.read() as conn:
        a, b = identity.get_project(conn, "team-a"), identity.get_project(conn, "team-b")
    user(builtin, "only", ("member", b))
    user(builtin, "both", ("member", a), ("reader", b), default=b)
    user(builtin, "lost", ("member", a), ("member", b))

    assert whoami(login(builtin, "only"))["project_name"] == "team-b"
    assert node_names(login(builtin, "only")) == {"node-b"}
    me = whoami(login(builtin, "both"))
    assert (me["project_name"], me["roles"]) == ("team-b", ["reader"])
    assert node_names(login(builtin, "both@team-a")) == {"node-a"}
    message = refusal(login(builtin, "lost"))
    assert "roles in 2 projects" in message and "'lost@<project>'" in message
    assert whoami(login(builtin, "lost@team-b"))["project_name"] == "team-b"
    assert "no role in a project 'team-a'" in refusal(login(builtin, "only@team-a"))
    assert "no role in a project 'nowhere'" in refusal(login(builtin, "only@nowhere"))
    assert refusal(login(builtin, "only@team-a", "wrong password")) == WRONG_PASSWORD


def test_system_roles_come_before_projects(builtin: Api) -> None:
    a = project(builtin, "team-a")
    user(builtin, "auditor", ("reader", None), ("member", a), default=a)
    me = whoami(login(builtin, "auditor"))
    assert (me["system"], me["roles"]) == ("all", ["reader"])
    assert whoami(login(builtin, "auditor@team-a"))["project_name"] == "team-a"


def test_a_user_without_roles_is_authenticated_but_may_do_nothing(builtin: Api) -> None:
    user(builtin, "nobody")
    caller = login(builtin, "nobody")
    me = whoami(caller)
    assert (me["roles"], me["project_id"], me["system"]) == ([], None, None)
    assert caller.get("/v1/nodes").status_code == 403


# -------------------------------------------------------------------------- tokens


def test_tokens_in_both_headers_carry_their_scope(builtin: Api) -> None:
    boss, _ = _team(builtin)
    with builtin.db.read() as conn:
        a = identity.get_project(conn, "team-a")
    user(builtin, "alice", ("member", a))
    secret = new_token(login(builtin, "alice"))
    assert secret.startswith("mct_")
    for headers in (token_header(secret), {"Authorization": f"Bearer {secret}"}):
        caller = as_(builtin, headers)
        assert whoami(caller)["project_name"] == "team-a"
        assert node_names(caller) == {"node-a"}
    system = with_token(builtin, new_token(boss))
    assert node_names(system) == {"node-a", "node-b"}


def test_forged_identity_headers_grant_nothing(builtin: Api) -> None:
    _team(builtin)
    with builtin.db.read() as conn:
        a, b = identity.get_project(conn, "team-a"), identity.get_project(conn, "team-b")
    user(builtin, "alice", ("member", a))
    forged = {
        "X-Roles": "admin",
        "OpenStack-System-Scope": "all",
        "X-Project-Id": b.uuid,
        "X-User-Id": "someone-else",
    }
    for credentials in (basic("alice", PASSWORD), token_header(new_token(login(builtin, "alice")))):
        caller = as_(builtin, {**credentials, **forged})
        me = whoami(caller)
        assert (me["user_name"], me["project_id"], me["system"]) == ("alice", a.uuid, None)
        assert me["roles"] == ["member", "reader"]
        assert node_names(caller) == {"node-a"}
        assert caller.get("/v1/nodes/node-b").status_code == 404
        assert caller.post("/v1/nodes", {"driver": "fake-hardware"}).status_code == 403


def _expired_token(api: Api, name: str) -> str:
    with api.db.begin() as conn:
        owner = identity.get_user(conn, name)
        _, secret = identity.create_token(
            conn, owner, project=None, expires_at=utcnow() - timedelta(seconds=1)
        )
    return secret


def test_expired_unknown_and_revoked_tokens_get_401(builtin: Api) -> None:
    boss = admin(builtin)
    assert "expired at" in refusal(with_token(builtin, _expired_token(builtin, "admin")))
    assert "unknown" in refusal(with_token(builtin, "mct_" + "A" * 43))

    secret = new_token(boss)
    caller = with_token(builtin, secret)
    assert whoami(caller)["user_name"] == "admin"  # now cached
    [listed] = boss.get("/v1/auth/tokens").json()["tokens"]
    assert boss.delete(f"/v1/auth/tokens/{listed['id']}").status_code == 204
    assert refusal(caller) == "The token was revoked."


def test_disabling_or_deleting_takes_effect_at_once(builtin: Api) -> None:
    boss = admin(builtin)
    a = project(builtin, "team-a")
    user(builtin, "alice", ("member", a))
    user(builtin, "bob", ("member", a))
    alice_token = with_token(builtin, new_token(login(builtin, "alice")))
    alice, bob = login(builtin, "alice"), login(builtin, "bob")
    assert whoami(alice_token)["user_name"] == whoami(alice)["user_name"] == "alice"
    assert whoami(bob)["user_name"] == "bob"

    assert boss.patch("/v1/auth/users/alice", {"enabled": False}).status_code == 200
    assert refusal(alice) == refusal(alice_token) == "User alice is disabled."
    assert boss.patch("/v1/auth/users/alice", {"enabled": True}).status_code == 200
    assert whoami(alice_token)["user_name"] == "alice"

    assert boss.patch("/v1/auth/projects/team-a", {"enabled": False}).status_code == 200
    assert refusal(alice_token) == refusal(bob) == "Project team-a is disabled."
    assert boss.patch("/v1/auth/projects/team-a", {"enabled": True}).status_code == 200

    assert boss.delete("/v1/auth/users/alice").status_code == 204
    assert refusal(alice) == WRONG_PASSWORD
    assert "unknown" in refusal(alice_token)
    assert boss.delete("/v1/auth/projects/team-a").status_code == 204
    assert whoami(bob)["project_id"] is None


def test_a_removed_role_is_gone_at_once(builtin: Api) -> None:
    boss = admin(builtin)
    a = project(builtin, "team-a")
    user(builtin, "alice", ("member", a), ("reader", a))
    token = with_token(builtin, new_token(login(builtin, "alice")))
    assert whoami(token)["roles"] == ["member", "reader"]
    member = "/v1/auth/projects/team-a/users/alice/roles/member"
    assert boss.delete(member).status_code == 204
    assert whoami(token)["roles"] == ["reader"]
    assert whoami(login(builtin, "alice"))["roles"] == ["reader"]
    assert boss.put(member).status_code == 204
    assert whoami(token)["roles"] == ["member", "reader"]


def test_a_changed_password_ends_the_old_one_at_once(builtin: Api) -> None:
    boss = admin(builtin)
    user(builtin, "alice")
    old = login(builtin, "alice")
    assert whoami(old)["user_name"] == "alice"
    new_password = "a whole new password"
    assert boss.patch("/v1/auth/users/alice", {"password": new_password}).status_code == 200
    assert refusal(old) == WRONG_PASSWORD
    assert whoami(login(builtin, "alice", new_password))["user_name"] == "alice"


# ---------------------------------------------------------------------------- cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _authenticate(auth: BuiltinAuth, headers: dict[str, str]) -> RequestContext | None:
    credentials = Credentials(headers=Headers(headers), client="127.0.0.1", request_id="req-x")
    return anyio.run(auth.authenticate, credentials)


def _store(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'id.sqlite'}")
    db.migrate()
    return db


def test_changes_by_another_process_are_seen_within_the_cache_time(tmp_path: Path) -> None:
    db = _store(tmp_path)
    clock = Clock()
    cache = CredentialCache(10, clock=clock)
    auth = BuiltinAuth(db, cache=cache)
    with db.begin() as conn:
        identity.bootstrap_admin(conn, "admin", password_hash=passwords.hash_password(PASSWORD))
        owner = identity.get_user(conn, "admin")
        _, secret = identity.create_token(
            conn, owner, project=None, expires_at=utcnow() + timedelta(hours=1)
        )
    password, token = basic("admin", PASSWORD), token_header(secret)
    first = _authenticate(auth, password)
    assert first is not None and first.request_id == "req-x" and first.is_admin
    assert _authenticate(auth, token) is not None

    # another process changes the password and deletes the token
    with db.begin() as conn:
        identity.update_user(
            conn, owner.id, {"password_hash": passwords.hash_password("another password")}
        )
        identity.prune_tokens(conn, now=utcnow() + timedelta(days=1))
    clock.now += 9.9
    assert _authenticate(auth, password) is not None  # remembered, argon2 not run again
    assert _authenticate(auth, token) is not None  # remembered, no database read
    clock.now += 0.2
    with pytest.raises(Unauthorized, match="wrong"):
        _authenticate(auth, password)
    with pytest.raises(Unauthorized, match="unknown"):
        _authenticate(auth, token)
    db.dispose()


def test_a_token_is_cached_no_longer_than_it_lives(tmp_path: Path) -> None:
    db = _store(tmp_path)
    clock = Clock()
    auth = BuiltinAuth(db, cache=CredentialCache(3600, clock=clock))
    with db.begin() as conn:
        identity.bootstrap_admin(conn, "admin", password_hash=passwords.hash_password(PASSWORD))
        owner = identity.get_user(conn, "admin")
        _, secret = identity.create_token(
            conn, owner, project=None, expires_at=utcnow() + timedelta(seconds=30)
        )
    assert _authenticate(auth, token_header(secret)) is not None
    with db.begin() as conn:  # the token would have expired by then
        identity.revoke_token(conn, identity.list_tokens(conn)[0].id)
    clock.now += 31
    with pytest.raises(Unauthorized, match="revoked"):
        _authenticate(auth, token_header(secret))
    db.dispose()


def test_no_cache_key_is_a_secret(tmp_path: Path) -> None:
    cache = CredentialCache(10)
    context = RequestContext(user="u")
    keys = [cache.password_key("admin", PASSWORD), cache.token_key("abc")]
    for key in keys:
        cache.put(key, context, generation=cache.generation, seconds=10)
    assert all(PASSWORD not in key for key in keys)
    assert cache.password_key("admin", PASSWORD) != CredentialCache(10).password_key(
        "admin", PASSWORD
    )  # keyed per process: useless to anyone who reads one


def test_a_lookup_overtaken_by_a_revocation_is_not_cached() -> None:
    cache = CredentialCache(10)
    generation = cache.generation  # a lookup starts
    cache.forget("token:abc")  # a revocation lands meanwhile
    cache.put("token:abc", RequestContext(user="u"), generation=generation, seconds=10)
    assert cache.get("token:abc") is None
    cache.put("token:abc", RequestContext(user="u"), generation=cache.generation, seconds=10)
    assert cache.get("token:abc") is not None
    cache.forget_user("u")
    assert cache.get("token:abc") is None


def test_zero_cache_seconds_caches_nothing() -> None:
    cache = CredentialCache(0)
    cache.put("k", RequestContext(), generation=cache.generation, seconds=10)
    assert cache.get("k") is None


def test_the_cache_is_bounded() -> None:
    cache = CredentialCache(10, max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, RequestContext(), generation=cache.generation, seconds=10)
    assert [cache.get(k) is not None for k in ("a", "b", "c")] == [False, True, True]
