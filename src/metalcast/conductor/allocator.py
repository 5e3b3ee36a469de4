"""The allocator: a few threads of the conductor's own that process allocations.

Allocations are processed here rather than in the worker pool: they need no BMC, take
milliseconds, and a pool full of deploys must not refuse them (the pool answers 503
when full; this queue does not).  An allocation waits in the queue as an id; its
state lives in the database, so a conductor that stops with allocations queued finds
them ``allocating`` at its next start and queues them again, and a live conductor
takes over those of a dead one (:meth:`Allocator.take_over_orphans`).  An allocation
whose processing the database cut short (it went away) is queued again by the next
catch-up pass after a heartbeat (:meth:`Allocator.retry_failed`); the thread goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import timedelta

from metalcast.conductor import allocations
from metalcast.conductor.runtime import Runtime
from metalcast.db import allocations as repo_alloc
from metalcast.db import repository as repo

_log = logging.getLogger(__name__)

#: threads processing allocations at once: several, so that the atomic taking of a
#: node is exercised by concurrent allocations even within one conductor
THREADS = 4


class Allocator:
    """Processes allocations submitted by id, in :data:`THREADS` threads."""

    def __init__(self, rt: Runtime, *, threads: int = THREADS) -> None:
        self.rt = rt
        self.threads = threads
        #: this conductor's id (``conductors.id``), known once started
        self.conductor_id: int | None = None
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._threads: list[threading.Thread] = []
        #: allocations a failure stopped (their state could not even be recorded)
        self._failed: set[int] = set()

    def start(self, conductor_id: int) -> None:
        """Start the threads and queue the allocations this conductor left
        ``allocating`` when it last stopped."""
        self.conductor_id = conductor_id
        for index in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"allocator-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        filters = repo_alloc.AllocationFilters(
            state=repo_alloc.ALLOCATING, conductor_affinity=conductor_id
        )
        with self.rt.db.read() as conn:
            left = repo_alloc.list_allocations(conn, filters, repo.Page(limit=1_000_000))
        for allocation in left:
            self.submit(allocation.id)
        if left:
            _log.info("%d allocation(s) left allocating queued again", len(left))

    def submit(self, allocation_id: int) -> None:
        """Queue an allocation for processing."""
        with self._idle:
            self._pending += 1
        self._queue.put(allocation_id)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the threads finish the allocation in hand and stop; what is still
        queued stays ``allocating`` for the next start."""
        self._drain()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or in hand."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def take_over_orphans(self) -> int:
        """Take over the allocating allocations of conductors that are offline or
        silent past ``heartbeat_timeout``; returns how many were queued."""
        if self.conductor_id is None:
            return 0
        limit = self.rt.clock.now() - timedelta(seconds=self.rt.settings.heartbeat_timeout)
        with self.rt.db.begin() as conn:
            dead = [
                c.id
                for c in repo.list_conductors(conn)
                if c.id != self.conductor_id
                and (not c.online or (c.updated_at or c.created_at) < limit)
            ]
            taken = (
                repo_alloc.take_over_allocations(conn, dead=dead, conductor_id=self.conductor_id)
                if dead
                else []
            )
        for allocation in taken:
            _log.info("taking over allocation %s", allocation.uuid)
            self.submit(allocation.id)
        return len(taken)

    def _drain(self) -> None:
        """Forget what is queued (it stays allocating in the database)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._done()

    def _run(self) -> None:
        while True:
            allocation_id = self._queue.get()
            if allocation_id is None:
                return
            try:
                allocations.allocate(self.rt, allocation_id)
            except Exception as exc:  # boundary: the database went away; the thread lives on
                _log.warning(
                    "allocation %s not processed (%s); queued again by the next heartbeat",
                    allocation_id,
                    type(exc).__name__,
                )
                with self._idle:
                    self._failed.add(allocation_id)
            finally:
                self._done()

    def retry_failed(self) -> int:
        """Queue again the allocations a failure stopped; returns how many."""
        with self._idle:
            failed, self._failed = sorted(self._failed), set()
        for allocation_id in failed:
            self.submit(allocation_id)
        return len(failed)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
