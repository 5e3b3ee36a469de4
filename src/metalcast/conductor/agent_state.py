"""What the conductor keeps of a node's ramdisk agent, read and written as one type.

The state is stored in the node's ``driver_internal_info`` (the API shows it, and a
node waiting for its agent across an upgrade keeps it), under these keys::

    agent_commands        the queue: [{"id", "name", "args"}], the first one current
    agent_prepared        commands that write the instance, prepared before the
                          ramdisk boot and queued by the deploy's write_image step
    agent_phase           what the agent was booted for (``AgentPhase``); with
                          "-running" appended once the agent is up and the phase's
                          operation runs again ("clean-running")
    agent_token_hash      sha256 of the token the agent was given at lookup
    agent_phase_started   ISO time the current phase began (for durations)
    agent_progress        the agent's last progress report
    agent_log             the last lines of the agent's log
    agent_url             where an Ironic agent listens (its heartbeat's callback_url)
    agent_version         the agent's version as it reports it
    agent_last_heartbeat  ISO time of the last heartbeat

Nothing else reads or writes those keys: :func:`of` reads them, :func:`store` writes
them (``None`` and empty values remove a key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

from metalcast.conductor.task import NodeTask
from metalcast.drivers.base import AgentPhase
from metalcast_agent.protocol import CommandSpec, ProgressReport

_RUNNING = "-running"


@dataclass(frozen=True, slots=True)
class AgentState:
    """A node's agent, as the conductor knows it."""

    phase: AgentPhase | None = None
    #: the agent came up for ``phase`` and the operation runs again
    resumed: bool = False
    commands: tuple[CommandSpec, ...] = ()
    #: the commands that write the instance, prepared, not yet queued
    prepared: tuple[CommandSpec, ...] = ()
    token_hash: str | None = None
    phase_started: str | None = None
    progress: ProgressReport | None = None
    log: tuple[str, ...] = ()
    url: str | None = None
    version: str | None = None
    last_heartbeat: str | None = None

    @property
    def up(self) -> bool:
        """Whether the agent looked up (it was given a token)."""
        return self.token_hash is not None


#: the stored key of every field but ``resumed`` (folded into agent_phase)
_KEYS: Mapping[str, str] = {
    "phase": "agent_phase",
    "commands": "agent_commands",
    "prepared": "agent_prepared",
    "token_hash": "agent_token_hash",
    "phase_started": "agent_phase_started",
    "progress": "agent_progress",
    "log": "agent_log",
    "url": "agent_url",
    "version": "agent_version",
    "last_heartbeat": "agent_last_heartbeat",
}

#: what :func:`forget` keeps
_KEPT_AFTER_PHASE = ("log", "url", "version", "last_heartbeat")


def read(info: Mapping[str, Any]) -> AgentState:
    """The agent state stored in ``info`` (a node's ``driver_internal_info``)."""
    phase, resumed = _phase(info.get(_KEYS["phase"]))
    progress = info.get(_KEYS["progress"])
    return AgentState(
        phase=phase,
        resumed=resumed,
        commands=tuple(_commands(info.get(_KEYS["commands"]))),
        prepared=tuple(_commands(info.get(_KEYS["prepared"]))),
        token_hash=_text(info.get(_KEYS["token_hash"])),
        phase_started=_text(info.get(_KEYS["phase_started"])),
        # stored as the agent sent it: an object whose fields the API did not check
        progress=cast("ProgressReport", progress) if isinstance(progress, dict) else None,
        log=tuple(str(line) for line in info.get(_KEYS["log"]) or ()),
        url=_text(info.get(_KEYS["url"])),
        version=_text(info.get(_KEYS["version"])),
        last_heartbeat=_text(info.get(_KEYS["last_heartbeat"])),
    )


def of(task: NodeTask) -> AgentState:
    """The agent state of the task's node."""
    return read(task.node.driver_internal_info)


def store(task: NodeTask, state: AgentState) -> None:
    """Write ``state`` into the node's ``driver_internal_info`` (saved with the next
    save)."""
    values: dict[str, Any] = {}
    for item in fields(AgentState):
        if item.name == "resumed":
            continue
        value = getattr(state, item.name)
        if item.name == "phase" and value is not None:
            value = f"{value.value}{_RUNNING if state.resumed else ''}"
        elif item.name in ("commands", "prepared", "log"):
            value = [dict(c) if isinstance(c, dict) else c for c in value] or None
        values[_KEYS[item.name]] = value
    task.set_internal(**values)


def forget(task: NodeTask) -> None:
    """Drop the queue, token, phase and progress; what the agent said of itself (its
    log, version, address, last heartbeat) stays for the operator."""
    kept = {name: getattr(of(task), name) for name in _KEPT_AFTER_PHASE}
    store(task, AgentState(**kept))


def _phase(value: object) -> tuple[AgentPhase | None, bool]:
    if not isinstance(value, str):
        return None, False
    name, resumed = value.removesuffix(_RUNNING), value.endswith(_RUNNING)
    try:
        return AgentPhase(name), resumed
    except ValueError:
        return None, False


def _commands(value: object) -> list[CommandSpec]:
    if not isinstance(value, list):
        return []
    return [
        CommandSpec(id=str(c["id"]), name=str(c["name"]), args=dict(c.get("args") or {}))
        for c in value
        if isinstance(c, dict) and "id" in c and "name" in c
    ]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
