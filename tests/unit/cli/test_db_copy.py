"""``metalcast db copy``'s own steps around the copy: the key must be there, the source
is sealed before it is copied, a running server and a non-empty target are refused,
and no URL is printed with its password."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from postgres import PASSWORD
from typer.testing import CliRunner

from metalcast.cli.main import app
from metalcast.config import Settings
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.secrecy import keyfile

BMC_PASSWORD = "Copy-Cli-Bmc-Pass-4b7e"


def _copy(state_dir: Path, target: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["db", "copy", "--state-dir", str(state_dir), "--to", target],
        env={"METALCAST_DATABASE_URL": ""},
    )
    return result.exit_code, result.output


def _legacy_install(state_dir: Path) -> Settings:
    """An installation whose database an older version wrote: a BMC password in clear."""
    settings = Settings(state_dir=state_dir)
    keyfile.load(state_dir / "secret.key")
    db = Database(settings.database_url)
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(t.nodes).values(
                uuid="2d6c8f5e-3c1b-4a5e-9a7b-1c2d3e4f5a6b", name="legacy",
                driver="fake-hardware", provision_state="enroll", created_at=repo.utcnow(),
                driver_info={"ipmi_password": BMC_PASSWORD}, driver_internal_info={},
                properties={}, instance_info={}, extra={},
            )
        )  # fmt: skip
    db.dispose()
    return settings


def test_the_source_is_sealed_first_and_nothing_prints_a_password(
    tmp_path: Path, postgres_url: str
) -> None:
    _legacy_install(tmp_path)
    code, output = _copy(tmp_path, postgres_url)
    assert code == 0, output
    assert "sealed 1 row(s)" in output and "nodes: 1/1" in output
    assert PASSWORD not in output and "metalcast:***@127.0.0.1" in output
    assert str(tmp_path / "secret.key") in output
    db = Database(postgres_url)
    with db.read() as conn:
        raw = conn.exec_driver_sql("SELECT driver_info::text FROM nodes").scalar_one()
    db.dispose()
    assert BMC_PASSWORD not in raw and "fernet" in raw

    code, output = _copy(tmp_path, postgres_url)
    assert code == 1
    assert "already holds rows: nodes (1)" in " ".join(output.split())
    assert PASSWORD not in output


def test_a_running_server_and_a_missing_key_are_refused(tmp_path: Path, postgres_url: str) -> None:
    code, output = _copy(tmp_path / "elsewhere", postgres_url)
    assert code == 1 and "No secret key at" in output
    settings = _legacy_install(tmp_path)
    db = Database(settings.database_url)
    with db.begin() as conn:
        repo.register_conductor(
            conn, hostname="conductor-1", conductor_group="", hardware_types=["fake-hardware"]
        )
    db.dispose()
    code, output = _copy(tmp_path, postgres_url)
    assert code == 1
    assert "is using this database: stop it, then run `metalcast db copy` again" in " ".join(
        output.split()
    )
    target = Database(postgres_url)
    with target.read() as conn:
        assert sa.inspect(conn).get_table_names() == []  # refused before touching it
    target.dispose()


@pytest.mark.parametrize("target", ["mysql://u:Pw-Not-Shown-77@h/db", "not a url Pw-Not-Shown-77"])
def test_a_target_metalcast_cannot_run_on_is_refused_without_its_password(
    tmp_path: Path, target: str
) -> None:
    _legacy_install(tmp_path)
    code, output = _copy(tmp_path, target)
    assert code == 1
    assert "Pw-Not-Shown-77" not in output
