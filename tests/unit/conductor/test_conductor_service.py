"""Locks, the worker pool, recovery after a crash, graceful stop and power sync."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import sqlalchemy as sa
from conductor_env import ALICE, DEADLINE, Env

from metalcast.calls import (
    ChangePowerState,
    ChangeProvisionState,
    IsAcceptingWork,
    ProvisionRequest,
    SetMaintenance,
    UpdateNode,
    VendorPassthru,
)
from metalcast.conductor.periodics import PowerSync
from metalcast.conductor.recovery import recover_lost_locks
from metalcast.conductor.workers import describe
from metalcast.db import repository as repo
from metalcast.errors import NodeLocked, NoFreeWorker, ServiceUnavailable
from metalcast.states import PowerState


def act(env: Env, node_id: int, verb: str, **options: Any) -> None:
    env.service.execute(
        ChangeProvisionState(node_id, ProvisionRequest(verb, **options)), context=ALICE
    )


def test_node_locked_when_another_host_holds_the_lock(env: Env) -> None:
    node = env.create("available")
    with env.db.begin() as conn:
        assert repo.reserve_node(conn, node.id, "other-host") is None
    with pytest.raises(NodeLocked, match="locked by host other-host"):
        act(env, node.id, "active")
    after = env.node(node.id)
    assert after.provision_state == "available"
    assert after.reservation == "other-host"


def test_no_free_worker_before_anything_is_written(env: Env) -> None:
    service = env.make(hostname="conductor-2", workers_pool_size=1)
    busy = env.create("available", driver_info={"fake_latency": 1})
    other = env.create("available")
    service.execute(ChangeProvisionState(busy.id, ProvisionRequest("active")), context=ALICE)
    env.gate.wait_for_sleeper()
    with pytest.raises(NoFreeWorker):
        service.execute(ChangeProvisionState(other.id, ProvisionRequest("active")), context=ALICE)
    untouched = env.node(other.id)
    assert untouched.provision_state == "available"
    assert untouched.reservation is None
    env.gate.open()
    assert env.wait_settled(busy.id).provision_state == "active"


def test_recovery_fails_work_a_dead_process_left(env: Env) -> None:
    node = env.create("available")
    with env.db.begin() as conn:  # what a crash mid-deploy leaves behind
        repo.reserve_node(conn, node.id, "conductor-1")
        repo.update_node(
            conn,
            node.id,
            {
                "provision_state": "deploying",
                "target_provision_state": "active",
                "target_power_state": "power on",
            },
        )
    env.service.stop(timeout=1)
    env.make()
    after = env.node(node.id)
    assert after.provision_state == "deploy failed"
    assert after.reservation is None
    assert after.target_power_state is None
    assert after.last_error == (
        "metalcast conductor conductor-1 restarted while the node was in state 'deploying'; "
        "the operation was interrupted"
    )
    assert env.history(node.id)[-1].severity == "ERROR"


def test_a_power_action_cut_short_by_a_restart_is_recorded(env: Env) -> None:
    node = env.create("manageable", driver_info={"fake_latency": 1})
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    env.gate.wait_for_sleeper()  # the BMC call is under way
    assert env.service.stop(timeout=0.05) is False  # the conductor goes; the task is parked
    env.gate.open()
    assert env.node(node.id).target_power_state == "power on"
    env.make()  # the next start
    after = env.node(node.id)
    expected = (
        "metalcast conductor conductor-1 restarted during a power action (to 'power on'); "
        "the action was interrupted and the node's power state may not be 'power on'"
    )
    assert after.last_error == expected
    assert after.target_power_state is None
    assert after.reservation is None
    assert after.provision_state == "manageable"
    last = env.history(node.id)[-1]
    assert (last.event, last.event_type, last.severity) == (expected, "power", "ERROR")


def test_a_power_target_left_on_an_unlocked_node_is_cleared_and_recorded(env: Env) -> None:
    node = env.create("manageable")
    with env.db.begin() as conn:  # what a conductor that died elsewhere may leave
        repo.update_node(conn, node.id, {"target_power_state": "power off"})
    env.service.stop(timeout=1)
    env.make()
    after = env.node(node.id)
    assert after.target_power_state is None
    assert after.last_error is not None
    assert "during a power action (to 'power off')" in after.last_error
    assert env.history(node.id)[-1].event == after.last_error


def test_graceful_stop_parks_running_work(env: Env) -> None:
    node = env.create("available", driver_info={"fake_latency": 1})
    act(env, node.id, "active")
    env.gate.wait_for_sleeper()
    assert env.service.stop(timeout=0.05) is False
    assert not env.service.execute(IsAcceptingWork(), context=ALICE)
    with pytest.raises(ServiceUnavailable, match="shutting down"):
        act(env, env.create("available").id, "active")
    env.gate.open()  # the parked worker wakes up and must write nothing
    parked = env.node(node.id)
    assert parked.provision_state == "deploying"
    assert parked.reservation == "conductor-1"
    with env.db.read() as conn:
        assert repo.get_conductor(conn, "conductor-1").online is False
    env.make()
    assert env.node(node.id).provision_state == "deploy failed"


def test_power_sync_records_out_of_band_change(env: Env) -> None:
    node = env.create("enroll")
    act(env, node.id, "manage")
    assert env.wait_settled(node.id).power_state == "power off"
    env.service.execute(
        VendorPassthru(node.id, "set_power_state", {"power_state": "power on"}), context=ALICE
    )
    assert env.service.sync_power_states().get("out of band") == 1
    after = env.node(node.id)
    assert after.power_state == "power on"
    last = env.history(node.id)[-1]
    assert last.event_type == "power_sync"
    assert last.event == "Power state changed out of band: power off → power on"
    assert env.service.sync_power_states().get("in sync") == 1


def test_power_sync_forces_the_recorded_state(env: Env) -> None:
    service = env.make(hostname="conductor-2", force_power_state_during_sync=True)
    node = env.create("enroll")
    act(env, node.id, "manage")
    snapshot_node = env.wait_settled(node.id)
    env.service.execute(
        VendorPassthru(node.id, "set_power_state", {"power_state": "power on"}), context=ALICE
    )
    env.service.stop()  # the ring gives conductor-2 every node once it is alone
    service.ring.reload()
    assert service.sync_power_states().get("forced") == 1
    assert env.node(node.id).power_state == "power off"
    from metalcast.conductor.interfaces import snapshot

    assert env.bmc.record(snapshot(snapshot_node, box=env.secret_box)).power_state == PowerState.OFF


def test_power_sync_failures_lead_to_maintenance(env: Env) -> None:
    node = env.create("manageable", driver_info={"fake_fail": "power"})
    for _ in range(3):
        env.service.sync_power_states()
    after = env.node(node.id)
    assert after.maintenance is True
    assert after.fault == "power failure"
    assert "failed 3 times in a row" in (after.maintenance_reason or "")
    # in maintenance it is only probed, and stays there while the BMC still fails
    assert env.service.sync_power_states() == {"still failing": 1}
    assert env.node(node.id).maintenance is True
    env.service.execute(SetMaintenance(node.id, False, reason=None), context=ALICE)
    cleared = env.node(node.id)
    assert cleared.fault is None
    assert "power_sync_failures" not in cleared.driver_internal_info


def test_power_sync_takes_a_recovered_node_out_of_maintenance(env: Env) -> None:
    node = env.create("manageable", driver_info={"fake_fail": "power"})
    for _ in range(3):
        env.service.sync_power_states()
    assert env.node(node.id).fault == "power failure"
    env.service.execute(UpdateNode(node.id, {"driver_info": {}}), context=ALICE)
    assert env.service.sync_power_states() == {"recovered": 1}
    after = env.node(node.id)
    assert (after.maintenance, after.fault, after.last_error) == (False, None, None)
    assert "power_sync_failures" not in after.driver_internal_info
    assert "maintenance for power failure cleared" in env.history(node.id)[-1].event


def test_power_sync_leaves_enrolled_and_waiting_nodes_alone(env: Env) -> None:
    env.create("enroll", driver_info={"fake_fail": "power"})
    waiting = env.create("manageable", driver_info={"fake_fail": "power"})
    with env.db.begin() as conn:  # as if a deploy waited for its agent
        repo.update_node(conn, waiting.id, {"provision_state": "wait call-back"})
    assert env.service.sync_power_states() == {}


def test_power_action(env: Env) -> None:
    node = env.create("manageable")
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    done = env.wait_settled(node.id)
    assert done.power_state == "power on"
    assert done.target_power_state is None
    env.service.execute(ChangePowerState(node.id, "rebooting", timeout=None), context=ALICE)
    assert env.wait_settled(node.id).power_state == "power on"
    assert env.history(node.id)[-1].event_type == "power"


def test_power_action_failure_is_recorded(env: Env) -> None:
    node = env.create("manageable", driver_info={"fake_fail": "power"})
    env.service.execute(SetMaintenance(node.id, True, reason="x"), context=ALICE)
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    done = env.wait_settled(node.id)
    assert done.provision_state == "manageable"
    assert done.target_power_state is None
    assert (done.last_error or "").startswith("Failed to change power state to 'power on'")
    assert env.history(node.id)[-1].severity == "ERROR"


def test_one_slow_bmc_does_not_hold_up_the_others(env: Env) -> None:
    slow = env.create("manageable", driver_info={"fake_latency": 1}, name="slow")
    fast = env.create("manageable", name="fast")
    env.service.execute(ChangePowerState(fast.id, "power on", timeout=None), context=ALICE)
    env.wait_settled(fast.id)
    env.service.execute(
        VendorPassthru(fast.id, "set_power_state", {"power_state": "power off"}), context=ALICE
    )
    sync = PowerSync(env.service.rt, call_timeout=2)
    counts = sync.run_once()  # the slow BMC blocks on the gate until the test opens it
    assert counts.get("timeout") == 1
    assert counts.get("out of band") == 1
    assert env.node(fast.id).power_state == "power off"
    assert env.node(slow.id).driver_internal_info["power_sync_failures"] == 1
    env.gate.open()  # its late answer is still applied (and resets the failure count)
    sync.close()


def _unreachable() -> contextlib.AbstractContextManager[sa.Connection]:
    """``Database.begin`` while the database is down: every write fails."""
    raise sa.exc.OperationalError("COMMIT", {}, Exception("connection refused"))


def test_a_lock_the_database_did_not_release_is_recovered_by_the_heartbeat(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = env.create("manageable", driver_info={"fake_latency": 1})
    act(env, node.id, "provide")
    env.gate.wait_for_sleeper()  # cleaning is under way
    with monkeypatch.context() as down:
        down.setattr(env.db, "begin", _unreachable)
        env.gate.open()  # its outcome, its failure and its release all fail
        assert env.service.rt.workers.wait_idle(DEADLINE)
        assert env.service.rt.lost_locks.take() == [node.id]
        env.service.rt.lost_locks.add(node.id)
        down.setattr(env.db, "read", _unreachable)
        assert recover_lost_locks(env.service.rt) == 0  # still down: kept for next time
    stuck = env.node(node.id)
    assert (stuck.provision_state, stuck.reservation) == ("cleaning", env.service.hostname)
    with monkeypatch.context() as down:
        down.setattr(env.db, "begin", _unreachable)
        with pytest.raises(sa.exc.OperationalError):
            env.service.beat()
    env.service.catch_up()  # no heartbeat reached the database: nothing tried
    assert env.service.rt.lost_locks.take() == [node.id]
    env.service.rt.lost_locks.add(node.id)
    env.service.beat()  # the database is back; the heartbeat alone, on its own thread
    assert env.node(node.id).reservation == env.service.hostname
    env.service.catch_up()  # the pass beside it recovers the node
    after = env.node(node.id)
    assert after.provision_state == "clean failed"
    assert after.reservation is None
    assert after.last_error == (
        f"metalcast conductor {env.service.hostname} lost its database connection while "
        "the node was in state 'cleaning'; the operation was interrupted"
    )
    assert env.history(node.id)[-1].severity == "ERROR"
    assert env.service.rt.lost_locks.take() == []


def test_an_unreachable_database_is_described_without_its_statement() -> None:
    exc = sa.exc.OperationalError(
        "UPDATE nodes SET last_error=%(e)s", {"e": "x"}, Exception("server closed the connection")
    )
    assert describe(exc) == (
        "The database became unreachable during the operation: "
        "(builtins.Exception) server closed the connection"
    )


def test_a_node_whose_failure_could_not_be_recorded_keeps_its_lock_for_recovery(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is back for the release but was away for the outcome: released,
    the node would rest in its work state with nothing to say why."""
    node = env.create("manageable", driver_info={"fake_latency": 1})
    act(env, node.id, "provide")
    env.gate.wait_for_sleeper()

    def save_node(*args: Any, **kwargs: Any) -> None:
        raise sa.exc.OperationalError("UPDATE nodes", {}, Exception("server closed"))

    with monkeypatch.context() as down:
        down.setattr(repo, "save_node", save_node)
        env.gate.open()
        assert env.service.rt.workers.wait_idle(DEADLINE)
    held = env.node(node.id)
    assert (held.provision_state, held.reservation) == ("cleaning", env.service.hostname)
    env.service.heartbeat()
    after = env.node(node.id)
    assert (after.provision_state, after.reservation) == ("clean failed", None)
    assert "lost its database connection" in (after.last_error or "")


