"""A conductor that stops heartbeating: the others take its nodes over.

Conductor-1 (the env's) is the one that dies; conductor-2 and conductor-3 survive,
built here with a hand-moved monotonic clock (their :class:`Health`) and a boot
interface that records on whose boot services a node's ramdisk boot was prepared.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conductor_env import ALICE, DEADLINE, Env, make_env, settings_for
from pydantic import ValidationError

from metalcast.calls import ChangeProvisionState, CreateNode, ProvisionRequest
from metalcast.conductor import periodics
from metalcast.conductor.runtime import RetryPolicy
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.conductor.task import LockLost, try_acquire
from metalcast.config import ConductorSettings
from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Node
from metalcast.drivers.base import DriverContext
from metalcast.drivers.fake import FakeBoot, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import FatalDriverError

TIMEOUT = 15.0  # heartbeat_timeout's default
DEAD = "conductor-1"


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingBoot(FakeBoot):
    """Records ``(conductor, node uuid)`` for every ramdisk boot prepared; fails for
    the nodes in ``failing``."""

    name = "recording"

    def __init__(self, host: str, calls: list[tuple[str, str]], failing: set[str]) -> None:
        super().__init__()
        self.host, self.calls, self.failing = host, calls, failing

    def prepare_ramdisk(self, ctx: DriverContext) -> None:
        if ctx.node.uuid in self.failing:
            raise FatalDriverError("boot files not writable", operation="prepare")
        self.calls.append((self.host, ctx.node.uuid))


@dataclasses.dataclass
class Cluster:
    env: Env
    ticks: Ticks
    live: dict[str, ConductorService]
    boots: list[tuple[str, str]]
    failing: set[str]

    @property
    def dead(self) -> ConductorService:
        return self.env.service

    def conductor_id(self, hostname: str) -> int:
        with self.env.db.read() as conn:
            return repo.get_conductor(conn, hostname).id

    def node(self, state: str, **columns: Any) -> Node:
        """A node of the recording boot interface put in ``state`` behind the API's back."""
        values = {"driver": "fake-hardware", "boot_interface": "recording"}
        created = self.live["conductor-2"].execute(CreateNode(values), context=ALICE)
        with self.env.db.begin() as conn:
            repo.update_node(conn, created.id, {"provision_state": state, **columns})
        return self.env.node(created.id)

    def owner(self, node: Node) -> str:
        rings = self.live["conductor-2"].ring.reload()
        owner = rings.owner(node.uuid, group=node.conductor_group, hardware_type=node.driver)
        assert owner is not None
        return owner

    def silence(self, hostname: str, seconds: float = TIMEOUT + 1) -> None:
        """``hostname`` stops heartbeating: its row ages by ``seconds``, on the earlier
        of the real clock and the conductors' manual one (which stands still at the
        fixture's start: the allocator judges by it, and on a loaded machine real time
        runs seconds ahead of it)."""
        c = t.conductors.c
        now = min(repo.utcnow(), self.env.clock.now())
        with self.env.db.begin() as conn:
            conn.execute(
                sa.update(t.conductors)
                .where(c.hostname == hostname)
                .values(updated_at=now - timedelta(seconds=seconds))
            )

    def take_over(self) -> None:
        for service in self.live.values():
            service.take_over()


def _registry(env: Env, host: str, calls: list[tuple[str, str]], failing: set[str]) -> Any:
    supported = dict(FAKE_HARDWARE.supported)
    supported["boot"] = (*supported["boot"], RecordingBoot)
    hw = dataclasses.replace(FAKE_HARDWARE, supported=supported)
    factories: dict[Any, Any] = dict(fake_factories(env.bmc, sleep=env.gate.sleep))
    factories[RecordingBoot] = lambda: RecordingBoot(host, calls, failing)
    return DriverRegistry([hw], factories=factories)


