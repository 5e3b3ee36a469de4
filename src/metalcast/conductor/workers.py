"""The bounded worker pool and the shape of every asynchronous action.

An asynchronous action takes a free worker slot and the node's lock in the caller's
thread, checks and applies the transition into the work state, and only then hands
the task, still locked, to a worker thread, which releases the lock when done.  So a
caller learns of ``NoFreeWorker``, ``NodeLocked`` or ``InvalidTransition`` before
anything is written.

Errors::

    NoFreeWorker         (503) every worker is busy
    ServiceUnavailable   (503) the conductor is shutting down
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from metalcast import metrics
from metalcast.conductor.task import LockLost, NodeTask, TaskParked, acquire
from metalcast.db.engine import is_unreachable
from metalcast.errors import MetalcastError, NoFreeWorker, ServiceUnavailable

if TYPE_CHECKING:
    from metalcast.conductor.runtime import Runtime

_log = logging.getLogger(__name__)

Work = Callable[[NodeTask], None]
#: how long a worker thread waits for another task before it ends
IDLE_SECONDS = 60.0
ErrorHandler = Callable[[NodeTask, Exception], None]


class WorkerSlot:
    """A reserved place in the pool; give it back with :meth:`cancel` if unused."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._done = False

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._pool._free()


class WorkerPool:
    """At most ``size`` tasks at once; refuses instead of queueing.

    The threads that run them are kept for :data:`IDLE_SECONDS` after their task and
    given the next one: starting a thread for every transition cost more than the
    transition's own work."""

    def __init__(self, size: int) -> None:
        self.size = size
        metrics.WORKERS_SIZE.set(size)
        self._busy = 0
        self._accepting = True
        self._cond = threading.Condition()
        #: tasks handed to idle threads, and how many threads wait for one
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
        self._idle = 0

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def busy(self) -> int:
        return self._busy

    def reserve(self) -> WorkerSlot:
        """Reserve a worker for a task about to start.

        Raises:
            ServiceUnavailable: the conductor is shutting down.
            NoFreeWorker: every worker is busy.
        """
        with self._cond:
            if not self._accepting:
                raise ServiceUnavailable("The conductor is shutting down; retry on another one.")
            if self._busy >= self.size:
                metrics.WORKERS_REFUSED.inc()
                raise NoFreeWorker()
            self._busy += 1
            metrics.WORKERS_BUSY.inc()
        return WorkerSlot(self)

    def start(self, slot: WorkerSlot, func: Callable[[], None], *, name: str) -> None:
        """Run ``func`` in a worker thread that gives ``slot`` back when done."""

        def run() -> None:
            try:
                func()
            finally:
                slot.cancel()

        with self._cond:
            if self._idle:
                self._idle -= 1
                self._jobs.put((run, name))
                return
        threading.Thread(target=self._serve, args=(run,), name=name, daemon=True).start()

    def _serve(self, job: Callable[[], None]) -> None:
        """Run ``job``, then the tasks handed over while idle, until none comes for
        :data:`IDLE_SECONDS`."""
        me = threading.current_thread()
        while True:
            job()
            me.name = "task-idle"
            with self._cond:
                self._idle += 1
            try:
                job, me.name = self._jobs.get(timeout=IDLE_SECONDS)
                continue
            except queue.Empty:
                pass
            with self._cond:  # a task handed over as the wait ended is still ours
                try:
                    job, me.name = self._jobs.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return

    def close(self) -> None:
        """Refuse every new reservation from now on."""
        with self._cond:
            self._accepting = False

    def reopen(self) -> None:
        with self._cond:
            self._accepting = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every worker to finish; True if they did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _free(self) -> None:
        with self._cond:
            self._busy -= 1
            metrics.WORKERS_BUSY.dec()
            self._cond.notify_all()


def describe(exc: BaseException) -> str:
    """The message recorded in ``last_error`` for ``exc``."""
    if isinstance(exc, MetalcastError):
        return exc.message
    if is_unreachable(exc):
        # its first line is the driver's message; the statement and parameters follow
        first = next(iter(str(exc).splitlines()), type(exc).__name__)
        return f"The database became unreachable during the operation: {first}"
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def fail_provision(task: NodeTask, exc: Exception) -> None:
    """The usual error handler: the node goes to its failure state, recording why."""
    task.fail(describe(exc))


def run_in_worker(
    rt: Runtime, task: NodeTask, *, slot: WorkerSlot, work: Work, on_error: ErrorHandler
) -> None:
    """Hand the locked ``task`` to a worker running ``work``; the worker releases the
    lock when done."""
    rt.workers.start(
        slot,
        lambda: _run(task, work, on_error=on_error),
        name=f"task-{task.purpose}-{task.uuid[:8]}",
    )


def _run(task: NodeTask, work: Work, *, on_error: ErrorHandler) -> None:
    try:
        try:
            work(task)
        except (TaskParked, LockLost):
            raise
        except MetalcastError as exc:  # an expected failure: its message says it all
            task.log.warning("%s: %s failed: %s", task.uuid, task.purpose, exc)
            _record_failure(task, exc, on_error=on_error)
        except Exception as exc:  # boundary: whatever happened, the node must not stay stuck
            task.log.exception("%s: %s failed", task.uuid, task.purpose)
            _record_failure(task, exc, on_error=on_error)
    except TaskParked:
        # the lock and work state stay: the next start's recovery fails the node
        task.log.warning("%s: conductor shutting down; task left parked", task.uuid)
        return
    except LockLost as exc:
        task.log.warning("%s", exc.message)  # the node is another conductor's now
        return
    try:
        task.release()
    except Exception:
        task.log.exception("%s: could not release the lock", task.uuid)


def _record_failure(task: NodeTask, exc: Exception, *, on_error: ErrorHandler) -> None:
    """Drive the node to its failure state; TaskParked and LockLost pass through.  When that
    cannot be written either, the node keeps its lock for recovery: released, it
    would rest in its work state with nothing to say why."""
    try:
        on_error(task, exc)
    except (TaskParked, LockLost):
        raise
    except Exception:
        task.log.exception("%s: could not record the failure", task.uuid)
        task.abandon()


def start_async(
    rt: Runtime,
    node_id: int,
    *,
    user: str,
    purpose: str,
    begin: Callable[[NodeTask], None],
    work: Work,
    on_error: ErrorHandler = fail_provision,
) -> None:
    """Reserve a worker, lock the node, run ``begin`` (checks, then the transition into
    the work state) in the caller's thread, then ``work`` in the worker.

    Raises:
        ServiceUnavailable, NoFreeWorker: no worker (nothing written).
        NodeLocked, NotFound: from the lock.
        MetalcastError: whatever ``begin`` raises (the lock is released again).
    """
    slot = rt.workers.reserve()
    try:
        task = acquire(rt, node_id, user=user, purpose=purpose)
    except BaseException:
        slot.cancel()
        raise
    try:
        begin(task)
    except BaseException:
        slot.cancel()
        task.release()
        raise
    task.release_at_rest = True  # the work's last write brings the node to rest
    run_in_worker(rt, task, slot=slot, work=work, on_error=on_error)