def _answer_lost(
    begin: Any,
) -> Any:
    """``Database.begin`` whose commit is applied but whose answer never comes back,
    as when the database stops the moment it commits."""

    @contextlib.contextmanager
    def lost() -> Any:
        with begin() as conn:
            yield conn
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    return lost


def test_a_lock_whose_commit_answer_was_lost_is_released_by_the_heartbeat(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock was taken, but the request that took it saw an error: no task runs
    the node, and nothing but the catch-up pass would ever release it."""
    node = env.create("manageable")
    with monkeypatch.context() as flaky:
        flaky.setattr(env.db, "begin", _answer_lost(env.db.begin))
        with pytest.raises(sa.exc.OperationalError):
            act(env, node.id, "provide")
    held = env.node(node.id)
    assert (held.provision_state, held.reservation) == ("manageable", env.service.hostname)
    env.service.heartbeat()
    after = env.node(node.id)
    assert (after.provision_state, after.reservation) == ("manageable", None)
    assert after.last_error is None  # nothing was interrupted: there is nothing to say
    act(env, node.id, "provide")  # and the node takes requests again
    assert env.service.rt.workers.wait_idle(DEADLINE)
    assert env.node(node.id).provision_state == "available"


def test_a_lost_lock_a_running_task_took_again_is_left_to_that_task(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's commit was applied though its answer was lost, and a new request
    locked the node again: recovery must not fail the work that now runs."""
    node = env.create("manageable", driver_info={"fake_latency": 1})
    env.service.rt.lost_locks.add(node.id)  # what the lost answer left recorded
    act(env, node.id, "provide")
    env.gate.wait_for_sleeper()  # cleaning is under way, under this conductor's lock
    env.service.heartbeat()
    running = env.node(node.id)
    assert (running.provision_state, running.reservation) == ("cleaning", env.service.hostname)
    assert running.last_error is None
    env.gate.open()
    assert env.service.rt.workers.wait_idle(DEADLINE)
    assert env.node(node.id).provision_state == "available"
    env.service.heartbeat()  # the task let the node go: the record goes too
    assert env.service.rt.lost_locks.take() == []
    assert env.node(node.id).reservation is None
