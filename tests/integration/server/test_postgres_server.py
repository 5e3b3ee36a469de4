"""``metalcast server`` on PostgreSQL, driven by python-ironicclient's ``baremetal``
CLI exactly as on SQLite: a node and its port created, managed, provided and
deployed on fake-hardware.  The database URL's password is never printed; the
node's BMC password is stored sealed (the raw column, and a ``pg_dump`` of the whole
database, hold it nowhere in clear) and the server still has it to give its driver."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from postgres import PASSWORD, Cluster
from secret_scan import leaks, register

from metalcast.db import repository
from metalcast.db.engine import Database
from metalcast.secrecy import SecretBox, is_sealed

StartServer = Callable[..., contextlib.AbstractContextManager[Any]]
BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
BMC_PASSWORD = "Pg-Bmc-Pass-3f7a2e"
register(BMC_PASSWORD)


def run_baremetal(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(var, None)
    return subprocess.run(
        [BAREMETAL, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def baremetal(url: str, *args: str) -> str:
    result = run_baremetal(url, *args)
    assert result.returncode == 0, f"baremetal {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def refused(url: str, *args: str) -> str:
    """What ``baremetal`` says when the server refuses the command."""
    result = run_baremetal(url, *args)
    assert result.returncode != 0, f"baremetal {' '.join(args)} was not refused"
    return result.stderr


def show(url: str, node: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(baremetal(url, "node", "show", node, "-f", "json"))
    return shown


def test_the_all_in_one_server_runs_on_postgresql(
    start_metalcast_server: StartServer,
    postgres_cluster: Cluster,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    with start_metalcast_server(env={"METALCAST_DATABASE__URL": postgres_url}) as server:
        drive_a_node_through_its_lifecycle(server.url)
        state_dir: Path = server.state_dir
        printed = server.stdout_path.read_text() + server.stderr_path.read_text()
    masked = sa.make_url(postgres_url).render_as_string(hide_password=True)
    assert f"(database {masked}," in printed
    assert PASSWORD not in printed

    database = sa.make_url(postgres_url).database
    assert database is not None
    dump = tmp_path / "dump.sql"
    dump.write_text(postgres_cluster.dump(database))
    assert "pg-1" in dump.read_text()  # the dump holds the rows …
    assert leaks([dump]) == []  # … and no secret any test uses, in any encoding
    the_server_can_still_read_it(postgres_url, key_file=state_dir / "secret.key")


def drive_a_node_through_its_lifecycle(url: str) -> None:
    created = json.loads(
        baremetal(
            url, "node", "create", "--driver", "fake-hardware", "--name", "pg-1",
            "--driver-info", f"ipmi_password={BMC_PASSWORD}", "-f", "json",
        )
    )  # fmt: skip
    baremetal(url, "port", "create", "52:54:00:70:67:01", "--node", created["uuid"])
    # taken unique values are told by PostgreSQL's unique constraints, named as on SQLite
    again = refused(url, "node", "create", "--driver", "fake-hardware", "--name", "pg-1")
    assert "A node with name pg-1 already exists" in again
    mac = "52:54:00:70:67:01"
    again = refused(url, "port", "create", mac, "--node", created["uuid"])
    assert f"A port with MAC address {mac} already exists" in again
    for verb, state in (("manage", "manageable"), ("provide", "available"), ("deploy", "active")):
        baremetal(url, "node", verb, "pg-1", "--wait", "60")
        assert show(url, "pg-1")["provision_state"] == state
    node = show(url, "pg-1")
    assert node["driver_info"]["ipmi_password"] == "******"
    ports = json.loads(baremetal(url, "port", "list", "--node", "pg-1", "-f", "json"))
    assert [p["address"] for p in ports] == ["52:54:00:70:67:01"]
    history = json.loads(baremetal(url, "node", "history", "list", "pg-1", "-f", "json"))
    assert any("active" in event["event"] for event in history)


def the_server_can_still_read_it(url: str, *, key_file: Path) -> None:
    db = Database(url)
    try:
        with db.read() as conn:
            raw = conn.exec_driver_sql("SELECT driver_info::text FROM nodes").scalar_one()
            node = repository.get_node(conn, "pg-1")
    finally:
        db.dispose()
    assert BMC_PASSWORD not in raw
    assert is_sealed(node.driver_info["ipmi_password"])
    assert SecretBox.from_file(key_file).reveal(node.driver_info)["ipmi_password"] == BMC_PASSWORD
