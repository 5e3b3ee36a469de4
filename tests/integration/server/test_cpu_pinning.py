"""`metalcast server` keeps its threads on one CPU unless told otherwise
(metalcast.cpus; docs/benchmarks.md, "One CPU")."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_process import free_port, server_command

#: the ``run_server_in`` fixture of tests/integration/conftest.py
RunServerIn = Callable[..., contextlib.AbstractContextManager[Any]]

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="pinning needs a machine of 2 CPUs or more"
)


def thread_cpus(pid: int) -> dict[str, frozenset[int]]:
    """Each thread of process ``pid``: the CPUs it may run on."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            out[tid] = frozenset(os.sched_getaffinity(int(tid)))
    return out


def test_the_servers_threads_share_one_cpu(run_server_in: RunServerIn, tmp_path: Path) -> None:
    with run_server_in(tmp_path / "state") as server:
        threads = thread_cpus(server.process.pid)
    assert len(threads) > 5  # the API's, the conductor's, the periodic tasks'
    chosen = set().union(*threads.values())
    assert len(chosen) == 1, threads
    assert chosen <= os.sched_getaffinity(0)


def test_off_leaves_the_threads_on_every_cpu(run_server_in: RunServerIn, tmp_path: Path) -> None:
    with run_server_in(tmp_path / "state", env={"METALCAST_CPU": "off"}) as server:
        threads = thread_cpus(server.process.pid)
    assert all(cpus == os.sched_getaffinity(0) for cpus in threads.values()), threads


def test_a_cpu_the_server_may_not_use_stops_it_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "METALCAST_CPU": "4096"}
    command = server_command(port=free_port(), state_dir=tmp_path / "state")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "may not run on CPU 4096" in done.stderr, done.stderr
