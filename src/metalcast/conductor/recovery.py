"""Start-up recovery: what a previous process of this conductor left behind.

A conductor that died (or was stopped before its workers finished) leaves nodes locked
by its hostname, some in a work state, some with a power action half done.  Nothing
is running them any more: their locks are released, work states go to their failure
state with the reason recorded, and an interrupted power action (a
``target_power_state`` left set) is cleared with ``last_error`` and a history row
saying so: the node's power state is whatever the action got to, until the next
power sync reads it.  Config drives (user data) of nodes no deploy waits for any more
are removed: a process killed at the wrong moment, or a changed secret key, can leave
some behind.

The same recovery runs, from the catch-up pass after a heartbeat, on the nodes a task of this very
process left locked because the database went away as it tried to release them
(:class:`~metalcast.conductor.runtime.LostLocks`): :func:`recover_lost_locks`; and
on the nodes of a conductor that stopped heartbeating, once another one took their
locks over (:mod:`metalcast.conductor.takeover`): :func:`recover_node`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.context import SYSTEM
from metalcast.db import events
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.errors import NotFound
from metalcast.states import WORK, ProvisionState

PS = ProvisionState

_log = logging.getLogger(__name__)
RESTARTED = "restarted"
LOST_DATABASE = "lost its database connection"


def recover(rt: Runtime) -> int:
    """Release this host's stale locks and fail the work they guarded; returns how
    many nodes were recovered."""
    with rt.db.read() as conn:
        held = repo.reserved_by(conn, rt.hostname)
    for node in held:
        try:
            recover_node(rt, node, cause=RESTARTED)
        except Exception:  # boundary: one bad node must not stop the conductor starting
            _log.exception("%s: recovery failed", node.uuid)
    _clear_stale_power_targets(rt)
    _sweep_config_drives(rt)
    return len(held)


def _sweep_config_drives(rt: Runtime) -> None:
    """Remove the config drives of nodes that are not deploying (any conductor's)."""
    if rt.configdrives is None:
        return
    started = time.time()
    with rt.db.read() as conn:
        deploying = repo.nodes_in_states(
            conn, [PS.DEPLOYING.value, PS.DEPLOYWAIT.value, PS.DEPLOYHOLD.value]
        )
    removed = rt.configdrives.sweep(keep=[n.uuid for n in deploying], older_than=started)
    if removed:
        _log.warning("removed %d config drive(s) that no deploy waits for", removed)


def recover_lost_locks(rt: Runtime) -> int:
    """Recover the nodes in ``rt.lost_locks`` that this conductor still holds, as a
    start does; returns how many were recovered.  Those the database does not answer
    for stay for the next call."""
    lost = rt.lost_locks.take()
    for index, node_id in enumerate(lost):
        try:
            with rt.db.read() as conn:
                node = repo.get_node_by_id(conn, node_id)
            if node.reservation != rt.hostname:
                continue  # released after all (a commit whose answer was lost)
            if rt.lost_locks.claimed(node_id):
                # a task of ours locked it again after the lost answer: it runs the
                # node (its claim came before its lock, so before this read)
                rt.lost_locks.add(node_id)
                continue
            recover_node(rt, node, cause=LOST_DATABASE)
        except NotFound:
            continue
        except Exception as exc:  # boundary: the database is still away; next pass
            rt.lost_locks.add(*lost[index:])
            left = len(lost) - index
            _log.warning("%d lost lock(s) not recovered yet (%s)", left, type(exc).__name__)
            return index
    return len(lost)


def recover_node(rt: Runtime, node: Node, *, cause: str, host: str | None = None) -> None:
    """Fail the work and clear the power action a conductor left on ``node`` (locked
    by this one now), then release it.  ``host`` is the conductor that was running it
    (this one by default); another one's nodes are being taken over.

    Raises:
        LockLost: another conductor took the lock meanwhile.
    """
    state = ProvisionState(node.provision_state)
    # read before the task clears it: the task updates this very record
    interrupted = node.target_power_state
    how = Interruption(host or rt.hostname, cause, taken_by=rt.hostname if host else None)
    with NodeTask(rt, node, shared=False, user=SYSTEM.who, purpose="recovery") as task:
        if interrupted:
            task.update(target_power_state=None)
        if state in WORK:
            task.fail(how.work(state))
        elif interrupted:
            reason = how.power(interrupted)
            task.update(last_error=reason)
            task.save(event=reason, event_type="power", severity="ERROR")
    _log.warning("%s: recovered from state %s", node.uuid, state.value)


@dataclass(frozen=True, slots=True)
class Interruption:
    """Why a node's operation stopped: conductor ``host`` ``cause`` (restarted,
    stopped heartbeating) and, when another conductor recovers the node, which."""

    host: str
    cause: str
    taken_by: str | None = None

    def _took_over(self) -> str:
        return f"conductor {self.taken_by} took its nodes over; " if self.taken_by else ""

    def work(self, state: ProvisionState) -> str:
        """``last_error`` of a node whose work state was cut short."""
        return (
            f"metalcast conductor {self.host} {self.cause} while the node was in state "
            f"'{state.value}'; {self._took_over()}the operation was interrupted"
        )

    def power(self, target: str) -> str:
        """``last_error`` of a node whose power action (to ``target``) was cut short."""
        return (
            f"metalcast conductor {self.host} {self.cause} during a power action (to "
            f"'{target}'); {self._took_over()}the action was interrupted and the node's "
            f"power state may not be '{target}'"
        )


def interrupted_power(hostname: str, target: str, *, cause: str = RESTARTED) -> str:
    """``last_error`` of a node whose power action a restart (or ``cause``) cut short."""
    return Interruption(hostname, cause).power(target)


def _clear_stale_power_targets(rt: Runtime) -> None:
    """A target_power_state on an unlocked node of this conductor is a leftover:
    nothing is powering it."""
    clear_stale_power_targets(rt, rt.owned(), Interruption(rt.hostname, RESTARTED))


def clear_stale_power_targets(rt: Runtime, mine: Callable[[Node], bool], how: Interruption) -> int:
    """Clear the target_power_state of every unlocked node ``mine`` accepts: nothing
    is powering it.  ``last_error`` and the history say how the action was cut
    short; returns how many were cleared."""
    filters = repo.NodeFilters(reserved=False)
    marker: str | None = None
    cleared = 0
    with rt.db.begin() as conn:
        while True:
            page = repo.list_nodes(conn, filters, repo.Page(limit=500, marker=marker))
            for node in page:
                if node.target_power_state and mine(node):
                    cleared += _clear_power_target(conn, rt, node, how)
            if len(page) < 500:
                return cleared
            marker = page[-1].uuid


def _clear_power_target(conn: sa.Connection, rt: Runtime, node: Node, how: Interruption) -> bool:
    target = node.target_power_state
    assert target is not None
    reason = how.power(target)
    if not repo.clear_power_target(conn, node.id, target=target, last_error=reason):
        return False  # locked or changed meanwhile: someone is powering it now
    events.record(
        conn,
        node,
        type=events.UPDATED,
        changes={"target_power_state": {"old": target, "new": None}},
    )
    repo.add_history(
        conn,
        node.id,
        event=reason,
        event_type="power",
        severity="ERROR",
        conductor=rt.hostname,
        user=SYSTEM.who,
    )
    return True
