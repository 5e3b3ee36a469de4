"""A PostgreSQL restart under the all-in-one server while it serves requests and runs
transitions: during the outage every request gets a clean 503 in Ironic's error
shape (no 500, no traceback, no password); once PostgreSQL is back the same server
process serves again by itself, every transition that was running completed or
failed with a recorded reason, and no lock is left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fleet import (
    DEADLINE,
    POLL,
    Api,
    Fleet,
    ServerHolder,
    StartServer,
    check_invariants,
    create_nodes,
    error_text,
    operators,
    seeded,
)
from postgres import PASSWORD, Cluster
from psycopg import sql

pytestmark = pytest.mark.faults

OPERATORS = 3
NODES = 20  # per operator
#: long enough that many transitions are running when the database goes
LATENCY = 0.3


def probe_outage(api: Api, node: str) -> list[str]:
    """Requests while the database is down: what was wrong with their answers."""
    requests = [
        ("GET", "/v1/nodes", None),
        ("GET", f"/v1/nodes/{node}", None),
        ("PATCH", f"/v1/nodes/{node}", [{"op": "add", "path": "/extra/x", "value": 1}]),
        ("POST", "/v1/nodes", {"driver": "fake-hardware", "name": "during-outage"}),
        ("PUT", f"/v1/nodes/{node}/states/provision", {"target": "manage"}),
        ("GET", "/v1/ports", None),
    ]
    wrong = []
    for method, path, body in requests:
        response = api.request(method, path, json=body)
        text = response.text
        if response.status_code != 503:
            wrong.append(f"{method} {path}: {response.status_code} {text}")
            continue
        message = error_text(response)
        if PASSWORD in text or "Traceback" in text or not message:
            wrong.append(f"{method} {path}: {text}")
    return wrong


def durable(cluster: Cluster, url: str) -> None:
    """Commit durably in this test's database: the test cluster runs with
    ``synchronous_commit=off``, which is safe when PostgreSQL stops cleanly but lets a
    crash lose transactions it had acknowledged (a 202's work state, a released lock)."""
    with cluster.admin() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(
                sql.Identifier(str(sa.make_url(url).database))
            )
        )


def wait_until_served(api: Api, deadline: float) -> None:
    while True:
        try:
            if api.request("GET", "/v1/nodes?limit=1").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server never served again"
        time.sleep(POLL)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restart_under_load(
    run_server_in: StartServer,
    postgres_cluster: Cluster,
    postgres_url: str,
    tmp_path: Path,
    mode: str,
) -> None:
    """``fast``: PostgreSQL ends every session and shuts down cleanly; ``immediate``:
    it crashes, and recovers from its write-ahead log when started."""
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    durable(postgres_cluster, postgres_url)
    holder = ServerHolder(
        run_server_in, tmp_path / "state", {"METALCAST_DATABASE__URL": postgres_url}
    )
    holder.start()
    api = Api(holder)
    try:
        groups = {
            f"pg-{i}": create_nodes(
                api,
                prefix=f"pg{i}",
                count=NODES,
                resource_class=f"pg-{i}",
                driver_info={"fake_latency": LATENCY},
            )
            for i in range(OPERATORS)
        }
        names = {n.name for nodes in groups.values() for n in nodes}
        victim = sorted(names)[0]
        fleet = Fleet(holder, rounds=1)
        deadline = time.monotonic() + DEADLINE
        with operators(fleet, groups) as threads:
            fleet.wait_accepted(rng.randint(len(names), 2 * len(names)), deadline)
            postgres_cluster.stop_server(mode)
            try:
                wrong = probe_outage(api, victim)
            finally:
                postgres_cluster.start_server()
            wait_until_served(api, deadline)
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        assert wrong == [], "answers during the outage:\n" + "\n".join(wrong)
        assert holder.process.poll() is None, "the server died"
        assert holder.restarts == 0
        check_invariants(api, fleet, names=names, seed=seed)
        print(f"{fleet.accepted} verbs accepted, {len(fleet.failures)} failures, {fleet.statuses}")
    finally:
        api.close()
        holder.close()
