"""The ramdisk agent's lookup and heartbeats (``docs/agent-protocol.md``).

A heartbeat is handled under the node's exclusive lock in the caller's thread: the
token is checked, the agent's results, progress and log are recorded, and the reply
says which results were stored (``ack``) and what the agent does next (``command``,
its download URL signed for this node and token: :func:`metalcast.conductor.direct.signed`;
a ``rescue`` with the rescue password's hash: :func:`metalcast.conductor.rescue.handed_out`).

Tokens: a lookup hands a node's token out once per deployment.  A heartbeat must then
carry that node's token (compared in constant time); a heartbeat without one is
refused once a token was issued, and always while metalcast's own deploy or cleaning
waits for its agent (which looks up first); an Ironic agent heartbeating before any
lookup is recorded as before.
When a result completes the node's queue of agent commands, the operation continues
in a worker that still holds the lock (:mod:`metalcast.conductor.direct`): the
deploy and cleaning run their next step, rescue ends in
``rescue``.  Ironic agents
(no token, no results) are recorded as before and the deploy interface's
:meth:`~metalcast.drivers.base.DeployInterface.heartbeat` hook runs.

Errors::

    NotFound        (404) no such node
    NodeLocked      (409) another task holds the node's lock
    NotAgentState   (409) the node is not in a state where an agent is expected
    Forbidden       (403) a missing or wrong agent token (another node's included)
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

import enum
import functools
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from metalcast import metrics
from metalcast.conductor import agent_state, direct, inspection, raid, rescue
from metalcast.conductor.agent_state import AgentState
from metalcast.conductor.flows.cleaning import run_cleaning
from metalcast.conductor.flows.deployment import resume_deploy
from metalcast.conductor.interfaces import call
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.conductor.workers import start_async
from metalcast.drivers.base import AgentPhase, DeployInterface
from metalcast.errors import Conflict, Forbidden
from metalcast.reports import AgentReport
from metalcast.states import AGENT_STATES, Event, ProvisionState
from metalcast_agent.protocol import CommandResult, CommandSpec, HeartbeatReply

PS = ProvisionState

#: what Ironic assumes of an agent that does not say its version (before API 1.36)
LEGACY_AGENT_VERSION = "3.0.0"
#: seconds between heartbeats asked of metalcast agents
HEARTBEAT_INTERVAL = 2.0
#: seconds until the next heartbeat asked of an agent whose phase goes on (its next
#: commands are being queued)
CONTINUE_INTERVAL = 0.5
#: what a lookup answers once the token was handed out
MASKED_TOKEN = "******"


class NotAgentState(Conflict):
    """A heartbeat for a node that is not waiting for an agent."""

    def __init__(self, uuid: str) -> None:
        super().__init__(
            f"Node {uuid} is not expecting an agent heartbeat: it is not deploying, "
            f"cleaning, inspecting, rescuing or servicing."
        )
        self.uuid = uuid


# ---------------------------------------------------------------------- lookup


def issue_token(rt: Runtime, node_id: int, *, user: str) -> str:
    """The agent token of the node's current deployment: a new one the first time it
    is asked for, :data:`MASKED_TOKEN` afterwards.

    Raises:
        NotAgentState, NodeLocked, NotFound.
    """
    with acquire(rt, node_id, user=user, purpose="agent lookup") as task:
        if task.state not in AGENT_STATES:
            raise NotAgentState(task.uuid)
        state = agent_state.of(task)
        if state.up:
            return MASKED_TOKEN
        token = secrets.token_urlsafe(32)
        agent_state.store(task, replace(state, token_hash=direct.token_hash(token)))
        task.save()
        return token


# ------------------------------------------------------------------- heartbeat


class Then(enum.Enum):
    """What the worker does after a heartbeat was recorded."""

    NOTHING = enum.auto()
    FAIL = enum.auto()  #: a command failed: the node goes to its failure state
    CONTINUE = enum.auto()  #: the queue is done: the agent's phase goes on
    IRONIC_HOOK = enum.auto()  #: not metalcast's agent: the deploy interface's hook


@dataclass(slots=True)
class _Heartbeat:
    """What recording a heartbeat decided, for the reply and for the worker."""

    reply: HeartbeatReply | None = None
    then: Then = Then.NOTHING
    failure: str = ""


def heartbeat(rt: Runtime, node_id: int, report: AgentReport, *, user: str) -> HeartbeatReply:
    """Record ``report``; the reply for the agent.

    Raises:
        NotAgentState, Forbidden, NodeLocked, NotFound, NoFreeWorker.
    """
    beat = _Heartbeat()
    start_async(
        rt,
        node_id,
        user=user,
        purpose="agent heartbeat",
        begin=functools.partial(_record, report=report, beat=beat),
        work=functools.partial(_continue, beat=beat),
    )
    assert beat.reply is not None  # _record set it or raised
    return beat.reply


def _record(task: NodeTask, *, report: AgentReport, beat: _Heartbeat) -> None:
    if task.state not in AGENT_STATES:
        raise NotAgentState(task.uuid)
    before = agent_state.of(task)
    _check_token(task, before, report.token)
    log = before.log
    if report.log:
        log = (*before.log, *report.log)[-direct.AGENT_LOG_LINES :]
    state = replace(
        before,
        url=report.callback_url,
        version=report.agent_version or LEGACY_AGENT_VERSION,
        last_heartbeat=task.rt.clock.now().isoformat(),
        log=log,
        # the agent reports progress only while a command runs: none means it is idle
        progress=report.progress,
    )
    agent_state.store(task, state)
    acked, failure = _take_results(task, report.results)
    pending = agent_state.of(task).commands
    command = None
    if pending and failure is None:
        command = rescue.handed_out(task, direct.signed(task, pending[0]))
    if failure is not None:
        beat.then, beat.failure = Then.FAIL, failure
    elif not pending and state.phase is not None and state.up:
        beat.then = Then.CONTINUE
    elif state.phase is None:
        beat.then = Then.IRONIC_HOOK
    # continuing, the conductor is about to queue the next step's commands: the agent
    # asks for them soon rather than a whole interval later
    interval = CONTINUE_INTERVAL if beat.then is Then.CONTINUE else HEARTBEAT_INTERVAL
    beat.reply = HeartbeatReply(ack=acked, command=command, heartbeat_interval=interval)
    task.save()


def _check_token(task: NodeTask, state: AgentState, token: str | None) -> None:
    expected = state.token_hash
    if expected is None and token is None and state.phase is None:
        return  # an Ironic agent before its lookup
    if token is None or expected is None:
        raise Forbidden("This heartbeat needs the agent token given by the lookup.")
    if not hmac.compare_digest(expected.encode(), direct.token_hash(token).encode()):
        raise Forbidden("Wrong agent token: look the node up again.")


def _take_results(
    task: NodeTask, results: tuple[CommandResult, ...]
) -> tuple[list[str], str | None]:
    """Store the results of queued commands; the ids acknowledged, and the failure
    message when one failed."""
    pending = list(agent_state.of(task).commands)
    acked: list[str] = []
    failure: str | None = None
    for result in results:
        ident = str(result.get("id"))
        acked.append(ident)
        current = next((c for c in pending if c["id"] == ident), None)
        if current is None:
            continue  # a result acknowledged before, sent again
        pending.remove(current)
        failure = failure or _outcome(task, current, result)
        pending = _with_root_device(pending, current, result)
    agent_state.store(task, replace(agent_state.of(task), commands=tuple(pending)))
    return acked, failure


def _with_root_device(
    pending: list[CommandSpec], done: CommandSpec, result: CommandResult
) -> list[CommandSpec]:
    """The config drive goes on the disk the image was written to, which the agent
    chose: pass its name on to the write_configdrive still queued."""
    device = (result.get("result") or {}).get("device")
    if done["name"] != "write_image" or not device:
        return pending
    return [
        CommandSpec(id=c["id"], name=c["name"], args={**c["args"], "device": device})
        if c["name"] == "write_configdrive"
        else c
        for c in pending
    ]


def _outcome(task: NodeTask, command: CommandSpec, result: CommandResult) -> str | None:
    name = command["name"]
    _count(name, result)
    if result.get("status") == "succeeded":
        found = result.get("result") or {}
        if name == "get_inventory":
            return inspection.receive(task, found)
        if name in raid.AGENT_COMMANDS:
            return raid.record_from_agent(task, command, found, summary=_summary(name, found))
        task.save(event=f"Agent: {name} succeeded{_summary(name, found)}", event_type="deploy")
        return None
    error = str(result.get("error") or "no error message")
    return f"The agent's {name} failed: {error}"


def _count(name: str, result: Mapping[str, Any]) -> None:
    """Add an agent command's result to the metrics; ``name`` is the conductor's own
    (from its queue), the numbers the agent's."""
    succeeded = result.get("status") == "succeeded"
    metrics.AGENT_COMMANDS.labels(name, "succeeded" if succeeded else "failed").inc()
    if name != "write_image" or not succeeded:
        return
    done = result.get("result") or {}
    try:
        seconds, written = float(done.get("seconds") or 0), int(done.get("bytes") or 0)
    except (TypeError, ValueError):
        return  # an agent's report without numbers: nothing to add
    if seconds <= 0 or written < 0:
        return
    metrics.IMAGE_WRITE_BYTES.inc(written)
    metrics.IMAGE_WRITE_SECONDS.observe(seconds)
    metrics.IMAGE_WRITE_RATE.observe(written / seconds)


