"""An all-in-one install moved into PostgreSQL with ``metalcast db copy``: refused while
its server runs; once stopped, nodes, ports, history and users are copied; a server
started on PostgreSQL with the same state directory serves them, still opens the
sealed BMC password, and gives new nodes new ids.  The PostgreSQL password is given
the way the docs say, in PGPASSWORD, and is printed nowhere."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from postgres import PASSWORD
from secret_scan import register

from metalcast.db import identity
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.secrecy import SecretBox

RunServerIn = Callable[..., contextlib.AbstractContextManager[Any]]
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
BMC_PASSWORD = "Moved-Bmc-Pass-6a2f"
ADMIN_PASSWORD = "Moved-Admin-Pass-8e3b"
register(BMC_PASSWORD, ADMIN_PASSWORD)


def metalcast(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", *args],
        env={**clean, **env}, input=stdin, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def enrol(url: str) -> None:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as api:
        for index in range(3):
            body = {"name": f"n-{index}", "driver": "fake-hardware",
                    "driver_info": {"ipmi_password": BMC_PASSWORD}}  # fmt: skip
            node = api.post("/v1/nodes", json=body)
            assert node.status_code == 201, node.text
            port = {"node_uuid": node.json()["uuid"], "address": f"52:54:00:00:0c:0{index}"}
            assert api.post("/v1/ports", json=port).status_code == 201
        assert api.delete("/v1/nodes/n-2").status_code == 204


def test_an_all_in_one_install_moves_to_postgresql(
    run_server_in: RunServerIn, postgres_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    without_password = (
        sa.make_url(postgres_url).set(password=None).render_as_string(hide_password=False)
    )
    copy = ("db", "copy", "--state-dir", str(state), "--to", without_password)
    pg_env = {"PGPASSWORD": PASSWORD}
    with run_server_in(state) as server:
        enrol(server.url)
        refused = metalcast(*copy, env=pg_env)
        assert refused.returncode == 1
        assert "is using this database" in " ".join(refused.stderr.split())
    made = metalcast("user", "bootstrap-admin", "--name", "ops", "--password-stdin",
                     "--state-dir", str(state), env={}, stdin=ADMIN_PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr

    done = metalcast(*copy, env=pg_env)
    assert done.returncode == 0, done.stderr
    assert "nodes: 2/2" in done.stdout and "users: 1/1" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr

    pg_server = {"METALCAST_DATABASE__URL": without_password, **pg_env}
    with run_server_in(state, env=pg_server) as pg:
        serves_what_was_copied(pg.url)
    the_copy_is_whole(postgres_url, key_file=state / "secret.key")


def serves_what_was_copied(url: str) -> None:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as api:
        nodes = api.get("/v1/nodes?fields=name").json()["nodes"]
        assert sorted(n["name"] for n in nodes) == ["n-0", "n-1"]
        ports = api.get("/v1/ports?node=n-1").json()["ports"]
        assert [p["address"] for p in ports] == ["52:54:00:00:0c:01"]
        new = api.post("/v1/nodes", json={"name": "n-new", "driver": "fake-hardware"})
        assert new.status_code == 201, new.text


def the_copy_is_whole(url: str, *, key_file: Path) -> None:
    db = Database(url)
    try:
        with db.read() as conn:
            old = repo.get_node(conn, "n-1")
            new = repo.get_node(conn, "n-new")
            admin = identity.get_user(conn, "ops")
    finally:
        db.dispose()
    assert new.id > old.id
    assert SecretBox.from_file(key_file).reveal(old.driver_info)["ipmi_password"] == BMC_PASSWORD
    assert admin.password_hash is not None
