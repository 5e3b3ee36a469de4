"""The typed agent state: what the conductor keeps of a node's agent, read from and
written to the ``agent_*`` keys of ``driver_internal_info``."""

from __future__ import annotations

from dataclasses import replace

from conductor_env import Env

from metalcast.conductor import agent_state
from metalcast.conductor.agent_state import AgentState
from metalcast.conductor.task import acquire
from metalcast.drivers.base import AgentPhase


def test_stored_keys_read_as_a_typed_state() -> None:
    state = agent_state.read(
        {
            "agent_phase": "clean-running",
            "agent_commands": [{"id": "c1", "name": "erase_metadata", "args": {"devices": None}}],
            "agent_token_hash": "ab" * 32,
            "agent_log": ["one", "two"],
            "agent_progress": {"id": "c1", "name": "erase_metadata", "done": 1, "total": 2},
            "agent_version": "metalcast-agent 0.1.0",
            "unrelated": 1,
        }
    )

    assert (state.phase, state.resumed, state.up) == (AgentPhase.CLEAN, True, True)
    assert state.commands == ({"id": "c1", "name": "erase_metadata", "args": {"devices": None}},)
    assert state.log == ("one", "two")
    assert state.progress is not None and state.progress["done"] == 1
    assert state.version == "metalcast-agent 0.1.0"


def test_junk_in_the_keys_reads_as_nothing() -> None:
    state = agent_state.read(
        {"agent_phase": "dance", "agent_commands": [{"name": "no id"}, 3], "agent_token_hash": 7}
    )

    assert state == AgentState()


def test_a_state_round_trips_and_forget_keeps_what_the_agent_said(env: Env) -> None:
    node = env.create(driver_internal_info={"wait_started_at": "2026-12-06T18:00:00"})
    with acquire(env.service.rt, node.id, user="test", purpose="test") as task:
        written = AgentState(
            phase=AgentPhase.INSPECT,
            commands=({"id": "c2", "name": "get_inventory", "args": {}},),
            token_hash="cd" * 32,
            log=("booted",),
            version="metalcast-agent 0.1.0",
        )
        agent_state.store(task, written)
        task.save()
        assert agent_state.of(task) == written
        info = env.node(node.id).driver_internal_info
        assert info["agent_phase"] == "inspect" and info["wait_started_at"]

        agent_state.store(task, replace(written, resumed=True))
        assert task.node.driver_internal_info["agent_phase"] == "inspect-running"
        agent_state.forget(task)
        task.save()

    info = env.node(node.id).driver_internal_info
    assert info == {
        "wait_started_at": "2026-12-06T18:00:00",
        "agent_log": ["booted"],
        "agent_version": "metalcast-agent 0.1.0",
    }
