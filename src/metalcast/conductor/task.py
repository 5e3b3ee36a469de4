"""The node task: a node under its lock, and the only place provision state changes.

An exclusive task holds the node's reservation (``nodes.reservation`` = this
conductor's hostname) until :meth:`NodeTask.release`; a shared task holds nothing and
may only read.  :meth:`NodeTask.process_event` applies one edge of the state table and
writes the node row and its history row in one transaction.

Errors::

    NodeLocked          (409) another task holds the lock, after the retries
    LockLost            (409) another conductor took the lock over (it thought this one
                        dead): the task stops and writes nothing more
    NotFound            (404) the node does not exist
    InvalidTransition   (400) the event is not allowed in the node's state
    TaskParked          the conductor stopped waiting for this task; nothing is written
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from metalcast import metrics, states
from metalcast.conductor import transition_metrics
from metalcast.context import current_request_id, project_of
from metalcast.db import events
from metalcast.db import repository as repo
from metalcast.db.engine import is_unreachable
from metalcast.db.models import Node, Port
from metalcast.errors import Conflict, MetalcastError, NodeLocked
from metalcast.secrecy.detect import scrub_text
from metalcast.states import FAILURE, WAIT, WORK, Event, ProvisionState

if TYPE_CHECKING:
    from metalcast.conductor.runtime import Runtime

PS = ProvisionState
_log = logging.getLogger(__name__)
_PROVISION_FIELDS = ("provision_state", "target_provision_state", "provision_updated_at")
#: the states in which a node's config drive waits for its agent
_DEPLOY_STATES = frozenset({PS.DEPLOYING, PS.DEPLOYWAIT, PS.DEPLOYHOLD})
#: where a node keeps its rescue password's hash (Ironic's key), and where older
#: versions kept the password itself: gone once the node leaves rescue
RESCUE_PASSWORD_KEYS = ("hashed_rescue_password", "rescue_password")
#: the states in which a rescue password is still in use (or about to be)
_RESCUE_STATES = frozenset({PS.RESCUING, PS.RESCUEWAIT, PS.RESCUE, PS.UNRESCUING, PS.UNRESCUEFAIL})


class LockLost(Conflict):
    """Another conductor took over the lock of an exclusive task (it found this
    conductor silent past ``heartbeat_timeout``): the node is not this task's any more."""

    def __init__(self, node_uuid: str, *, holder: str | None) -> None:
        now = f"conductor {holder} holds it now" if holder else "nobody holds it now"
        super().__init__(
            f"Node {node_uuid}: this conductor lost the node's lock to a takeover ({now}); "
            "the task stopped without writing its outcome"
        )
        self.node_uuid = node_uuid
        self.holder = holder


class TaskParked(Exception):
    """The conductor is shutting down and left this task parked: stop, write nothing."""


class LockReleases:
    """Wakes the tasks of this conductor that wait for a node's lock as soon as another
    of its tasks releases it, instead of letting them sleep out the retry interval
    (a client that asks for the next verb the moment a node settles meets the lock
    still held for an instant).  A lock another process holds is still retried at
    ``node_locked_retry_interval``.  Only nodes someone waits for are tracked."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        #: node id -> releases so far, for the nodes a task waits for
        self._releases: dict[int, int] = {}
        self._waiters: dict[int, int] = {}

    def watch(self, node_id: int) -> None:
        with self._changed:
            self._waiters[node_id] = self._waiters.get(node_id, 0) + 1
            self._releases.setdefault(node_id, 0)

    def unwatch(self, node_id: int) -> None:
        with self._changed:
            left = self._waiters[node_id] - 1
            if left:
                self._waiters[node_id] = left
            else:
                del self._waiters[node_id], self._releases[node_id]

    def seen(self, node_id: int) -> int:
        """The releases of a watched node so far."""
        with self._changed:
            return self._releases[node_id]

    def wait(self, node_id: int, seen: int, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a release of the watched node after the
        ``seen``-th."""
        with self._changed:
            self._changed.wait_for(lambda: self._releases[node_id] != seen, timeout)

    def released(self, node_id: int) -> None:
        with self._changed:
            if node_id in self._releases:
                self._releases[node_id] += 1
                self._changed.notify_all()