@pytest.fixture
def cluster(tmp_path: Path, database_url: str) -> Iterator[Cluster]:
    for env in make_env(tmp_path, database_url=database_url):
        ticks, calls, failing = Ticks(), [], set()
        live: dict[str, ConductorService] = {}
        for host in ("conductor-2", "conductor-3"):
            service = ConductorService(
                settings_for(tmp_path, hostname=host),
                env.db,
                _registry(env, host, calls, failing),
                env.secret_box,
                clock=env.clock,
                intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
                retry=RetryPolicy(attempts=1, backoff=0),
                monotonic=ticks,
            )
            service.start()
            live[host] = service
        try:
            yield Cluster(env, ticks, live, calls, failing)
        finally:
            for service in live.values():
                if service.started:
                    service.stop(timeout=DEADLINE)


def _trusted(cluster: Cluster) -> None:
    """The survivors have heartbeated for ``heartbeat_timeout``."""
    for service in cluster.live.values():
        service.heartbeat()
    cluster.ticks.now += TIMEOUT


# ---------------------------------------------------------------------- settings


def test_heartbeat_timeout_defaults_to_one_and_a_half_intervals() -> None:
    settings = ConductorSettings()
    assert (settings.heartbeat_interval, settings.heartbeat_timeout) == (10.0, 15.0)
    # detection (timeout) plus one takeover check (interval / 4) within two intervals
    assert settings.heartbeat_timeout + settings.heartbeat_interval / 4 < 2 * 10.0


def test_heartbeat_timeout_must_exceed_the_interval() -> None:
    with pytest.raises(ValidationError, match=re.escape("heartbeat_timeout (10s) must exceed")):
        ConductorSettings(heartbeat_interval=10, heartbeat_timeout=10)


def test_the_takeover_check_runs_four_times_per_heartbeat(tmp_path: Path) -> None:
    for env in make_env(tmp_path):
        assert env.service.intervals.takeover == 0  # no heartbeat thread, no check
        service = ConductorService(
            settings_for(tmp_path, hostname="c9"), env.db, env.service.rt.registry, env.secret_box
        )
        assert service.intervals.takeover == 2.5


# ---------------------------------------------------------------------- takeover


def test_a_dead_conductors_work_fails_naming_both_conductors(cluster: Cluster) -> None:
    deploying = cluster.node("deploying", reservation=DEAD)
    cleaning = cluster.node("cleaning", reservation=DEAD, target_provision_state="available")
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    for node, failed in ((deploying, "deploy failed"), (cleaning, "clean failed")):
        after = cluster.env.node(node.id)
        assert (after.provision_state, after.reservation) == (failed, None)
        assert after.last_error == (
            f"metalcast conductor {DEAD} stopped heartbeating while the node was in state "
            f"'{node.provision_state}'; conductor {cluster.owner(node)} took its nodes over; "
            "the operation was interrupted"
        )
        assert cluster.env.history(node.id)[-1].conductor == cluster.owner(node)


def test_an_interrupted_power_action_is_cleared_with_the_reason(cluster: Cluster) -> None:
    locked = cluster.node("manageable", reservation=DEAD, target_power_state="power on")
    loose = cluster.node("manageable", target_power_state="power off")
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    for node, target in ((locked, "power on"), (loose, "power off")):
        after = cluster.env.node(node.id)
        assert (after.target_power_state, after.reservation) == (None, None)
        assert after.provision_state == "manageable"
        assert after.last_error is not None
        assert after.last_error.startswith(
            f"metalcast conductor {DEAD} stopped heartbeating during a power action (to "
            f"'{target}'); conductor {cluster.owner(node)} took its nodes over"
        )
        last = cluster.env.history(node.id)[-1]
        assert (last.event_type, last.severity) == ("power", "ERROR")


def test_no_lock_survives_even_where_no_conductor_serves_the_node(cluster: Cluster) -> None:
    nodes = [cluster.node("available", reservation=DEAD) for _ in range(6)]
    orphan = cluster.node("deploying", reservation=DEAD, conductor_group="site-b")
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    with cluster.env.db.read() as conn:
        assert repo.reserved_by(conn, DEAD) == []
        assert repo.count_nodes(conn, repo.NodeFilters(reserved=True)) == 0
    assert all(cluster.env.node(n.id).provision_state == "available" for n in nodes)
    after = cluster.env.node(orphan.id)
    assert after.provision_state == "deploy failed"
    assert after.last_error is not None
    assert "conductor conductor-2 took its nodes over" in after.last_error  # lowest live


