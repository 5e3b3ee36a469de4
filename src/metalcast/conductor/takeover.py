"""Taking over the nodes of a conductor that stopped heartbeating.

Every ``heartbeat_interval / 4`` each conductor reads the conductors table
(:meth:`ConductorRing.survey`).  A conductor is dead when its row is offline (a clean
stop) or silent for longer than ``heartbeat_timeout``; its nodes then belong, by the
hash ring of the live ones, to the others, and each live conductor handles those the
ring gives it:

- a node the dead conductor left locked: the lock moves to this conductor in one
  conditional UPDATE (another conductor that got there first wins, the node is
  skipped), then start-up recovery runs on it (:func:`recovery.recover_node`): a work
  state goes to its failure state, an interrupted power action is cleared, both
  naming the dead conductor and this one; then the lock is released.  A node whose
  conductor group and hardware type no live conductor serves is handled by the live
  conductor with the lowest hostname, so that no lock survives;
- a node waiting for its agent whose boot the dead conductor prepared
  (``conductor_affinity``): its ramdisk boot is prepared again here, so that this
  conductor's boot services answer it, and it keeps waiting (its wait timer runs on);
  if that fails it goes to its failure state with the reason;
- an unlocked node of this conductor with a ``target_power_state`` (a power action
  cut short) has it cleared with the reason, when a conductor has died since the
  last pass.

A conductor judges others only once it has heartbeated successfully for
``heartbeat_timeout`` without a failure (:class:`Health`): after a database outage
every row is stale, its own included, and the peers need a heartbeat of their own to
be seen alive again.  A conductor that was wrongly thought dead finds out at its next
write: its task's save is fenced by the lock (:class:`~.task.LockLost`).

Worst case, a takeover starts ``heartbeat_timeout + heartbeat_interval / 4`` after a
conductor's last heartbeat: 17.5 s with the defaults, within two intervals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from metalcast.conductor import direct, recovery
from metalcast.conductor.interfaces import OperationFailed
from metalcast.conductor.ring import ConductorRing
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import LockLost, NodeTask, try_acquire
from metalcast.context import SYSTEM
from metalcast.db import repository as repo
from metalcast.db.engine import is_unreachable
from metalcast.db.models import Conductor, Node
from metalcast.hashring import Rings
from metalcast.states import WAIT

_log = logging.getLogger(__name__)
STOPPED = "stopped heartbeating"
#: what a takeover check's interval is of ``heartbeat_interval``
CHECKS_PER_HEARTBEAT = 4


class Health:
    """Whether this conductor's own heartbeats have reached the database for long
    enough that it may declare others dead (on its own monotonic clock)."""

    def __init__(self, *, timeout: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._monotonic = monotonic
        self._since: float | None = None
        self._lock = threading.Lock()

    def beat(self, *, ok: bool) -> None:
        """Record one heartbeat of this conductor: written (``ok``) or failed."""
        with self._lock:
            if not ok:
                self._since = None
            elif self._since is None:
                self._since = self._monotonic()

    def reset(self) -> None:
        """Forget the heartbeats so far (the conductor stopped)."""
        self.beat(ok=False)

    def reaching(self) -> bool:
        """True when the last heartbeat reached the database."""
        with self._lock:
            return self._since is not None

    def trusted(self) -> bool:
        """True after ``timeout`` seconds of heartbeats without a failure."""
        with self._lock:
            since = self._since
        return since is not None and self._monotonic() - since >= self._timeout


@dataclass(frozen=True, slots=True)
class Pass:
    """What one takeover pass did."""

    dead: tuple[str, ...] = ()
    recovered: int = 0
    reprepared: int = 0
    power_targets: int = 0


class Takeover:
    """The takeover check of one conductor (:meth:`run_once` is its periodic pass)."""

    def __init__(self, rt: Runtime, ring: ConductorRing, health: Health) -> None:
        self.rt = rt
        self.ring = ring
        self.health = health
        #: the dead conductors of the previous pass (hostnames)
        self._dead: set[str] = set()

    def run_once(self) -> Pass:
        """One pass: nothing until :class:`Health` trusts this conductor, else take
        over what the dead conductors left that the ring gives this one.

        Raises:
            DBAPIError-like errors: the database went away (the next pass retries).
        """
        if not self.health.trusted():
            return Pass()
        rings, dead = self.ring.survey()
        hosts = {c.hostname for c in dead}
        new, self._dead = hosts - self._dead, hosts
        if not dead:
            return Pass()
        recovered = sum(self._steal(rings, c) for c in dead)
        reprepared = self._reprepare(rings, dead)
        cleared = 0
        if new:
            how = recovery.Interruption(", ".join(sorted(new)), STOPPED, taken_by=self.rt.hostname)
            cleared = recovery.clear_stale_power_targets(
                self.rt, lambda n: self.ring.owns(n, rings=rings), how
            )
        return Pass(tuple(sorted(hosts)), recovered, reprepared, cleared)

    # ------------------------------------------------------------------ locks

    def _handles(self, rings: Rings, node: Node) -> bool:
        owner = rings.owner(node.uuid, group=node.conductor_group, hardware_type=node.driver)
        if owner is None:  # nobody serves it: the lowest live hostname frees the lock
            owner = rings.members[0].hostname
        return owner == self.rt.hostname

    def _steal(self, rings: Rings, dead: Conductor) -> int:
        with self.rt.db.read() as conn:
            held = repo.reserved_by(conn, dead.hostname)
        return sum(
            self._recover(node, dead.hostname) for node in held if self._handles(rings, node)
        )

    def _recover(self, node: Node, dead: str) -> bool:
        try:
            with self.rt.db.begin() as conn:
                if not repo.steal_node(conn, node.id, host=self.rt.hostname, holder=dead):
                    return False  # another conductor took it, or it was released
                node = repo.get_node_by_id(conn, node.id)
        except Exception as exc:
            if is_unreachable(exc):  # the commit may have been applied: ours, then
                self.rt.lost_locks.add(node.id)
            raise
        try:
            recovery.recover_node(self.rt, node, cause=STOPPED, host=dead)
        except LockLost:
            return False
        except Exception:  # boundary: one bad node must not stop the takeover
            _log.exception("%s: taking over from %s failed", node.uuid, dead)
            # the lock is ours now: the catch-up pass recovers it (recover_lost_locks)
            self.rt.lost_locks.add(node.id)
            return False
        _log.warning("%s: taken over from conductor %s", node.uuid, dead)
        return True

    # ------------------------------------------------------------------ wait states

    def _reprepare(self, rings: Rings, dead: Iterable[Conductor]) -> int:
        names = {c.id: c.hostname for c in dead}
        with self.rt.db.read() as conn:
            waiting = repo.nodes_booted_by(conn, names, states=[s.value for s in WAIT])
        mine = [n for n in waiting if self.ring.owns(n, rings=rings)]
        return sum(self._serve_boot(n, names) for n in mine)

    def _serve_boot(self, node: Node, dead: dict[int, str]) -> bool:
        task = try_acquire(self.rt, node.id, user=SYSTEM.who, purpose="takeover")
        if not isinstance(task, NodeTask):
            return False  # locked: the next pass tries again
        try:
            with task:
                affinity = task.node.conductor_affinity
                if task.node.provision_state not in WAIT or affinity not in dead:
                    return False  # the agent called back, or another conductor served it
                _serve_boot_here(task, dead[affinity])
        except Exception:  # boundary: one bad node must not stop the takeover
            _log.exception("%s: serving its boot after a takeover failed", node.uuid)
            return False
        return True


def _serve_boot_here(task: NodeTask, previous: str) -> None:
    """Prepare the node's ramdisk boot on this conductor's boot services; the node
    keeps waiting.  When that fails, the node fails with the reason.

    Raises:
        LockLost, TaskParked: from the save.
    """
    me = task.rt.hostname
    try:
        direct.prepare_ramdisk_boot(task)
    except OperationFailed as exc:
        task.fail(
            f"conductor {me} took over the node from {previous}, which stopped "
            f"heartbeating, but cannot serve its boot configuration: {exc.message}"
        )
        return
    task.save(
        event=f"conductor {me} took over the node from {previous}; its boot "
        f"configuration is now served by {me}",
        event_type="takeover",
        severity="WARNING",
    )
    task.log.warning("%s: boot configuration taken over from %s", task.uuid, previous)