class NodeTask:
    """One node, locked (exclusive) or read-only (shared), for one operation."""

    def __init__(self, rt: Runtime, node: Node, *, shared: bool, user: str, purpose: str) -> None:
        self.rt = rt
        self.node = node
        self.shared = shared
        self.user = user
        #: the project of the caller whose request this task serves (history shows it)
        self.project = project_of(user)
        self.purpose = purpose
        self.released = shared
        if not shared:
            metrics.LOCKS_HELD.inc()
        self.log = logging.LoggerAdapter(_log, {"node": node.uuid, "purpose": purpose})
        self._dirty: set[str] = set()
        #: the watched values (:mod:`metalcast.db.events`) before the changes the
        #: next save writes: what its event row compares with
        self._before: dict[str, Any] | None = None
        #: release the lock with the save that brings the node to rest (a stable or
        #: failure state): one transaction fewer at the end of every operation.  Set
        #: for work whose last write is that save (:func:`~.workers.start_async`).
        self.release_at_rest = False
        self._rested = False
        #: set when a takeover took the lock: the LockLost every later write raises
        self._lost: LockLost | None = None
        self._ports: list[Port] | None = None
        #: whether this task still claims its node in ``rt.lost_locks``
        self._claimed = not shared
        if self._claimed:
            rt.lost_locks.claim(node.id)

    # ------------------------------------------------------------------ reading

    @property
    def uuid(self) -> str:
        return self.node.uuid

    @property
    def state(self) -> ProvisionState:
        return PS(self.node.provision_state)

    def ports(self) -> list[Port]:
        """The node's ports (read once per task)."""
        if self._ports is None:
            with self.rt.db.read() as conn:
                self._ports = repo.ports_of_node(conn, self.node.id)
        return self._ports

    # ------------------------------------------------------------------ writing

    def update(self, **fields: Any) -> None:
        """Change fields of the node; they are written by the next save."""
        self._check_writable()
        if self._before is None:
            self._before = events.watched(self.node)
        for name, value in fields.items():
            setattr(self.node, name, value)
            self._dirty.add(name)

    def set_internal(self, **values: Any) -> None:
        """Set keys of ``driver_internal_info`` (``None`` removes a key)."""
        info = dict(self.node.driver_internal_info)
        for key, value in values.items():
            if value is None:
                info.pop(key, None)
            else:
                info[key] = value
        self.update(driver_internal_info=info)

    def save(
        self,
        *,
        event: str | None = None,
        event_type: str = "provisioning",
        severity: str = "INFO",
        user: str | None = None,
    ) -> None:
        """Write the changed fields, and a history row when ``event`` is given, in one
        transaction; with them a row of the event log when a watched field changed
        (:mod:`metalcast.db.events`).

        An exclusive task writes only while it holds the lock (fencing: a conductor
        thought dead may still be running).

        Raises:
            TaskParked: the conductor is shutting down and parked this task.
            LockLost: another conductor took the lock over; nothing was written, and
                the task counts as released (the lock is not this conductor's).
        """
        self._check_writable()
        if self._lost is not None:
            raise self._lost
        if self.rt.parked.is_set() and not self.released:
            raise TaskParked(self.uuid)
        with self.rt.db.begin() as conn:
            if self._dirty:
                self._write(conn)
                self._record_changes(conn)
            if event is not None:
                who = user or self.user
                repo.add_history(
                    conn,
                    self.node,
                    event=event,
                    event_type=event_type,
                    severity=severity,
                    conductor=self.rt.hostname,
                    user=who,
                    project=self.project if who == self.user else project_of(who),
                )
        self._dirty.clear()
        self._before = None

    def _record_changes(self, conn: sa.Connection) -> None:
        """One event row for the watched fields this save changes, if any."""
        if self._before is None:
            return
        changes = events.diff(self._before, events.watched(self.node))
        if changes:
            events.record(
                conn,
                self.node,
                type=events.UPDATED,
                changes=changes,
                request_id=current_request_id(),
            )

    def _write(self, conn: sa.Connection) -> None:
        holder = None if self.released else self.rt.hostname
        if repo.save_node(conn, self.node, sorted(self._dirty), holder=holder):
            return
        self._let_go()  # nothing of ours to release: another conductor holds it
        self._unclaim()
        self._lost = LockLost(self.uuid, holder=repo.lock_holder(conn, self.node.id))
        raise self._lost

    def process_event(
        self, event: Event, *, user: str | None = None, reason: str | None = None
    ) -> ProvisionState:
        """Apply ``event`` to the node's provision state and save the node with a
        history row.  ``reason`` (on failures) becomes ``last_error``.

        Raises:
            InvalidTransition: the table has no edge for this state and event.
            TaskParked: the conductor is shutting down and parked this task.
        """
        new_state = states.advance(self.state, event)
        return self._move(new_state, event.value, user=user, reason=reason)

    def fail(self, reason: str, *, user: str | None = None) -> ProvisionState:
        """Drive the node from its work or wait state to that state's failure state
        (``states.FAILURE_OF``), recording ``reason``.

        Raises:
            TaskParked: the conductor is shutting down and parked this task.
        """
        new_state = states.FAILURE_OF.get(self.state)
        self._forget_steps()
        if new_state is None:  # already stable or failed: keep the state, record why
            self.update(last_error=reason)
            self.save(event=f"{self.state.value}: {reason}", severity="ERROR", user=user)
            return self.state
        return self._move(new_state, Event.FAIL.value, user=user, reason=reason)

    def _move(
        self, new_state: ProvisionState, label: str, *, user: str | None, reason: str | None
    ) -> ProvisionState:
        old = self.state
        now = self.rt.clock.now()
        move = transition_metrics.Move(
            label, old, new_state, entered=self.node.provision_updated_at, now=now
        )
        info_before = self.node.driver_internal_info
        self.update(
            provision_state=new_state.value,
            target_provision_state=_target(old, label, new=new_state, node=self.node),
            provision_updated_at=now,
        )
        self._track_wait(old, new_state, now.isoformat())
        if verb := transition_metrics.verb_keys(move):
            self.set_internal(**verb)
        if old in _RESCUE_STATES | {PS.RESCUEFAIL} and new_state not in _RESCUE_STATES:
            dropped = self.forget_rescue_password()  # failed, aborted, timed out, undeployed
            if reason:  # scrubbed of it here: history is scrubbed of what the node keeps
                reason = scrub_text(reason, known=dropped)
        failed = reason is not None and (new_state in FAILURE or label == Event.FAIL.value)
        if failed:
            self.update(last_error=reason)
        elif old not in WORK | WAIT and new_state in WORK:
            self.update(last_error=None)
        who = user or self.user
        text = f"{old.value} → {new_state.value} ({label}) by {who}"
        if reason:
            text += f": {reason}"
        at_rest = self.release_at_rest and new_state not in WORK | WAIT
        if at_rest:
            self.update(reservation=None)  # written only while this conductor holds it
        self.save(event=text, severity="ERROR" if failed else "INFO", user=who)
        transition_metrics.record(move, info_before)
        if at_rest:
            self._let_go()
            self._unclaim()
            self._rested = True
            self.rt.lock_releases.released(self.node.id)
        self.log.info("%s: %s", self.uuid, text)
        if old in _DEPLOY_STATES and new_state not in _DEPLOY_STATES:
            # done, failed, aborted, timed out or interrupted: the user data goes now
            self.rt.discard_config_drive(self.uuid)
        return new_state

    def forget_rescue_password(self) -> list[str]:
        """Drop the node's rescue password hash, if it has one (saved with the next
        save); what was dropped, decrypted.  Raises UndecryptableSecret."""
        info = self.node.instance_info
        dropped = [
            str(self.rt.secret_box.reveal(info[key], where=key))
            for key in RESCUE_PASSWORD_KEYS
            if info.get(key)
        ]
        if any(key in info for key in RESCUE_PASSWORD_KEYS):
            kept = {k: v for k, v in info.items() if k not in RESCUE_PASSWORD_KEYS}
            self.update(instance_info=kept)
        return dropped

    def _forget_steps(self) -> None:
        """A failed operation's steps are done with (the message names the step)."""
        for kind in ("clean", "deploy", "service"):
            if getattr(self.node, f"{kind}_step") is not None:
                self.update(**{f"{kind}_step": None})
            if f"{kind}_steps" in self.node.driver_internal_info:
                self.set_internal(**{f"{kind}_steps": None, f"{kind}_step_index": None})

    def _track_wait(self, old: ProvisionState, new: ProvisionState, now: str) -> None:
        if new in WAIT:
            self.set_internal(wait_started_at=now)
        elif old in WAIT:
            self.set_internal(wait_started_at=None)

    def _check_writable(self) -> None:
        if self.shared:
            raise MetalcastError(f"Node {self.uuid}: a shared task cannot change the node")
        if self._rested:
            raise MetalcastError(f"Node {self.uuid}: the task released its lock at rest")

    # ------------------------------------------------------------------ the lock

    def release(self) -> None:
        """Release the node's lock (once; nothing for a shared task).  When the
        database does not take it, the node goes to ``rt.lost_locks`` and the error
        is raised."""
        if self.released:
            return
        self._let_go()
        try:
            with self.rt.db.begin() as conn:
                repo.release_node(conn, self.node.id, self.rt.hostname)
        except Exception:
            self.abandon()
            raise
        self._unclaim()
        self.node.reservation = None
        self.rt.lock_releases.released(self.node.id)

    def _let_go(self) -> None:
        """Count the lock as no longer this task's (released, lost or left for recovery)."""
        if not self.released:
            self.released = True
            metrics.LOCKS_HELD.dec()

    def abandon(self) -> None:
        """Leave the node locked for recovery: its outcome could not be recorded (the
        database went away).  The catch-up pass after a heartbeat fails its work state
        with the reason and releases it (``rt.lost_locks``)."""
        if self._rested:
            return  # released with the state it rests in: nothing to recover
        self._let_go()
        self.rt.lost_locks.add(self.node.id)
        self._unclaim()

    def _unclaim(self) -> None:
        """This task no longer runs the node (:class:`~.runtime.LostLocks`)."""
        if self._claimed:
            self._claimed = False
            self.rt.lost_locks.unclaim(self.node.id)

    def __enter__(self) -> NodeTask:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not isinstance(exc, TaskParked):
            self.release()


