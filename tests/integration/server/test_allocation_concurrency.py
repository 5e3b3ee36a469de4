"""100 allocations at once against 50 matching nodes, on two `metalcast server`
processes sharing one database (SQLite, and PostgreSQL): exactly 50 get a node, 50
distinct nodes, and 50 fail saying why; no node is ever given twice, as the API and
the database show."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from metalcast.db.engine import Database

StartServer = Callable[..., contextlib.AbstractContextManager[Any]]
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
RC = "baremetal-gold"
NODES = 50
REQUESTS = 100
#: neither server syncs power states: the nodes' fake BMCs live in the first one
QUIET = {"METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0"}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def provision(client: httpx.Client, node: str, target: str, state: str) -> None:
    response = client.put(f"/v1/nodes/{node}/states/provision", json={"target": target})
    assert response.status_code == 202, response.text
    wait_until(
        lambda: client.get(f"/v1/nodes/{node}").json()["provision_state"] == state,
        f"{node} to be {state}",
    )


def make_node(url: str, name: str, *, resource_class: str = RC) -> str:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        body = {"name": name, "driver": "fake-hardware", "resource_class": resource_class}
        created = client.post("/v1/nodes", json=body)
        assert created.status_code == 201, created.text
        provision(client, name, "manage", "manageable")
        provision(client, name, "provide", "available")
        return str(created.json()["uuid"])


def allocate_at_once(urls: list[str]) -> list[httpx.Response]:
    """REQUESTS POSTs, released together, spread over the servers."""
    start = threading.Barrier(REQUESTS)

    def post(index: int) -> httpx.Response:
        with httpx.Client(base_url=urls[index % len(urls)], headers=HEADERS, timeout=60) as c:
            start.wait()
            return c.post("/v1/allocations", json={"resource_class": RC, "name": f"a-{index}"})

    with cf.ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return list(pool.map(post, range(REQUESTS)))


def test_100_allocations_for_50_nodes_on_two_servers(
    start_metalcast_server: StartServer, database_url: str
) -> None:
    shared = {**QUIET, "METALCAST_DATABASE__URL": database_url}
    with start_metalcast_server(
        env={**shared, "METALCAST_CONDUCTOR__HOSTNAME": "conductor-a"}
    ) as first:
        second_env = {**shared, "METALCAST_CONDUCTOR__HOSTNAME": "conductor-b"}
        with start_metalcast_server(env=second_env) as second:
            with cf.ThreadPoolExecutor(max_workers=8) as pool:
                nodes = set(pool.map(lambda i: make_node(first.url, f"n-{i}"), range(NODES)))
                decoy = make_node(first.url, "other-class", resource_class="silver")

            responses = allocate_at_once([first.url, second.url])
            assert [r.status_code for r in responses] == [201] * REQUESTS
            assert {r.json()["state"] for r in responses} <= {"allocating", "active", "error"}

            with httpx.Client(base_url=first.url, headers=HEADERS, timeout=60) as client:
                wait_until(
                    lambda: (
                        client.get("/v1/allocations?state=allocating").json()["allocations"] == []
                    ),
                    "every allocation to be processed",
                )
                check_through_the_api(client, nodes=nodes, decoy=decoy)
        check_the_database(database_url, nodes=len(nodes))


def check_through_the_api(client: httpx.Client, *, nodes: set[str], decoy: str) -> None:
    allocations = client.get("/v1/allocations").json()["allocations"]
    assert len(allocations) == REQUESTS
    active = [a for a in allocations if a["state"] == "active"]
    failed = [a for a in allocations if a["state"] == "error"]
    assert (len(active), len(failed)) == (NODES, REQUESTS - NODES)
    taken = Counter(a["node_uuid"] for a in active)
    assert set(taken) == nodes
    assert max(taken.values()) == 1
    for allocation in failed:
        assert allocation["node_uuid"] is None
        # either nothing was free when it looked, or others won every node it tried
        assert (
            f"none of the {NODES} node(s) matching resource class {RC} is free: "
            f"{NODES} already associated with an instance or allocation"
            in allocation["last_error"]
            or "could be taken: other allocations took them" in allocation["last_error"]
        ), allocation["last_error"]
    by_node = {a["node_uuid"]: a["uuid"] for a in active}
    for node in client.get("/v1/nodes?fields=uuid,instance_uuid,allocation_uuid").json()["nodes"]:
        if node["uuid"] == decoy:
            assert (node["instance_uuid"], node["allocation_uuid"]) == (None, None)
            continue
        assert node["instance_uuid"] == node["allocation_uuid"] == by_node[node["uuid"]]


def check_the_database(url: str, *, nodes: int) -> None:
    db = Database(url)
    try:
        with db.read() as conn:
            check_the_rows(conn, nodes=nodes)
    finally:
        db.dispose()


def check_the_rows(conn: sa.Connection, *, nodes: int) -> None:
    taken = conn.exec_driver_sql(
        "SELECT node_id, count(*) FROM allocations WHERE node_id IS NOT NULL GROUP BY node_id"
    ).all()
    assert len(taken) == nodes
    assert {count for _, count in taken} == {1}
    pairs = conn.exec_driver_sql(
        "SELECT n.id, n.instance_uuid, a.uuid, a.node_id FROM nodes n "
        "JOIN allocations a ON a.id = n.allocation_id"
    ).all()
    assert len(pairs) == nodes
    assert all(node_id == held and instance == uuid for node_id, instance, uuid, held in pairs)
    conductors = conn.exec_driver_sql("SELECT DISTINCT conductor_affinity FROM allocations").all()
    assert len(conductors) == 2  # both servers processed allocations