def _summary(name: str, result: Mapping[str, Any]) -> str:
    if name == "erase_devices":
        return _erased(result)
    if name != "write_image":
        return ""
    seconds = float(result.get("seconds") or 0)
    written = int(result.get("bytes") or 0)
    rate = written / seconds / 2**20 if seconds > 0 else 0.0
    return f" ({written} bytes to {result.get('device')} in {seconds:.1f} s, {rate:.1f} MiB/s)"


def _erased(result: Mapping[str, Any]) -> str:
    """`` (/dev/vda: zeroout, 2.0 GiB in 3.1 s; ...)``: how the agent erased each disk."""
    devices = result.get("devices")
    if not isinstance(devices, list):
        return ""
    parts = []
    for item in devices[:64]:  # the agent's numbers: shown, never trusted further
        if not isinstance(item, dict):
            continue
        try:
            size, seconds = int(item.get("bytes") or 0), float(item.get("seconds") or 0)
        except (TypeError, ValueError):
            size, seconds = 0, 0.0
        device, method = _printable(item.get("device"), 64), _printable(item.get("method"), 32)
        amount = f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
        parts.append(f"{device}: {method}, {amount} in {seconds:.1f} s")
    return f" ({'; '.join(parts)})" if parts else ""


def _printable(value: object, limit: int) -> str:
    return "".join(c for c in str(value)[:limit] if c.isprintable())


