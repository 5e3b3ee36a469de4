"""A ramdisk agent's heartbeat: recorded under the node's lock, then the deploy hook.

As in Ironic, the heartbeat is recorded in ``driver_internal_info`` (``agent_url``,
``agent_version``, ``agent_last_heartbeat``) under the node's exclusive lock, in the
caller's thread, and the deploy interface's :meth:`~metalcast.drivers.base.
DeployInterface.heartbeat` hook then runs in a worker that still holds the lock (not
while the node is in maintenance).  The wait-state timeout message reads
``agent_last_heartbeat`` (:func:`metalcast.conductor.periodics.timeout_message`).

Errors::

    NotFound        (404) no such node
    NodeLocked      (409) another task holds the node's lock
    NotAgentState   (409) the node is not in a state where an agent is expected
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

import functools

from metalcast.conductor.interfaces import call
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.conductor.workers import start_async
from metalcast.drivers.base import DeployInterface
from metalcast.errors import Conflict
from metalcast.states import AGENT_STATES

#: what Ironic assumes of an agent that does not say its version (before API 1.36)
LEGACY_AGENT_VERSION = "3.0.0"


class NotAgentState(Conflict):
    """A heartbeat for a node that is not waiting for an agent."""

    def __init__(self, uuid: str) -> None:
        super().__init__(
            f"Node {uuid} is not expecting an agent heartbeat: it is not deploying, "
            f"cleaning, inspecting, rescuing or servicing."
        )
        self.uuid = uuid


def heartbeat(
    rt: Runtime, node_id: int, *, callback_url: str, agent_version: str | None, user: str
) -> None:
    """Record a heartbeat from the agent reachable at ``callback_url``, then call the
    deploy interface's hook in a worker.

    Raises:
        NotAgentState: the node is not in one of ``states.AGENT_STATES``.
        NodeLocked, NotFound, NoFreeWorker, ServiceUnavailable: see start_async.
    """
    start_async(
        rt,
        node_id,
        user=user,
        purpose="agent heartbeat",
        begin=functools.partial(
            _record,
            callback_url=callback_url,
            agent_version=agent_version or LEGACY_AGENT_VERSION,
        ),
        work=_continue,
    )


def _record(task: NodeTask, *, callback_url: str, agent_version: str) -> None:
    if task.state not in AGENT_STATES:
        raise NotAgentState(task.uuid)
    task.set_internal(
        agent_url=callback_url,
        agent_version=agent_version,
        agent_last_heartbeat=task.rt.clock.now().isoformat(),
    )
    task.save()


def _continue(task: NodeTask) -> None:
    if task.node.maintenance:
        task.log.info("%s: heartbeat recorded; the node is in maintenance", task.uuid)
        return
    call(task, DeployInterface, "handle the agent heartbeat", lambda i, ctx: i.heartbeat(ctx))
