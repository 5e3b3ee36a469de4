"""The two conditional writes that keep a node to one holder, raced by threads, each
in its own transaction, on SQLite and on PostgreSQL (READ COMMITTED): exactly one
thread gets the node's lock, exactly one allocation gets the node."""

from __future__ import annotations

import threading
from collections.abc import Callable

from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import Allocation

THREADS = 16
RC = "baremetal-gold"


def _available_node(db: Database) -> int:
    with db.begin() as conn:
        values = {"driver": "fake-hardware", "provision_state": "available", "resource_class": RC}
        return repo.create_node(conn, {**values, "power_state": "power off"}).id


def _race(work: Callable[[int], bool]) -> list[bool]:
    """``work(index)`` in THREADS threads released together; what each returned."""
    start = threading.Barrier(THREADS)
    results: list[bool] = [False] * THREADS
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_one_thread_gets_a_node_lock(db: Database) -> None:
    node_id = _available_node(db)

    def reserve(index: int) -> bool:
        with db.begin() as conn:
            return repo.reserve_node(conn, node_id, f"host-{index}") is None

    won = _race(reserve)
    assert sum(won) == 1
    with db.read() as conn:
        assert repo.get_node_by_id(conn, node_id).reservation == f"host-{won.index(True)}"


def test_one_allocation_gets_a_node(db: Database) -> None:
    node_id = _available_node(db)
    with db.begin() as conn:
        made = [repo_alloc.create_allocation(conn, {"resource_class": RC}) for _ in range(THREADS)]
    request = repo_alloc.NodeRequest(resource_class=RC)

    def take(index: int) -> bool:
        allocation: Allocation = made[index]
        with db.begin() as conn:
            return repo_alloc.take_node(conn, allocation, node_id=node_id, request=request)

    won = _race(take)
    assert sum(won) == 1
    winner = made[won.index(True)]
    with db.read() as conn:
        node = repo.get_node_by_id(conn, node_id)
        states = [repo_alloc.get_allocation_by_id(conn, a.id).state for a in made]
    assert (node.allocation_id, node.instance_uuid) == (winner.id, winner.uuid)
    assert sorted(states) == ["active"] + ["allocating"] * (THREADS - 1)