def test_waiting_nodes_keep_waiting_served_by_their_new_owner(cluster: Cluster) -> None:
    dead_id = cluster.conductor_id(DEAD)
    started = "2026-01-01T00:00:00"
    waiting = [
        cluster.node(
            state,
            conductor_affinity=dead_id,
            driver_internal_info={"wait_started_at": started},
            reservation=DEAD if index == 0 else None,
        )
        for index, state in enumerate(["wait call-back", "clean wait", "rescue wait"] * 2)
    ]
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    for node in waiting:
        owner = cluster.owner(node)
        after = cluster.env.node(node.id)
        assert (after.provision_state, after.reservation) == (node.provision_state, None)
        assert after.conductor_affinity == cluster.conductor_id(owner)
        assert after.driver_internal_info["wait_started_at"] == started  # timer unchanged
        assert cluster.boots.count((owner, node.uuid)) == 1
        last = cluster.env.history(node.id)[-1]
        assert last.event == (
            f"conductor {owner} took over the node from {DEAD}; its boot configuration is "
            f"now served by {owner}"
        )
    cluster.take_over()  # done once: a second pass prepares nothing again
    assert len(cluster.boots) == len(waiting)


def test_a_waiting_node_whose_boot_cannot_be_served_fails_with_the_reason(
    cluster: Cluster,
) -> None:
    node = cluster.node("wait call-back", conductor_affinity=cluster.conductor_id(DEAD))
    cluster.failing.add(node.uuid)
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    after = cluster.env.node(node.id)
    assert (after.provision_state, after.reservation) == ("deploy failed", None)
    assert after.last_error is not None
    assert after.last_error.startswith(
        f"conductor {cluster.owner(node)} took over the node from {DEAD}, which stopped "
        "heartbeating, but cannot serve its boot configuration"
    )
    assert "boot files not writable" in after.last_error


def test_a_live_conductors_waiting_nodes_stay_where_they_are(cluster: Cluster) -> None:
    mine = cluster.conductor_id("conductor-2")
    node = cluster.node("wait call-back", conductor_affinity=mine)
    _trusted(cluster)
    cluster.silence(DEAD)
    cluster.take_over()
    assert cluster.env.node(node.id).conductor_affinity == mine
    assert cluster.boots == []


def test_a_clean_stop_is_taken_over_without_waiting_for_the_timeout(cluster: Cluster) -> None:
    node = cluster.node("deploying", reservation=DEAD)
    _trusted(cluster)
    with cluster.env.db.begin() as conn:
        repo.unregister_conductor(conn, DEAD)  # offline; its lock stayed (a parked task)
    cluster.take_over()
    assert cluster.env.node(node.id).provision_state == "deploy failed"


# ---------------------------------------------------------------------- no false deaths


def test_a_conductor_just_started_declares_nobody_dead(cluster: Cluster) -> None:
    node = cluster.node("deploying", reservation=DEAD)
    cluster.silence(DEAD)
    cluster.ticks.now += TIMEOUT - 1
    cluster.take_over()
    assert cluster.env.node(node.id).reservation == DEAD
    cluster.ticks.now += 1
    cluster.take_over()
    assert cluster.env.node(node.id).reservation is None


class _DownDatabase:
    """A database that does not answer."""

    def begin(self) -> Any:
        raise sa.exc.OperationalError("UPDATE conductors", {}, Exception("connection refused"))


def test_after_its_own_heartbeat_failed_a_conductor_waits_before_judging(
    cluster: Cluster,
) -> None:
    node = cluster.node("deploying", reservation=DEAD)
    _trusted(cluster)
    for service in cluster.live.values():  # the database goes away for everyone
        db, service.rt.db = service.rt.db, _DownDatabase()  # type: ignore[assignment]
        with pytest.raises(sa.exc.OperationalError):
            service.heartbeat()
        service.rt.db = db
    cluster.silence(DEAD)  # back: every row is stale, the dead one's for good
    cluster.take_over()
    assert cluster.env.node(node.id).reservation == DEAD  # nobody judged yet
    _trusted(cluster)
    cluster.take_over()
    assert cluster.env.node(node.id).provision_state == "deploy failed"