# ------------------------------------------------------------------ continuing


def _continue(task: NodeTask, *, beat: _Heartbeat) -> None:
    if beat.then is Then.FAIL:
        _fail(task, reason=beat.failure)
    elif beat.then is Then.IRONIC_HOOK:
        _ironic_hook(task)
    elif beat.then is Then.CONTINUE:
        phase = agent_state.of(task).phase
        if phase is AgentPhase.DEPLOY:
            resume_deploy(task)
        elif phase is AgentPhase.CLEAN:
            _resume_cleaning(task)
        elif phase is AgentPhase.INSPECT:
            _finish_inspection(task)
        elif phase is AgentPhase.RESCUE:
            rescue.finish(task)


def _ironic_hook(task: NodeTask) -> None:
    if task.node.maintenance:
        task.log.info("%s: heartbeat recorded; the node is in maintenance", task.uuid)
        return
    call(task, DeployInterface, "handle the agent heartbeat", lambda i, ctx: i.heartbeat(ctx))


def _fail(task: NodeTask, *, reason: str) -> None:
    tail = "\n".join(agent_state.of(task).log[-20:])
    direct.forget(task)
    if tail:
        task.save(event=f"Agent log before the failure:\n{tail}", event_type="deploy")
    task.fail(reason)


def _resume_cleaning(task: NodeTask) -> None:
    if task.state != PS.CLEANWAIT:
        return
    agent_state.store(task, replace(agent_state.of(task), resumed=True))
    task.process_event(Event.RESUME)
    run_cleaning(task)


def _finish_inspection(task: NodeTask) -> None:
    if task.state != PS.INSPECTWAIT:
        return
    inspection.finish(task)
