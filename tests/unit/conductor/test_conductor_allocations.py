"""Allocations in the conductor: which nodes match, why none does, that a node goes to
one allocation only (threads and two conductors racing on one database), backfill,
deallocation, and what undeploy and node updates do to an allocation.  On SQLite and
on PostgreSQL: what a node's match and its one allocation rest on is SQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conductor_env import ALICE, Env, make_env

from metalcast.calls import (
    ChangeProvisionState,
    CreateAllocation,
    DestroyAllocation,
    DestroyNode,
    ProvisionRequest,
    SetMaintenance,
    UpdateNode,
)
from metalcast.conductor import allocations
from metalcast.conductor.allocator import THREADS
from metalcast.context import SYSTEM
from metalcast.db import allocations as repo_alloc
from metalcast.db import events
from metalcast.db import repository as repo
from metalcast.db.models import Allocation, Node
from metalcast.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable

RC = "baremetal-gold"


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    yield from make_env(tmp_path, database_url=database_url)


def available(env: Env, *, traits: tuple[str, ...] = (), **values: Any) -> Node:
    """An available node with a known power state (what an allocation may take)."""
    values.setdefault("resource_class", RC)
    node = env.create("available", **values)
    with env.db.begin() as conn:
        repo.update_node(conn, node.id, {"power_state": "power off"})
        repo.set_traits(conn, node.id, traits)
    return env.node(node.id)


def allocate(env: Env, **values: Any) -> Allocation:
    """Create an allocation, wait for the allocator, return it as processed."""
    values.setdefault("resource_class", RC)
    created = env.service.execute(CreateAllocation(values, node_id=None), context=ALICE)
    assert created.state == "allocating"
    assert env.service.allocator.wait_idle(10)
    return reload(env, created)


def reload(env: Env, allocation: Allocation) -> Allocation:
    with env.db.read() as conn:
        return repo_alloc.get_allocation_by_id(conn, allocation.id)


def act(env: Env, node_id: int, verb: str) -> Node:
    env.service.execute(ChangeProvisionState(node_id, ProvisionRequest(verb)), context=ALICE)
    return env.wait_settled(node_id)


# ------------------------------------------------------------------- what matches


def test_an_allocation_takes_a_matching_node_and_marks_it(env: Env) -> None:
    available(env, resource_class="other")
    node = available(env, traits=("CUSTOM_GPU", "CUSTOM_NVME"))
    done = allocate(env, traits=["CUSTOM_GPU"])
    assert done.state == "active"
    assert done.node_id == node.id
    assert done.last_error is None
    taken = env.node(node.id)
    assert taken.instance_uuid == done.uuid
    assert taken.allocation_id == done.id
    assert taken.instance_info["traits"] == ["CUSTOM_GPU"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"maintenance": True}, "1 in maintenance"),
        ({"retired": True}, "1 retired"),
        ({"power_state": None}, "1 with no known power state"),
        ({"provision_state": "manageable"}, "1 not in provision state 'available'"),
        (
            {"instance_uuid": "6f5dbd8e-7cd1-4dcf-9f2e-5b3b0b7b4bb1"},
            "1 already associated with an instance or allocation",
        ),
    ],
)
def test_only_free_nodes_are_taken_and_the_error_says_why_not(
    env: Env, change: dict[str, Any], reason: str
) -> None:
    node = available(env)
    with env.db.begin() as conn:
        repo.update_node(conn, node.id, change)
    done = allocate(env)
    assert done.state == "error"
    assert done.node_id is None
    assert done.last_error == (
        f"Failed to process allocation {done.uuid}: none of the 1 node(s) matching resource "
        f"class {RC} is free: {reason}."
    )
    assert env.node(node.id).allocation_id is None


def test_a_resource_class_nobody_has_is_named(env: Env) -> None:
    available(env)
    done = allocate(env, resource_class="silver")
    assert done.last_error == (
        f"Failed to process allocation {done.uuid}: no node has resource class silver."
    )


def test_missing_traits_are_named(env: Env) -> None:
    available(env, traits=("CUSTOM_A",))
    available(env, traits=("CUSTOM_B",))
    done = allocate(env, traits=["CUSTOM_A", "CUSTOM_B", "CUSTOM_C"])
    assert done.state == "error"
    assert done.last_error is not None
    assert (
        f"none of the 2 node(s) with resource class {RC} has all the traits CUSTOM_A, "
        "CUSTOM_B, CUSTOM_C (none has CUSTOM_C)"
    ) in done.last_error


def test_only_candidate_nodes_are_taken(env: Env) -> None:
    available(env)
    wanted = available(env, resource_class="other")
    done = allocate(env, candidate_nodes=[wanted.uuid])
    assert done.state == "error"
    assert done.last_error is not None
    assert f"no node among the 1 candidate node(s) has resource class {RC}" in done.last_error
    fitting = available(env)
    done = allocate(env, candidate_nodes=[wanted.uuid, fitting.uuid])
    assert (done.state, done.node_id) == ("active", fitting.id)


def test_an_owned_allocation_takes_only_nodes_its_project_owns_or_leases(env: Env) -> None:
    available(env, owner="p2")
    available(env)  # no owner: not p1's either
    done = allocate(env, owner="p1")
    assert done.last_error is not None
    assert "there is no node owned or leased by project p1" in done.last_error
    leased = available(env, owner="p2", lessee="p1")
    done = allocate(env, owner="p1")
    assert (done.state, done.node_id) == ("active", leased.id)


def test_a_node_named_like_the_allocation_is_tried_first(env: Env) -> None:
    for index in range(5):
        available(env, name=f"other-{index}")
    named = available(env, name="web-1")
    assert allocate(env, name="web-1").node_id == named.id


def test_an_allocation_deleted_while_allocating_takes_nothing(env: Env) -> None:
    node = available(env)
    with env.db.begin() as conn:
        allocation = repo_alloc.create_allocation(conn, {"resource_class": RC})
        repo_alloc.destroy_allocation(conn, allocation.id)
    allocations.allocate(env.service.rt, allocation.id)
    assert env.node(node.id).allocation_id is None


# -------------------------------------------------------- one node, one allocation


def test_concurrent_allocations_never_share_a_node(env: Env) -> None:
    nodes = [available(env) for _ in range(10)]
    results: list[Allocation] = []
    lock = threading.Lock()

    def create() -> None:
        made = env.service.execute(
            CreateAllocation({"resource_class": RC}, node_id=None), context=ALICE
        )
        with lock:
            results.append(made)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert env.service.allocator.wait_idle(20)
    done = [reload(env, a) for a in results]
    active = [a for a in done if a.state == "active"]
    assert len(active) == 10
    assert {a.node_id for a in active} == {n.id for n in nodes}
    for failed in (a for a in done if a.state == "error"):
        assert failed.last_error is not None
        assert "is free" in failed.last_error or "could be taken" in failed.last_error


def test_two_conductors_on_one_database_never_share_a_node(
    env: Env, tmp_path: Path, database_url: str
) -> None:
    # a second engine and service on the same database
    other_env = make_env(tmp_path, database_url=database_url)
    other = next(other_env)
    second = other.make(hostname="conductor-2")
    try:
        nodes = [available(env) for _ in range(6)]
        made = []
        for index in range(12):
            service = env.service if index % 2 else second
            made.append(
                service.execute(
                    CreateAllocation({"resource_class": RC}, node_id=None), context=ALICE
                )
            )
        assert env.service.allocator.wait_idle(20)
        assert second.allocator.wait_idle(20)
        done = [reload(env, a) for a in made]
        taken = [a.node_id for a in done if a.state == "active"]
        assert sorted(taken) == sorted(n.id for n in nodes)
        assert sum(a.state == "error" for a in done) == 6
    finally:
        next(other_env, None)


# ------------------------------------------------------------------------ backfill


def deployed(env: Env, **values: Any) -> Node:
    node = available(env, **values)
    return act(env, node.id, "active")


def test_backfill_records_a_deployed_node_at_once(env: Env) -> None:
    node = deployed(env, traits=("CUSTOM_A",))
    done = env.service.execute(
        CreateAllocation({"resource_class": RC, "traits": ["CUSTOM_A"]}, node_id=node.id),
        context=ALICE,
    )
    assert (done.state, done.node_id) == ("active", node.id)
    assert env.node(node.id).instance_uuid == done.uuid


def test_backfill_refuses_a_node_that_does_not_match_and_stores_nothing(env: Env) -> None:
    node = deployed(env)
    with pytest.raises(InvalidInput) as refused:
        env.service.execute(
            CreateAllocation(
                {"resource_class": "silver", "traits": ["CUSTOM_X"], "candidate_nodes": ["x"]},
                node_id=node.id,
            ),
            context=ALICE,
        )
    message = refused.value.message
    assert message.startswith(f"Cannot backfill an allocation for node {node.uuid}: ")
    assert f"Resource class {RC} does not match the requested resource class silver" in message
    assert "The node lacks the requested traits CUSTOM_X" in message
    assert "Candidate nodes must be empty or contain the target node" in message
    with env.db.read() as conn:
        assert repo_alloc.list_allocations(conn, repo_alloc.AllocationFilters(), repo.Page()) == []
    idle = available(env)
    with pytest.raises(InvalidInput, match='Node must be in the "active" state'):
        env.service.execute(
            CreateAllocation({"resource_class": RC}, node_id=idle.id), context=ALICE
        )


def test_backfill_of_a_node_with_another_instance_is_a_conflict(env: Env) -> None:
    node = deployed(env)
    with env.db.begin() as conn:
        repo.update_node(conn, node.id, {"instance_uuid": "6f5dbd8e-7cd1-4dcf-9f2e-5b3b0b7b4bb1"})
    with pytest.raises(Conflict, match="is associated with instance"):
        env.service.execute(
            CreateAllocation({"resource_class": RC}, node_id=node.id), context=ALICE
        )


# ------------------------------------------------------------------- giving back


def test_deleting_an_allocation_frees_its_node(env: Env) -> None:
    node = available(env, owner="p1")
    done = allocate(env, name="db-1", owner="p1")
    env.service.execute(DestroyAllocation(done.id), context=ALICE)
    freed = env.node(node.id)
    assert (freed.instance_uuid, freed.allocation_id) == (None, None)
    events = [(e.event_type, e.event, e.user) for e in env.history(node.id)][-2:]
    assert events == [
        ("allocation", f"allocated to allocation {done.uuid} (db-1) of project p1", None),
        ("allocation", f"allocation {done.uuid} (db-1) deleted by alice; node freed", "alice"),
    ]
    assert allocate(env).node_id == node.id  # free to take again


def test_the_allocation_of_an_active_node_stays_until_undeploy(env: Env) -> None:
    node = available(env)
    done = allocate(env)
    act(env, node.id, "active")
    with pytest.raises(Conflict, match="because the node is active"):
        env.service.execute(DestroyAllocation(done.id), context=ALICE)
    undeployed = act(env, node.id, "deleted")
    assert undeployed.provision_state == "available"
    assert (undeployed.instance_uuid, undeployed.allocation_id) == (None, None)
    with env.db.read() as conn:
        assert repo_alloc.allocation_of_node(conn, node.id) is None


def test_an_active_node_in_maintenance_may_lose_its_allocation(env: Env) -> None:
    node = available(env)
    done = allocate(env)
    act(env, node.id, "active")
    env.service.execute(SetMaintenance(node.id, True, reason="broken"), context=ALICE)
    env.service.execute(DestroyAllocation(done.id), context=ALICE)
    assert env.node(node.id).instance_uuid is None


def test_removing_instance_uuid_deletes_the_allocation_where_updates_are_allowed(
    env: Env,
) -> None:
    node = available(env)
    allocate(env)
    env.service.execute(UpdateNode(node.id, {"instance_uuid": None}), context=ALICE)
    with env.db.read() as conn:
        assert repo_alloc.allocation_of_node(conn, node.id) is None
    allocate(env)
    act(env, node.id, "active")
    with pytest.raises(Conflict, match="can not have instance_uuid removed"):
        env.service.execute(UpdateNode(node.id, {"instance_uuid": None}), context=ALICE)


def test_the_owner_of_a_node_held_by_an_owned_allocation_stays(env: Env) -> None:
    node = available(env, owner="p1")
    allocate(env, owner="p1")
    with pytest.raises(Conflict, match="allocated to an allocation with an owner"):
        env.service.execute(UpdateNode(node.id, {"owner": "p2"}), context=ALICE)


def test_deleting_a_node_deletes_its_allocation(env: Env) -> None:
    node = available(env)
    done = allocate(env)
    env.service.execute(DestroyNode(node.id), context=ALICE)
    with env.db.read() as conn, pytest.raises(NotFound, match="could not be found"):
        repo_alloc.get_allocation_by_id(conn, done.id)


# ------------------------------------------------------------- restarts, take-over


def test_allocations_left_allocating_are_processed_at_the_next_start(env: Env) -> None:
    node = available(env)
    env.service.stop(5)
    conductor_id = env.service.allocator.conductor_id
    with env.db.begin() as conn:
        left = repo_alloc.create_allocation(
            conn, {"resource_class": RC, "conductor_affinity": conductor_id}
        )
    env.service.start()
    assert env.service.allocator.wait_idle(10)
    assert reload(env, left).node_id == node.id


def test_a_live_conductor_takes_over_the_allocations_of_a_dead_one(env: Env) -> None:
    node = available(env)
    with env.db.begin() as conn:
        dead = repo.register_conductor(conn, hostname="gone", conductor_group="", hardware_types=[])
        repo.unregister_conductor(conn, "gone")
        orphan = repo_alloc.create_allocation(
            conn, {"resource_class": RC, "conductor_affinity": dead.id}
        )
    assert env.service.allocator.take_over_orphans() == 1
    assert env.service.allocator.take_over_orphans() == 0  # taken once
    assert env.service.allocator.wait_idle(10)
    done = reload(env, orphan)
    assert (done.node_id, done.conductor_affinity) == (node.id, env.service.allocator.conductor_id)


def test_allocations_need_a_running_conductor(env: Env) -> None:
    env.service.stop(5)
    with pytest.raises(ServiceUnavailable, match="shutting down"):
        env.service.execute(CreateAllocation({"resource_class": RC}, node_id=None), context=SYSTEM)


def test_allocations_the_database_cut_short_are_retried_by_the_heartbeat(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = THREADS + 1  # more than the threads: none of them may die of it
    for _ in range(count):
        available(env)

    def unreachable(rt: Any, allocation_id: int) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    with monkeypatch.context() as down:
        down.setattr(allocations, "allocate", unreachable)
        created = [
            env.service.execute(
                CreateAllocation({"resource_class": RC}, node_id=None), context=ALICE
            )
            for _ in range(count)
        ]
        assert env.service.allocator.wait_idle(10)
    assert {reload(env, a).state for a in created} == {"allocating"}
    env.service.heartbeat()  # the database is back
    assert env.service.allocator.wait_idle(10)
    assert {reload(env, a).state for a in created} == {"active"}


def test_an_allocation_taking_and_freeing_a_node_is_in_the_event_log(env: Env) -> None:
    """instance_uuid changes made by allocations reach event stream subscribers too."""
    node = available(env)
    done = allocate(env)
    env.service.execute(DestroyAllocation(done.id), context=ALICE)
    with env.db.read() as conn:
        logged = [e for e in events.after(conn, 0, limit=1000) if e.node_uuid == node.uuid]
    changes = [e.changes.get("instance_uuid") for e in logged if "instance_uuid" in e.kinds]
    assert changes == [{"old": None, "new": done.uuid}, {"old": done.uuid, "new": None}]