def _target(old: ProvisionState, label: str, *, new: ProvisionState, node: Node) -> str | None:
    """``target_provision_state`` for a node entering ``new``."""
    if new in (PS.CLEANING, PS.CLEANWAIT, PS.CLEANHOLD):
        if label == Event.CLEAN.value and old == PS.MANAGEABLE:
            return PS.MANAGEABLE.value  # manual cleaning returns to manageable
        if label in (Event.PROVIDE.value, Event.CLEAN.value):
            return PS.AVAILABLE.value  # provide, or undeploy's automated cleaning
        return node.target_provision_state or PS.AVAILABLE.value
    target = states.target_of(new)
    return None if target is None else target.value


def acquire(
    rt: Runtime,
    node_id: int,
    *,
    user: str,
    purpose: str,
    shared: bool = False,
    anywhere: bool = False,
) -> NodeTask:
    """A task on node ``node_id``; exclusive ones retry a held lock
    ``node_locked_retry_attempts`` times, ``node_locked_retry_interval`` apart or as
    soon as a task of this conductor releases it (:class:`LockReleases`).

    The hash ring must give the node to this conductor (:mod:`.ring`), unless
    ``anywhere``: the task only changes the database (a node's update or deletion),
    which is how a node of a group without a live conductor is moved or removed.

    Raises:
        NotFound: no such node.
        NodeLocked: the lock stayed held by another task.
        NoValidHost, ServiceUnavailable: the node is not this conductor's (:mod:`.ring`).
    """
    if shared:
        with rt.db.read() as conn:
            node = repo.get_node_by_id(conn, node_id)
        if not anywhere:
            _check_ring(rt, node)
        return NodeTask(rt, node, shared=True, user=user, purpose=purpose)
    attempts = 1 + rt.settings.node_locked_retry_attempts
    holder = ("", "")
    releases = rt.lock_releases
    releases.watch(node_id)
    try:
        for attempt in range(attempts):
            seen = releases.seen(node_id)
            got = try_acquire(rt, node_id, user=user, purpose=purpose)
            if isinstance(got, NodeTask):
                if not anywhere:
                    try:
                        _check_ring(rt, got.node)
                    except MetalcastError:
                        got.release()
                        raise
                return got
            holder = got
            if attempt + 1 < attempts:
                releases.wait(node_id, seen, rt.settings.node_locked_retry_interval)
    finally:
        releases.unwatch(node_id)
    raise NodeLocked(*holder)