# ---------------------------------------------------------------------- ring split


def test_power_sync_touches_each_node_once_across_live_conductors(cluster: Cluster) -> None:
    cluster.dead.stop()
    nodes = [cluster.node("manageable") for _ in range(40)]
    services = list(cluster.live.values())
    for service in services:
        service.ring.reload()
    seen = [{n.id for n in periodics.sync_candidates(s.rt)} for s in services]
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {n.id for n in nodes}
    assert seen[0] and seen[1]
    counts = [s.sync_power_states() for s in services]
    assert sum(c.get("recorded", 0) for c in counts) == len(nodes)
    assert sum(sum(c.values()) for c in counts) == len(nodes)


def test_wait_timeouts_are_checked_once_across_live_conductors(cluster: Cluster) -> None:
    cluster.dead.stop()
    since = (cluster.env.clock.now() - timedelta(hours=2)).isoformat()
    nodes = [
        cluster.node("wait call-back", driver_internal_info={"wait_started_at": since})
        for _ in range(20)
    ]
    services = list(cluster.live.values())
    for service in services:
        service.ring.reload()
    expired = [s.check_wait_timeouts() for s in services]
    assert sum(expired) == len(nodes)
    assert all(expired)
    assert all(cluster.env.node(n.id).provision_state == "deploy failed" for n in nodes)


# ---------------------------------------------------------------------- fencing


def test_a_task_that_lost_its_lock_writes_nothing(cluster: Cluster) -> None:
    node = cluster.node("manageable")
    service = cluster.live["conductor-2"]
    task = try_acquire(service.rt, node.id, user="alice", purpose="test")
    assert not isinstance(task, tuple)
    with cluster.env.db.begin() as conn:
        assert repo.steal_node(conn, node.id, host="conductor-3", holder="conductor-2")
    task.update(description="late write")
    with pytest.raises(LockLost, match="conductor conductor-3 holds it now") as raised:
        task.save(event="late")
    assert raised.value.holder == "conductor-3"
    with pytest.raises(LockLost):  # and every later write, without asking the database
        task.save()
    task.release()
    after = cluster.env.node(node.id)
    assert (after.description, after.reservation) == (None, "conductor-3")
    assert "late" not in [e.event for e in cluster.env.history(node.id)]


def test_a_worker_whose_lock_was_taken_over_stops_without_failing_the_node(
    cluster: Cluster,
) -> None:
    env = cluster.env
    node = env.create("available", driver_info={"fake_latency": 1})
    env.service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    env.gate.wait_for_sleeper()  # the deploy runs under conductor-1's lock
    with env.db.begin() as conn:
        assert repo.steal_node(conn, node.id, host="conductor-2", holder=DEAD)
    env.gate.open()
    assert env.service.rt.workers.wait_idle(DEADLINE)
    after = env.node(node.id)
    assert (after.provision_state, after.reservation) == ("deploying", "conductor-2")
    assert after.last_error is None
    assert env.service.rt.lost_locks.take() == []


def test_a_conductor_just_started_takes_no_allocation_over_either(cluster: Cluster) -> None:
    survivor = cluster.live["conductor-2"]
    with cluster.env.db.begin() as conn:
        orphan = repo_alloc.create_allocation(
            conn, {"resource_class": "rc", "conductor_affinity": cluster.conductor_id(DEAD)}
        )
    cluster.silence(DEAD)
    survivor.heartbeat()  # not trusted yet: the dead one's allocation stays its own
    with cluster.env.db.read() as conn:
        assert repo_alloc.get_allocation_by_id(conn, orphan.id).conductor_affinity == (
            cluster.conductor_id(DEAD)
        )
    cluster.ticks.now += TIMEOUT
    cluster.silence(DEAD)
    survivor.heartbeat()
    with cluster.env.db.read() as conn:
        taken = repo_alloc.get_allocation_by_id(conn, orphan.id)
    assert taken.conductor_affinity == cluster.conductor_id("conductor-2")
