"""The threads of the periodic passes over many nodes (power sync, sensor reads).

A pass calls one BMC per node, and a BMC that does not answer holds its call for
``bmc_call_timeout`` seconds, several attempts.  ``concurrent.futures``'
ThreadPoolExecutor joins its threads when the interpreter exits, so a conductor
stopped during a pass over a silent BMC stayed up until that call gave up (30 s:
the tests' servers outliving their lab's BMCs showed it).  A pass only reads and
records what it read, and the next start's first pass reads again, so nothing is
lost by leaving its calls behind: :class:`PassPool` runs them on daemon threads.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_Item = tuple["cf.Future[Any]", Callable[[], Any]]


class PassPool(cf.Executor):
    """Up to ``workers`` daemon threads, started as work arrives and kept, running
    what is submitted in order; the process never waits for them to end."""

    def __init__(self, workers: int, *, name: str) -> None:
        self._workers = max(1, workers)
        self._name = name
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[T]:
        future: cf.Future[T] = cf.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: cannot take work after shutdown")
            self._work.put((future, functools.partial(fn, *args, **kwargs)))
            if len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; cancel what has not started (``cancel_futures``); wait
        for the threads to end only when ``wait``."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            threads = list(self._threads)
            for _ in threads:
                self._work.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)
