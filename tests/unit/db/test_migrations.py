"""The Alembic migrations, on SQLite and on PostgreSQL: a fresh database reaches the
schema of ``tables.py``, down to nothing and up again too, and an existing one
upgrades (and downgrades) without losing its nodes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db import volumes
from metalcast.db.engine import MIGRATIONS, Database, DatabaseError

HEAD = "0011"


def _alembic(db: Database, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def _insert_old_node(conn: sa.Connection, name: str) -> int:
    """A node written with the columns every revision has (the repository reads the
    newest schema's)."""
    conn.execute(
        sa.text(
            "INSERT INTO nodes (uuid, name, driver, driver_info, driver_internal_info, "
            "properties, instance_info, extra, provision_state, created_at) VALUES "
            "('11111111-2222-3333-4444-555555555555', :name, 'fake-hardware', '{}', '{}', "
            "'{}', '{}', '{}', 'enroll', '2026-01-01')"
        ),
        {"name": name},
    )
    node_id: int = conn.execute(
        sa.text("SELECT id FROM nodes WHERE name = :n"), {"n": name}
    ).scalar_one()
    return node_id


def _differences(db: Database) -> list[object]:
    """What Alembic's autogenerate finds between the database and ``tables.py``."""
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), t.metadata))


def test_a_fresh_database_reaches_head_with_the_declared_schema(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    assert _revision(db) == HEAD
    assert set(t.metadata.tables) <= _tables(db)
    assert _differences(db) == []
    db.dispose()


def test_every_migration_goes_down_to_nothing_and_up_again(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    _alembic(db, "downgrade", "base")
    assert _revision(db) is None
    assert _tables(db) <= {"alembic_version"}
    db.migrate()
    assert _revision(db) == HEAD
    assert _differences(db) == []
    with db.begin() as conn:
        node = repo.create_node(conn, {"driver": "fake-hardware", "provision_state": "enroll"})
        assert node.maintenance is False and node.retired is False
    db.dispose()


def test_upgrading_from_0001_keeps_the_nodes(database_url: str) -> None:
    db = Database(database_url)
    _alembic(db, "upgrade", "0001")
    assert "volume_connectors" not in _tables(db)
    with db.begin() as conn:
        node_id = _insert_old_node(conn, "kept")
        conn.execute(
            sa.text(
                "INSERT INTO ports (uuid, address, node_id, local_link_connection, "
                "internal_info, extra, created_at) VALUES ('p-1', '52:54:00:00:00:01', "
                ":node_id, '{}', '{}', '{}', '2026-01-01')"
            ),
            {"node_id": node_id},
        )

    _alembic(db, "upgrade", "0002")
    assert _revision(db) == "0002"
    db.migrate()
    assert _revision(db) == HEAD
    with db.begin() as conn:
        assert repo.get_node(conn, "kept").id == node_id
        assert len(repo.list_ports(conn, repo.Page(), node_id=node_id)) == 1
        volumes.create_volume_connector(
            conn, {"node_id": node_id, "type": "iqn", "connector_id": "iqn.kept"}
        )
    db.dispose()


def test_downgrading_to_0001_keeps_the_nodes(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    with db.begin() as conn:
        repo.create_node(
            conn, {"driver": "fake-hardware", "name": "kept", "provision_state": "enroll"}
        )
    _alembic(db, "downgrade", "0001")
    assert _revision(db) == "0001"
    assert not {"volume_connectors", "volume_targets", "bios_settings"} & _tables(db)
    with db.begin() as conn:
        names = conn.execute(sa.text("SELECT name FROM nodes")).scalars().all()
    assert names == ["kept"]
    db.dispose()


def _insert_node_with_uuid(conn: sa.Connection, name: str, uuid: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO nodes (uuid, name, driver, driver_info, driver_internal_info, "
            "properties, instance_info, extra, provision_state, created_at) VALUES "
            "(:uuid, :name, 'fake-hardware', '{}', '{}', '{}', '{}', '{}', 'enroll', "
            "'2026-01-01')"
        ),
        {"uuid": uuid, "name": name},
    )


def test_0004_rewrites_uuids_in_canonical_lower_case(database_url: str) -> None:
    db = Database(database_url)
    _alembic(db, "upgrade", "0003")
    upper = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
    shuffled = "1111111-12222-4333-8444-555555555555"
    lower = "abcdef99-8888-4777-8666-555555555555"
    with db.begin() as conn:
        _insert_node_with_uuid(conn, "upper", upper)
        _insert_node_with_uuid(conn, "shuffled", shuffled)
        _insert_node_with_uuid(conn, "lower", lower)
        # a duplicate made before: the same UUID in upper case
        _insert_node_with_uuid(conn, "twin", lower.upper())
    db.migrate()
    with db.begin() as conn:
        rows = dict(conn.execute(sa.text("SELECT name, uuid FROM nodes")).all())
        assert repo.get_node(conn, upper).name == "upper"
    assert rows == {
        "upper": upper.lower(),
        "shuffled": "11111111-2222-4333-8444-555555555555",
        "lower": lower,
        "twin": lower.upper(),  # left as it was: its canonical UUID is taken
    }
    db.dispose()


def test_a_database_a_newer_version_migrated_is_refused_clearly(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match=r"migrated by a newer metalcast \(revision 9999\)"):
        db.migrate()
    db.dispose()


FUTURE = '''"""a newer metalcast's revision: {kind}

Revision ID: 9001
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None
oldest_compatible = "{oldest}"


def upgrade() -> None:
    op.add_column("nodes", sa.Column("future_field", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("future_field")
'''


def _newer_version(tmp_path: Path, *, oldest_compatible: str) -> Path:
    """This version's migrations plus revision 9001 of a newer one, which adds a
    nullable column (an expand revision when ``oldest_compatible`` is this head)."""
    root = tmp_path / "newer-migrations"
    shutil.copytree(MIGRATIONS, root, ignore=shutil.ignore_patterns("__pycache__"))
    kind = "expand" if oldest_compatible == HEAD else "contract"
    text = FUTURE.format(kind=kind, head=HEAD, oldest=oldest_compatible)
    (root / "versions" / "9001_future.py").write_text(text)
    return root


def test_this_version_runs_on_a_database_a_newer_one_expanded(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(database_url)
    db.migrate(script_location=_newer_version(tmp_path, oldest_compatible=HEAD))
    assert _revision(db) == "9001"
    with db.read() as conn:
        row = conn.execute(sa.select(t.schema_compat)).one()
    assert (row.revision, row.oldest_compatible) == ("9001", HEAD)
    with db.begin() as conn:  # the newer version writes a node with its new field
        conn.execute(sa.text("UPDATE nodes SET future_field = 'x'"))
    db.dispose()

    older = Database(database_url)  # this version, started beside the newer one
    with caplog.at_level(logging.WARNING, logger="metalcast.db.engine"):
        older.migrate()
    assert "revision 9001, which a newer metalcast applied" in caplog.text
    assert _revision(older) == "9001"  # nothing migrated back or forth
    with older.begin() as conn:  # and it reads and writes nodes as usual
        node = repo.create_node(
            conn, {"driver": "fake-hardware", "name": "from-older", "provision_state": "enroll"}
        )
        assert repo.get_node(conn, node.uuid).name == "from-older"
        future = conn.execute(
            sa.text("SELECT future_field FROM nodes WHERE name = 'from-older'")
        ).scalar()
    assert future is None  # the newer version copes with rows the older one wrote
    older.dispose()


def test_this_version_refuses_a_database_a_newer_one_contracted(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    db.migrate(script_location=_newer_version(tmp_path, oldest_compatible="9001"))
    with pytest.raises(
        DatabaseError,
        match=r"revision 9001\), and its schema needs the code of revision 9001 or newer",
    ):
        db.migrate()
    db.dispose()


def test_an_upgrade_records_which_older_code_may_run(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    with db.read() as conn:
        row = conn.execute(sa.select(t.schema_compat)).one()
    assert (row.revision, row.oldest_compatible) == (HEAD, "0004")
    db.migrate()  # again: still one row
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.schema_compat)).scalar() == 1
    db.dispose()
