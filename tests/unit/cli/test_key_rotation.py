"""``metalcast secrets rotate-key``: every sealed value moves to a new key, the old
key is gone, an interrupted rotation leaves a usable state and finishes when run
again, and a running server is refused; on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from metalcast.cli.key_rotation import ServerRunning, rotate_key
from metalcast.cli.main import app
from metalcast.config import DatabaseSettings, Settings
from metalcast.db import repository as repo
from metalcast.db import sealing
from metalcast.db.engine import Database
from metalcast.secrecy import SecretBox, UndecryptableSecret, keyfile

PASSWORDS = {"n1": "Rotate-Pass-1a", "n2": "Rotate-Pass-2b"}


def _state(tmp_path: Path, database_url: str | None = None) -> tuple[Settings, bytes]:
    """A state directory with two nodes and a port holding secrets (in the database at
    ``database_url``, else SQLite in the state directory); the key."""
    settings = Settings(state_dir=tmp_path, database=DatabaseSettings(url=database_url or ""))
    box = keyfile.load(tmp_path / "secret.key")
    db = Database(settings.database_url, secret_box=box)
    db.migrate()
    with db.begin() as conn:
        for name, password in PASSWORDS.items():
            node = repo.create_node(
                conn,
                {
                    "driver": "fake-hardware",
                    "name": name,
                    "provision_state": "enroll",
                    "driver_info": {"ipmi_password": password},
                },
            )
        repo.create_port(
            conn, {"address": "52:54:00:00:00:10", "node_id": node.id, "extra": {"token": "T-1"}}
        )
    db.dispose()
    return settings, (tmp_path / "secret.key").read_bytes()


def _revealed(settings: Settings, box: SecretBox) -> dict[str, object]:
    db = Database(settings.database_url)
    try:
        with db.read() as conn:
            found: dict[str, object] = {
                name: box.reveal(repo.get_node(conn, name).driver_info)["ipmi_password"]
                for name in PASSWORDS
            }
            (port,) = repo.list_ports(conn, repo.Page())
            found["port"] = box.reveal(port.extra)["token"]
    finally:
        db.dispose()
    return found


EXPECTED = {**PASSWORDS, "port": "T-1"}


def test_rotation_re_encrypts_everything_and_deletes_the_old_key(
    tmp_path: Path, database_url: str
) -> None:
    settings, old_key = _state(tmp_path, database_url)
    done = rotate_key(settings)
    assert (done.rows, done.resumed) == (3, False)
    new_key = (tmp_path / "secret.key").read_bytes()
    assert new_key != old_key
    assert not keyfile.next_path(tmp_path / "secret.key").exists()
    assert _revealed(settings, SecretBox(new_key.strip())) == EXPECTED
    with pytest.raises(UndecryptableSecret):
        _revealed(settings, SecretBox(old_key.strip()))


def test_an_interrupted_rotation_stays_usable_and_finishes_when_run_again(
    tmp_path: Path, database_url: str
) -> None:
    settings, old_key = _state(tmp_path, database_url)
    path = tmp_path / "secret.key"
    # a rotation that stopped after re-encrypting the nodes but not the ports
    box = keyfile.begin_rotation(path)
    db = Database(settings.database_url, secret_box=box)
    with db.begin() as conn:
        sealing.reseal(conn, box, tables=("nodes",))
    db.dispose()
    # what a server started now would load: both keys, every value readable
    assert keyfile.load(path).rotating
    assert _revealed(settings, keyfile.load(path)) == EXPECTED
    with pytest.raises(UndecryptableSecret):
        _revealed(settings, SecretBox(old_key.strip()))  # the nodes moved on
    done = rotate_key(settings)
    assert done.resumed
    assert not keyfile.load(path).rotating
    assert _revealed(settings, keyfile.load(path)) == EXPECTED


def test_a_running_server_is_refused_and_nothing_changes(tmp_path: Path, database_url: str) -> None:
    settings, old_key = _state(tmp_path, database_url)
    db = Database(settings.database_url)
    with db.begin() as conn:
        repo.register_conductor(conn, hostname="busy-host", conductor_group="", hardware_types=[])
    db.dispose()
    with pytest.raises(ServerRunning, match="busy-host"):
        rotate_key(settings)
    assert (tmp_path / "secret.key").read_bytes() == old_key
    assert not keyfile.next_path(tmp_path / "secret.key").exists()


def test_the_command_says_what_it_did(tmp_path: Path) -> None:
    _state(tmp_path)
    result = CliRunner().invoke(app, ["secrets", "rotate-key", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "secret key rotated: 3 row(s) re-encrypted, the old key deleted" in result.output