def _check_ring(rt: Runtime, node: Node) -> None:
    if rt.ring is not None:
        rt.ring.check(node.uuid, group=node.conductor_group, hardware_type=node.driver)


def try_acquire(
    rt: Runtime, node_id: int, *, user: str, purpose: str
) -> NodeTask | tuple[str, str]:
    """One attempt at the exclusive lock: the task, or ``(node uuid, holder)``.

    When the database goes away as the lock is committed, the commit may have been
    applied: the node is recorded in ``rt.lost_locks``, where the catch-up pass finds
    out and releases a lock that is this conductor's with no task to run it.

    Raises:
        NotFound: no such node.
        DBAPIError-like errors: the database went away.
    """
    rt.lost_locks.claim(node_id)  # until the task claims it itself
    try:
        try:
            with rt.db.begin() as conn:
                got = repo.lock_node(conn, node_id, rt.hostname)
                if isinstance(got, str):
                    metrics.LOCK_ATTEMPTS.labels("held").inc()
                    return repo.get_node_by_id(conn, node_id).uuid, got
        except Exception as exc:
            if is_unreachable(exc):
                rt.lost_locks.add(node_id)
            raise
        metrics.LOCK_ATTEMPTS.labels("acquired").inc()
        return NodeTask(rt, node=got, shared=False, user=user, purpose=purpose)
    finally:
        rt.lost_locks.unclaim(node_id)
