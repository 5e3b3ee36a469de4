"""Secrets at rest: sealed wherever a row is written, scrubbed from free text, and
gone from the SQLite files (database, write-ahead log, shared memory) once replaced."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from metalcast.db import allocations as repo_alloc
from metalcast.db import audit as audit_db
from metalcast.db import deploy_templates as repo_tpl
from metalcast.db import repository as repo
from metalcast.db import rows, sealing, volumes
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.secrecy import MASK, SecretBox, is_sealed

BMC_PASSWORD = "Bmc-Pass-7f3a9c"
NUMERIC_PASSWORD = 918273645546
URL_PASSWORD = "Url-Pass-1b2c3d"
RESCUE_PASSWORD = "Rescue-Pass-4e5f6a"
USER_DATA = "#cloud-config\nchpasswd: {list: 'root:User-Data-8a9b0c'}"
PORT_TOKEN = "Port-Token-2d4f6h"
DELETED_PASSWORD = "Deleted-Pass-3c5e7g"
SECRETS = (
    BMC_PASSWORD,
    str(NUMERIC_PASSWORD),
    URL_PASSWORD,
    RESCUE_PASSWORD,
    "User-Data-8a9b0c",
    PORT_TOKEN,
)
IMAGE = f"http://mirror:{URL_PASSWORD}@images.example/os.raw"


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def box(key: bytes) -> SecretBox:
    return SecretBox(key)


@pytest.fixture
def db(database_url: str, box: SecretBox) -> Iterator[Database]:
    database = Database(database_url, secret_box=box)
    database.migrate()
    yield database
    database.dispose()


def _create(db: Database, name: str = "n1") -> int:
    with db.begin() as conn:
        node = repo.create_node(
            conn,
            {
                "driver": "fake-hardware",
                "name": name,
                "provision_state": "enroll",
                "driver_info": {
                    "ipmi_username": "admin",
                    "bmc": {"auth": {"ipmi_password": BMC_PASSWORD}},
                    "redfish_password": NUMERIC_PASSWORD,
                },
                "instance_info": {
                    "image_source": IMAGE,
                    "rescue_password": RESCUE_PASSWORD,
                    "configdrive": {"user_data": USER_DATA},
                },
            },
        )
        return node.id


def _raw(db: Database, table: str, column: str) -> str:
    with db.read() as conn:
        return str(conn.exec_driver_sql(f"SELECT {column} FROM {table}").fetchall())


def test_secrets_are_sealed_at_any_depth_and_revealed_whole(db: Database, box: SecretBox) -> None:
    node_id = _create(db)
    stored = _raw(db, "nodes", "driver_info") + _raw(db, "nodes", "instance_info")
    for secret in SECRETS[:5]:
        assert secret not in stored
    with db.read() as conn:
        node = repo.get_node_by_id(conn, node_id)
    assert node.driver_info["ipmi_username"] == "admin"
    assert node.instance_info["image_source"].endswith("http://mirror:******@images.example/os.raw")
    assert box.reveal(node.driver_info)["redfish_password"] == NUMERIC_PASSWORD
    assert box.reveal(node.instance_info)["image_source"] == IMAGE
    assert box.reveal(node.instance_info)["configdrive"] == {"user_data": USER_DATA}


def test_a_masked_value_sent_back_keeps_the_stored_secret(db: Database, box: SecretBox) -> None:
    node_id = _create(db)
    with db.read() as conn:
        before = repo.get_node_by_id(conn, node_id).driver_info
    shown = {"ipmi_username": "root", "bmc": {"auth": {"ipmi_password": MASK}}}
    shown["redfish_password"] = MASK
    with db.begin() as conn:
        repo.update_node(conn, node_id, {"driver_info": shown})
        after = repo.get_node_by_id(conn, node_id).driver_info
    assert after["bmc"] == before["bmc"]
    assert box.reveal(after) == {
        "ipmi_username": "root",
        "bmc": {"auth": {"ipmi_password": BMC_PASSWORD}},
        "redfish_password": NUMERIC_PASSWORD,
    }


def test_history_and_last_error_are_scrubbed_of_every_secret(db: Database) -> None:
    node_id = _create(db)
    with db.begin() as conn:
        node = repo.get_node_by_id(conn, node_id)
        node.last_error = f"download of {IMAGE} failed; BMC said bad password {BMC_PASSWORD}"
        repo.save_node(conn, node, ["last_error"])
        repo.add_history(
            conn,
            node_id,
            event=f"rescue with {RESCUE_PASSWORD} and {NUMERIC_PASSWORD}: token={PORT_TOKEN}",
            event_type="rescue",
        )
    assert node.last_error == (
        "download of http://mirror:******@images.example/os.raw failed; BMC said bad password "
        + MASK
    )
    with db.read() as conn:
        (event,) = [h.event for h in repo.list_history(conn, node_id) if h.event_type == "rescue"]
        assert repo.get_node_by_id(conn, node_id).last_error == node.last_error
    assert event == f"rescue with {MASK} and {MASK}: token={MASK}"


def test_one_write_path_makes_uuids_canonical_and_seals_secrets(db: Database) -> None:
    # rows.written: what the API's UUID rule and the secrets' sealing both rely on
    upper = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
    with db.begin() as conn:
        node_id = repo.create_node(
            conn,
            {
                "uuid": upper,
                "driver": "fake-hardware",
                "provision_state": "enroll",
                "driver_info": {"ipmi_password": BMC_PASSWORD},
            },
        ).id
        written = rows.update(
            conn,
            t.nodes,
            node_id,
            {"instance_uuid": upper, "last_error": f"BMC refused {BMC_PASSWORD}"},
        )
        audit_db.add_events(
            conn,
            [
                {
                    "uuid": upper,
                    "request_id": "req-1",
                    "method": "DELETE",
                    "path": f"/v1/nodes/password={URL_PASSWORD}",
                    "status": 400,
                    "node_id": node_id,
                }
            ],
        )
    assert written == {"instance_uuid": upper.lower(), "last_error": f"BMC refused {MASK}"}
    assert upper.lower() in _raw(db, "nodes", "uuid")
    assert BMC_PASSWORD not in _raw(db, "nodes", "driver_info") + _raw(db, "nodes", "last_error")
    with db.read() as conn:
        (event,) = conn.execute(sa.select(t.audit_events)).mappings().all()
    assert (event["uuid"], event["node_uuid"]) == (upper.lower(), upper.lower())
    assert event["path"] == f"/v1/nodes/password={MASK}"


def test_ports_portgroups_chassis_and_volume_targets_are_sealed(db: Database) -> None:
    node_id = _create(db)
    secret = {"switch": {"auth_token": PORT_TOKEN}}
    with db.begin() as conn:
        repo.create_port(
            conn, {"address": "52:54:00:00:00:01", "node_id": node_id, "extra": secret}
        )
        repo.create_portgroup(conn, {"node_id": node_id, "properties": secret, "extra": secret})
        repo.create_chassis(conn, {"extra": secret})
        volumes.create_volume_target(
            conn,
            {
                "node_id": node_id,
                "volume_type": "iscsi",
                "boot_index": 0,
                "volume_id": "v1",
                "properties": {"auth_password": PORT_TOKEN},
            },
        )
    for table, column in (
        ("ports", "extra"),
        ("portgroups", "properties"),
        ("portgroups", "extra"),
        ("chassis", "extra"),
        ("volume_targets", "properties"),
    ):
        assert PORT_TOKEN not in _raw(db, table, column), (table, column)


def test_allocations_and_deploy_templates_are_sealed_and_scrubbed(db: Database) -> None:
    secret = {"switch": {"auth_token": PORT_TOKEN}}
    step = {"interface": "bios", "step": "s", "args": {"admin_password": PORT_TOKEN}}
    with db.begin() as conn:
        allocation = repo_alloc.create_allocation(conn, {"resource_class": "x", "extra": secret})
        repo_alloc.update_allocation(
            conn, allocation.id, {"extra": {"s": {"password": PORT_TOKEN}}}
        )
        repo_tpl.create_deploy_template(
            conn, {"name": "CUSTOM_A", "steps": [{**step, "priority": 1}], "extra": secret}
        )
        # the allocator's conditional write of an unexpected error's text
        failed = repo_alloc.fail_allocation(
            conn, allocation.id, f"Unexpected exception during allocation: {IMAGE} refused"
        )
    assert failed
    for table, column in (
        ("allocations", "extra"),
        ("deploy_templates", "steps"),
        ("deploy_templates", "extra"),
        ("allocations", "last_error"),
    ):
        assert PORT_TOKEN not in _raw(db, table, column), (table, column)
        assert URL_PASSWORD not in _raw(db, table, column), (table, column)
    assert "http://mirror:******@images.example/os.raw refused" in _raw(
        db, "allocations", "last_error"
    )


def test_a_database_without_a_key_refuses_to_store_a_secret(database_url: str) -> None:
    plain = Database(database_url)
    plain.migrate()
    try:
        with plain.begin() as conn:
            repo.create_node(conn, {"driver": "fake-hardware", "provision_state": "enroll"})
            with pytest.raises(sealing.SecretsUnprotected, match=r"nodes\.driver_info"):
                repo.create_node(
                    conn,
                    {
                        "driver": "fake-hardware",
                        "provision_state": "enroll",
                        "driver_info": {"ipmi_password": "x"},
                    },
                )
    finally:
        plain.dispose()


def _legacy_rows(db: Database) -> None:
    """Rows as an older metalcast stored them: secrets in clear."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(t.nodes).values(
                uuid="2d6c8f5e-3c1b-4a5e-9a7b-1c2d3e4f5a6b",
                name="legacy",
                driver="fake-hardware",
                provision_state="active",
                created_at=repo.utcnow(),
                driver_info={"ipmi_password": BMC_PASSWORD},
                driver_internal_info={},
                properties={},
                instance_info={"image_source": IMAGE, "rescue_password": RESCUE_PASSWORD},
                extra={},
                last_error=f"failed to fetch {IMAGE}",
            )
        )
        node_id = conn.execute(sa.select(t.nodes.c.id)).scalar_one()
        conn.execute(
            sa.insert(t.node_history).values(
                uuid="0b7e6d5c-4b3a-4291-8f7e-6d5c4b3a2910",
                node_id=node_id,
                created_at=repo.utcnow(),
                severity="INFO",
                event_type="deploy",
                event=f"Image {IMAGE}: fetching into the cache",
            )
        )


