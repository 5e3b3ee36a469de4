"""The periodic passes' pool: results like an executor's, and a process that stops
does not wait for a BMC that never answers."""

from __future__ import annotations

import concurrent.futures as cf
import subprocess
import sys
import threading

import pytest

from metalcast.conductor.pass_pool import PassPool


def test_results_and_errors_come_back_through_the_futures() -> None:
    pool = PassPool(3, name="t")
    futures = [pool.submit(lambda n=n: n * n) for n in range(10)]
    failing = pool.submit(int, "not a number")
    _done, late = cf.wait([*futures, failing], timeout=30)
    assert not late
    assert [f.result() for f in futures] == [n * n for n in range(10)]
    with pytest.raises(ValueError):
        failing.result()
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int, "1")


def test_at_most_its_workers_run_at_once_and_waiting_work_is_cancelled() -> None:
    pool = PassPool(2, name="t")
    release = threading.Event()
    running = threading.Semaphore(0)

    def hold() -> None:
        running.release()
        release.wait(30)

    first = [pool.submit(hold) for _ in range(2)]
    assert running.acquire(timeout=10) and running.acquire(timeout=10)
    queued = pool.submit(hold)
    assert not running.acquire(timeout=0.2)  # no third thread
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    release.set()
    cf.wait(first, timeout=30)
    assert all(f.done() and not f.cancelled() for f in first)


STUCK = """
import threading
from metalcast.conductor.pass_pool import PassPool
pool = PassPool(2, name="sensors")
started = threading.Event()
pool.submit(lambda: (started.set(), threading.Event().wait()))  # a BMC that never answers
started.wait()
pool.shutdown(wait=False, cancel_futures=True)
print("exiting")
"""


def test_a_process_ends_though_a_call_never_returns() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exiting"
