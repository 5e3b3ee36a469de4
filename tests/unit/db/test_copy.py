"""Copying a SQLite database into PostgreSQL (what ``metalcast db copy`` does): every
table in foreign-key order, sealed values as they are, the id sequences past the
copied ids, and only into an empty database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from metalcast.db import allocations, copy, identity, volumes
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.secrecy import SecretBox

BMC_PASSWORD = "Copied-Bmc-Pass-9c1d"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def source(tmp_path: Path, box: SecretBox) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'metalcast.sqlite'}", secret_box=box)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def target(postgres_url: str, box: SecretBox) -> Iterator[Database]:
    db = Database(postgres_url, secret_box=box)
    db.migrate()
    yield db
    db.dispose()


def _fill(db: Database) -> None:
    """A bit of every kind of row, and ids with gaps (a node deleted)."""
    with db.begin() as conn:
        values = {"driver": "fake-hardware", "provision_state": "enroll"}
        gone = repo.create_node(conn, {**values, "name": "gone"})
        node = repo.create_node(
            conn, {**values, "name": "kept", "driver_info": {"ipmi_password": BMC_PASSWORD}}
        )
        repo.destroy_node(conn, gone.id)
        repo.set_traits(conn, node.id, ["CUSTOM_A", "CUSTOM_B"])
        repo.create_port(conn, {"node_id": node.id, "address": "52:54:00:00:00:01"})
        repo.add_history(conn, node.id, event="enrolled", event_type="test", user="alice")
        volumes.create_volume_connector(
            conn, {"node_id": node.id, "type": "iqn", "connector_id": "iqn.x"}
        )
        allocations.create_allocation(conn, {"resource_class": "gold", "name": "a1"})
        project = identity.create_project(conn, {"name": "team"})
        alice = identity.create_user(conn, {"name": "alice", "default_project_id": project.id})
        identity.assign_role(conn, alice, "member", project=project)


def test_every_row_is_copied_as_it_is_stored(
    source: Database, target: Database, box: SecretBox
) -> None:
    _fill(source)
    seen: list[tuple[str, int, int]] = []
    copied = copy.copy_rows(source, target, batch=1, progress=lambda *a: seen.append(a))
    with source.read() as conn:
        expected = copy.counts(conn)
    assert {c.table: c.rows for c in copied} == expected
    assert ("node_traits", 2, 2) in seen and ("node_traits", 1, 2) in seen
    assert [c.table for c in copied].index("nodes") < [c.table for c in copied].index("ports")
    with source.read() as conn:
        stored = conn.execute(sa.select(t.nodes.c.driver_info)).scalar_one()
    with target.read() as conn:
        node = repo.get_node(conn, "kept")
        assert repo.get_traits(conn, node.id) == ["CUSTOM_A", "CUSTOM_B"]
        (event,) = repo.list_history(conn, node.id)
        assert (event.user, event.event) == ("alice", "enrolled")
        alice = identity.get_user(conn, "alice")
        assert identity.roles_of(conn, alice.id, project=identity.get_project(conn, "team")) == {
            "member"
        }
    assert node.driver_info == stored  # the sealed value, byte for byte
    assert box.reveal(node.driver_info)["ipmi_password"] == BMC_PASSWORD


def test_new_rows_get_ids_past_the_copied_ones(source: Database, target: Database) -> None:
    _fill(source)
    copy.copy_rows(source, target)
    with source.read() as conn:
        largest = conn.execute(sa.select(sa.func.max(t.nodes.c.id))).scalar_one()
    with target.begin() as conn:
        values = {"driver": "fake-hardware", "provision_state": "enroll"}
        assert repo.create_node(conn, {**values, "name": "new"}).id == largest + 1
        # a table copied empty starts at 1
        assert (
            identity.create_token(
                conn, identity.get_user(conn, "alice"), project=None, expires_at=repo.utcnow()
            )[0].id
            == 1
        )


def test_a_target_with_rows_is_refused_and_left_alone(source: Database, target: Database) -> None:
    _fill(source)
    with target.begin() as conn:
        identity.create_project(conn, {"name": "theirs"})
    with pytest.raises(copy.TargetNotEmpty, match=r"already holds rows: projects \(1\)") as caught:
        copy.check_empty(target)
    assert "***@" in str(caught.value)
    with pytest.raises(copy.TargetNotEmpty):
        copy.copy_rows(source, target)
    with target.read() as conn:
        assert copy.counts(conn)["nodes"] == 0