def test_start_up_seals_what_older_versions_stored_in_clear(db: Database, box: SecretBox) -> None:
    _legacy_rows(db)
    assert sealing.seal_database(db) == 3  # the node's JSON, its last_error, its history
    assert sealing.seal_database(db) == 0  # idempotent
    with db.read() as conn:
        node = repo.get_node(conn, "legacy")
        (event,) = repo.list_history(conn, node.id)
    assert is_sealed(node.driver_info["ipmi_password"])
    assert box.reveal(node.instance_info)["rescue_password"] == RESCUE_PASSWORD
    assert node.last_error == "failed to fetch http://mirror:******@images.example/os.raw"
    assert URL_PASSWORD not in event.event


def _leaks(state_dir: Path, secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    """Which of ``secrets`` (raw, JSON-escaped or base64) are in the SQLite files."""
    found = []
    for path in sorted(state_dir.glob("metalcast.sqlite*")):
        data = path.read_bytes()
        for secret in secrets:
            forms = {
                secret.encode(),
                orjson.dumps(secret)[1:-1],
                base64.b64encode(secret.encode()).rstrip(b"="),
            }
            if any(form in data for form in forms):
                found.append((path.name, secret))
    return found


def _older_version_left_a_deleted_node(path: Path) -> None:
    """What an older metalcast (no encryption, no secure_delete) left: a node with a
    clear password, deleted, its bytes still in the file's free space."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA secure_delete=OFF")
        for name, info in (("old-1", {}), ("old-2", {"ipmi_password": DELETED_PASSWORD})):
            conn.execute(
                "INSERT INTO nodes (uuid, name, driver, provision_state, created_at, "
                "driver_info, driver_internal_info, properties, instance_info, extra) "
                "VALUES (?, ?, 'fake-hardware', 'enroll', '2024-01-01', ?, '{}', '{}', '{}', '{}')",
                (
                    f"00000000-0000-4000-8000-00000000000{name[-1]}",
                    name,
                    orjson.dumps(info).decode(),
                ),
            )
        conn.commit()
        conn.execute("DELETE FROM nodes WHERE name = 'old-2'")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def test_an_upgraded_database_keeps_no_deleted_secret_in_free_space(
    tmp_path: Path, box: SecretBox
) -> None:
    path = tmp_path / "metalcast.sqlite"
    Database(f"sqlite:///{path}").migrate()
    _older_version_left_a_deleted_node(path)
    assert _leaks(tmp_path, (DELETED_PASSWORD,))  # the test is not vacuous
    db = Database(f"sqlite:///{path}", secret_box=box)
    assert sealing.seal_database(db) == 0  # nothing stored needed sealing …
    db.dispose()
    assert _leaks(tmp_path, (DELETED_PASSWORD,)) == []  # … but the free space was wiped


def test_no_cleartext_is_left_in_the_database_files(
    tmp_path: Path, key: bytes, box: SecretBox
) -> None:
    """Rows an older version stored in clear (and deleted), secrets written,
    overwritten and deleted, then the key rotated: the raw bytes of metalcast.sqlite,
    -wal and -shm hold none of them, nor anything sealed with the retired key."""
    path = tmp_path / "metalcast.sqlite"
    db = Database(f"sqlite:///{path}", secret_box=box)
    db.migrate()
    _legacy_rows(db)
    db.dispose()
    _older_version_left_a_deleted_node(path)
    assert _leaks(tmp_path, (DELETED_PASSWORD,))
    db = Database(f"sqlite:///{path}", secret_box=box)
    sealing.seal_database(db)
    node_id = _create(db, "n2")
    with db.begin() as conn:
        repo.update_node(conn, node_id, {"driver_info": {"ipmi_password": "Overwritten-9z8y"}})
        repo.create_port(conn, {"address": "52:54:00:00:00:02", "node_id": node_id})
    gone = _create(db, "n3")
    with db.read() as conn:
        old_tokens = _tokens(conn)
    with db.begin() as conn:
        repo.destroy_node(conn, gone)
        repo.destroy_node(conn, repo.get_node(conn, "legacy").id)
    db.dispose()
    # the rotation's own steps: encrypt again with a new key, empty the log
    rotating = SecretBox(Fernet.generate_key(), key)
    rotated = Database(f"sqlite:///{path}", secret_box=rotating)
    with rotated.begin() as conn:
        sealing.reseal(conn, rotating)
    rotated.checkpoint()
    secrets = (*SECRETS, "Overwritten-9z8y", DELETED_PASSWORD, *old_tokens)
    # the files as a running server leaves them (its connections still open) …
    with rotated.read() as conn:
        assert _tokens(conn).isdisjoint(old_tokens)
        assert _leaks(tmp_path, secrets) == []
    rotated.dispose()
    # … and once it stopped
    assert _leaks(tmp_path, secrets) == []


def _tokens(conn: sa.Connection) -> set[str]:
    """Every Fernet token stored in the nodes table."""
    text = str(conn.exec_driver_sql("SELECT driver_info, instance_info FROM nodes").fetchall())
    return set(re.findall(r"fernet(?:\+json)?:([A-Za-z0-9_\-]+=*)", text))
