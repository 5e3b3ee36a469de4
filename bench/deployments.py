"""The installations the scale-out benches measure, started and stopped here.

- ``server``: the all-in-one ``metalcast server`` on SQLite in a fresh state dir;
- ``split``: ``apis`` ``metalcast api`` and ``conductors`` ``metalcast conductor``
  processes on a throwaway PostgreSQL cluster, one state dir (one secret key),
  through the tests' own helpers (``tests/support/postgres.py`` and
  ``deployment.py``), run by this interpreter (``.venv/bin/python``).

Every process's tree is known by name (``api1``, ``c1``, ``server``, ``postgres``),
so that a bench can read CPU seconds and RSS per process from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from proctree import tree_cpu_seconds, tree_rss_bytes
from server import LOOPBACK, ManagedServer, free_port, launch
from workload import log

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# the tests' helpers import each other by module name, as pytest's pythonpath has them
sys.path[:0] = [str(REPO_ROOT / "tests" / "support"), str(REPO_ROOT / "tests" / "integration")]

from deployment import Deployment  # noqa: E402
from postgres import Cluster  # noqa: E402

#: each process holds up to 60 connections (db/engine.py: a pool of 20, 40 overflow);
#: five processes need 300 and the helper's cluster allows 300 less 3 reserved
MAX_CONNECTIONS = 500


class BenchCluster(Cluster):
    """The tests' throwaway cluster with room for five processes' pools, and its
    server's pid (for CPU and RSS)."""

    def _options(self) -> str:
        return (
            super()._options().replace("max_connections=300", f"max_connections={MAX_CONNECTIONS}")
        )

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])


def uptime() -> str:
    """``uptime``'s line: the load averages (the machine is shared)."""
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return out.strip()


@dataclass
class Installation:
    """What a bench talks to: API URLs and the pids of every process tree."""

    name: str
    api_urls: list[str]
    pids: dict[str, int] = field(default_factory=dict)
    state_dir: Path | None = None
    deployment: Deployment | None = None

    def cpu(self) -> dict[str, float]:
        """CPU seconds of each process tree so far."""
        return {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def rss_mib(self) -> dict[str, float]:
        """RSS of each process tree, MiB."""
        return {name: tree_rss_bytes(pid) / 2**20 for name, pid in self.pids.items()}


@contextlib.contextmanager
def all_in_one(env: Mapping[str, str], *, keep: bool = False) -> Iterator[Installation]:
    """``metalcast server`` on SQLite in a fresh state dir, stopped at the end."""
    state_dir = Path(tempfile.mkdtemp(prefix="bench-scale-server-"))
    port = free_port()
    command = [
        sys.executable, "-m", "metalcast.cli.main", "server",
        "--host", LOOPBACK, "--port", str(port), "--state-dir", str(state_dir),
    ]  # fmt: skip
    server: ManagedServer = launch(
        "metalcast",
        command,
        base_url=f"http://{LOOPBACK}:{port}",
        log_path=state_dir / "server.log",
        env={"METALCAST_STATE_DIR": str(state_dir), **env},
    )
    try:
        server.wait_ready(180)
        yield Installation("server", [server.base_url], {"server": server.pid}, state_dir)
    finally:
        server.stop(timeout=120)
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            log(f"state and log kept in {state_dir}")


@contextlib.contextmanager
def split(
    env: Mapping[str, str], *, apis: int, conductors: int, keep: bool = False
) -> Iterator[Installation]:
    """``apis`` API and ``conductors`` conductor processes on a throwaway PostgreSQL."""
    cluster = BenchCluster.start()
    state_dir = Path(tempfile.mkdtemp(prefix="bench-scale-split-"))
    try:
        url = cluster.url(cluster.create_database())
        deploy = Deployment(url, state_dir, env)
        try:
            for index in range(1, apis + 1):
                deploy.add_api(f"api{index}")
            for index in range(1, conductors + 1):
                deploy.add_conductor(f"c{index}")
            pids = {n: p.popen.pid for n, p in deploy.processes.items() if p.popen is not None}
            pids["postgres"] = cluster.postmaster_pid()
            urls = [p.url for p in deploy.processes.values() if p.kind == "api"]
            yield Installation(
                f"{apis} api + {conductors} conductor", urls, pids, state_dir, deploy
            )
        finally:
            deploy.close()
    finally:
        cluster.stop()
        if not keep:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            log(f"state and logs kept in {state_dir}")
