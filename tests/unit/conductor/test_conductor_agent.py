"""A ramdisk agent's heartbeat: recorded under the lock, the deploy hook, the timeout."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from conductor_env import ALICE, DEADLINE, Env

from metalcast.calls import AgentHeartbeat, ChangeProvisionState, CreateNode, ProvisionRequest
from metalcast.conductor.agent import NotAgentState
from metalcast.conductor.service import ConductorService
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.drivers.base import DriverContext
from metalcast.drivers.fake import FakeDeploy, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import NodeLocked
from metalcast.reports import AgentReport

URL = "http://10.0.0.5:9999"


class RecordingDeploy(FakeDeploy):
    """A deploy interface that remembers what each heartbeat let it see."""

    name = "recording"
    seen: list[dict[str, Any]] = []  # shared on purpose, reset per test

    def heartbeat(self, ctx: DriverContext) -> None:
        RecordingDeploy.seen.append(dict(ctx.node.driver_internal_info))


@pytest.fixture
def recording(env: Env) -> ConductorService:
    RecordingDeploy.seen = []
    supported = dict(FAKE_HARDWARE.supported)
    supported["deploy"] = (*supported["deploy"], RecordingDeploy)
    hw = dataclasses.replace(FAKE_HARDWARE, supported=supported)
    registry = DriverRegistry([hw], factories=fake_factories(env.bmc))
    return env.make(registry=registry, hostname="conductor-2")


def beat(service: ConductorService, node_id: int, version: str | None = "9.1.0") -> None:
    report = AgentReport(callback_url=URL, agent_version=version)
    service.execute(AgentHeartbeat(node_id, report), context=ALICE)


def create(env: Env, service: ConductorService, state: str, **columns: Any) -> int:
    """A node of the recording deploy interface, put in ``state`` behind the API's back."""
    values = {"driver": "fake-hardware", "deploy_interface": "recording"}
    node_id = service.execute(CreateNode(values), context=ALICE).id
    with env.db.begin() as conn:
        repo.update_node(conn, node_id, {"provision_state": state, **columns})
    return node_id


@pytest.mark.parametrize(
    "state", ["wait call-back", "deploying", "clean wait", "rescue wait", "service wait"]
)
def test_heartbeat_records_the_agent_and_calls_the_hook(
    env: Env, recording: ConductorService, state: str
) -> None:
    node_id = create(env, recording, state)
    beat(recording, node_id)
    node = env.wait_settled(node_id) if state != "deploying" else _unlocked(env, node_id)
    info = node.driver_internal_info
    assert info["agent_url"] == URL
    assert info["agent_version"] == "9.1.0"
    assert info["agent_last_heartbeat"] == env.clock.now().isoformat()
    assert node.provision_state == state  # nothing continues the deploy yet
    assert RecordingDeploy.seen == [info]


def _unlocked(env: Env, node_id: int) -> Node:
    """The node once the heartbeat's worker released it (``deploying`` never settles)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        node = env.node(node_id)
        if node.reservation is None:
            return node
        time.sleep(0.01)
    raise AssertionError("the heartbeat task kept the lock")


def test_heartbeat_without_agent_version_assumes_ironics_legacy(
    env: Env, recording: ConductorService
) -> None:
    node_id = create(env, recording, "wait call-back")
    beat(recording, node_id, version=None)
    assert env.wait_settled(node_id).driver_internal_info["agent_version"] == "3.0.0"


@pytest.mark.parametrize("state", ["available", "active", "manageable", "deploy failed"])
def test_heartbeat_outside_agent_states_is_a_conflict(
    env: Env, recording: ConductorService, state: str
) -> None:
    node_id = create(env, recording, state)
    with pytest.raises(NotAgentState) as caught:
        beat(recording, node_id)
    assert caught.value.status_code == 409
    node = env.node(node_id)
    assert "agent_url" not in node.driver_internal_info
    assert node.reservation is None
    assert RecordingDeploy.seen == []


def test_heartbeat_on_a_locked_node_is_node_locked(env: Env, recording: ConductorService) -> None:
    node_id = create(env, recording, "wait call-back")
    with env.db.begin() as conn:
        assert repo.reserve_node(conn, node_id, "other-conductor") is None
    with pytest.raises(NodeLocked):
        beat(recording, node_id)
    assert "agent_last_heartbeat" not in env.node(node_id).driver_internal_info


def test_heartbeat_in_maintenance_is_recorded_without_the_hook(
    env: Env, recording: ConductorService
) -> None:
    node_id = create(env, recording, "clean wait", maintenance=True)
    beat(recording, node_id)
    assert env.wait_settled(node_id).driver_internal_info["agent_url"] == URL
    assert RecordingDeploy.seen == []


def test_timeout_message_names_the_heartbeat_once_there_was_one(env: Env) -> None:
    def wait_with_error() -> str:
        node = env.create("available", driver_info={"fake_wait": "deploy"})
        env.service.execute(
            ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE
        )
        assert env.wait_settled(node.id).provision_state == "wait call-back"
        return str(node.id)

    silent = int(wait_with_error())
    heard = int(wait_with_error())
    beat(env.service, heard)
    when = env.clock.now().isoformat()
    assert env.wait_settled(heard).driver_internal_info["agent_last_heartbeat"] == when
    env.clock.advance(3600)
    assert env.service.check_wait_timeouts() == 2
    assert (env.node(silent).last_error or "").endswith("the agent never heartbeated")
    assert (env.node(heard).last_error or "").endswith(f"the last agent heartbeat was at {when}")


def test_progress_is_kept_while_a_command_runs_and_dropped_when_the_agent_idles(
    env: Env, recording: ConductorService
) -> None:
    node_id = create(env, recording, "wait call-back")
    running = {"id": "c1", "name": "write_image", "done": 5 * 2**20, "total": 8 * 2**20}
    report = AgentReport(callback_url=URL, progress={**running, "rate": 1e6})
    recording.execute(AgentHeartbeat(node_id, report), context=ALICE)
    shown = env.wait_settled(node_id).driver_internal_info["agent_progress"]
    assert shown == {**running, "rate": 1e6}

    beat(recording, node_id)  # the command ended: the next heartbeat carries no progress
    assert env.wait_settled(node_id).driver_internal_info.get("agent_progress") is None
