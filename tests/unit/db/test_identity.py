"""The identity repository: lookups, what deletes take with them, tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from metalcast.db import identity
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.errors import Conflict, NotFound

LATER = datetime(2100, 1, 1)


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_found_by_id_or_by_name_in_any_case(db: Database) -> None:
    with db.begin() as conn:
        created = identity.create_project(conn, {"name": "Team-A"})
        assert identity.get_project(conn, created.uuid).id == created.id
        assert identity.get_project(conn, created.uuid.upper()).id == created.id
        assert identity.get_project(conn, "team-a").id == created.id
        with pytest.raises(NotFound, match="Project team-b could not be found"):
            identity.get_project(conn, "team-b")
        with pytest.raises(Conflict, match="named 'TEAM-A' already exists"):
            identity.create_project(conn, {"name": "TEAM-A"})
        other = identity.create_project(conn, {"name": "team-b"})
        with pytest.raises(Conflict):
            identity.update_project(conn, other.id, {"name": "team-A"})
        assert identity.update_project(conn, other.id, {"name": "Team-B"}).name == "Team-B"


def test_deleting_a_project_takes_its_roles_and_tokens(db: Database) -> None:
    with db.begin() as conn:
        a = identity.create_project(conn, {"name": "a"})
        b = identity.create_project(conn, {"name": "b"})
        alice = identity.create_user(conn, {"name": "alice", "default_project_id": a.id})
        identity.assign_role(conn, alice, "member", project=a)
        identity.assign_role(conn, alice, "reader", project=b)
        identity.create_token(conn, alice, project=a, expires_at=LATER)
        kept, _ = identity.create_token(conn, alice, project=b, expires_at=LATER)
        identity.delete_project(conn, a)
        assert identity.get_user(conn, "alice").default_project_id is None
        assert identity.roles_of(conn, alice.id, project=b) == {"reader"}
        assert identity.role_projects(conn, alice.id) == [b.id]
        assert [tk.id for tk in identity.list_tokens(conn)] == [kept.id]


def test_a_project_that_owns_or_leases_nodes_stays(db: Database) -> None:
    with db.begin() as conn:
        a = identity.create_project(conn, {"name": "a"})
        repo.create_node(
            conn, {"driver": "fake-hardware", "provision_state": "enroll", "owner": a.uuid}
        )
        with pytest.raises(Conflict, match="owns or leases 1 node"):
            identity.delete_project(conn, a)
        assert identity.get_project(conn, "a").id == a.id


def test_deleting_a_user_takes_their_roles_and_tokens(db: Database) -> None:
    with db.begin() as conn:
        alice = identity.create_user(conn, {"name": "alice"})
        bob = identity.create_user(conn, {"name": "bob"})
        for someone in (alice, bob):
            identity.assign_role(conn, someone, "admin", project=None)
            identity.create_token(conn, someone, project=None, expires_at=LATER)
        identity.delete_user(conn, alice.id)
        assert [a.user_name for a in identity.list_assignments(conn)] == ["bob"]
        assert [tk.user_id for tk in identity.list_tokens(conn)] == [bob.id]
        assert identity.find_user(conn, "alice") is None


def test_role_assignments(db: Database) -> None:
    with db.begin() as conn:
        a = identity.create_project(conn, {"name": "a"})
        alice = identity.create_user(conn, {"name": "alice"})
        assert identity.assign_role(conn, alice, "member", project=a)
        assert not identity.assign_role(conn, alice, "member", project=a)
        assert identity.assign_role(conn, alice, "member", project=None)
        assert identity.roles_of(conn, alice.id, project=a) == {"member"}
        assert identity.roles_of(conn, alice.id, project=None) == {"member"}
        assert len(identity.list_assignments(conn, system=False)) == 1
        assert len(identity.list_assignments(conn, project_id=a.id)) == 1
        identity.unassign_role(conn, alice, "member", project=None)
        with pytest.raises(NotFound, match="no role 'member' on the system"):
            identity.unassign_role(conn, alice, "member", project=None)
        assert identity.roles_of(conn, alice.id, project=a) == {"member"}


def test_tokens_keep_only_a_hash_and_expired_ones_are_pruned(db: Database) -> None:
    now = datetime(2030, 1, 1)
    with db.begin() as conn:
        alice = identity.create_user(conn, {"name": "alice"})
        live, secret = identity.create_token(
            conn, alice, project=None, expires_at=now + timedelta(hours=1)
        )
        identity.create_token(conn, alice, project=None, expires_at=now - timedelta(seconds=1))
        stored = [dict(r) for r in conn.execute(sa.select(t.api_tokens)).mappings()]
        assert secret.startswith(identity.TOKEN_PREFIX) and secret not in repr(stored)
        found = identity.find_token(conn, identity.secret_hash(secret))
        assert found is not None and found.id == live.id
        assert identity.find_token(conn, identity.secret_hash(secret + "x")) is None
        with pytest.raises(NotFound):
            identity.get_token(conn, identity.secret_hash(secret))  # ids only
        identity.revoke_token(conn, live.id)
        first = identity.get_token(conn, live.uuid).revoked_at
        identity.revoke_token(conn, live.id)
        assert first is not None and identity.get_token(conn, live.uuid).revoked_at == first
        assert identity.prune_tokens(conn, now=now) == 1
        assert identity.count_tokens(conn, alice.id) == 1
        assert _count(conn, t.api_tokens) == 1


def test_bootstrap_admin_creates_or_restores(db: Database) -> None:
    with db.begin() as conn:
        assert identity.bootstrap_admin(conn, "root", password_hash="h1")
        root = identity.get_user(conn, "root")
        identity.update_user(conn, root.id, {"enabled": False})
        identity.unassign_role(conn, root, "admin", project=None)
        assert not identity.bootstrap_admin(conn, "root", password_hash="h2")
        again = identity.get_user(conn, "root")
        assert (again.enabled, again.password_hash) == (True, "h2")
        assert identity.roles_of(conn, root.id, project=None) == {"admin"}
