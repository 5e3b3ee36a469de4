#!/usr/bin/env python3
"""The all-in-one server's write path, one source tree against another, in one run.

What it costs the server, in CPU, to create a node with its port and to carry a
node through one provision transition, measured so that the client's polling does
not decide the result: the lifecycle requests ``manage`` (then ``provide``) for 25
nodes at a time, waits 0.2 s, then polls each of them until it settles, so nearly
every transition costs its ``PUT`` and one ``GET .../states``.  The rates are
reported too; they depend on the machine's load, the CPU per item much less.

Each ``--src`` is a ``src`` directory (this tree's, or a ``git worktree`` of an
older commit); every tree's server is started in turn from the project's venv with
that directory first on ``PYTHONPATH``, on a fresh state dir and a free port on
127.0.0.1, and measured ``--rounds`` times, the trees alternating.

    .venv/bin/python bench/write_path.py                                # this tree
    git worktree add /tmp/base <commit>
    .venv/bin/python bench/write_path.py --src /tmp/base/src src --rounds 2

Exit status 1 if a request failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"X-OpenStack-Ironic-API-Version": "1.51"}
LIFECYCLE = (("manage", "manageable"), ("provide", "available"))
BATCH = 25


@dataclass
class Result:
    src: str
    nodes_per_s: float
    cpu_ms_per_node: float
    transitions_per_s: float
    cpu_ms_per_transition: float
    polls_per_transition: float
    load: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def in_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def start_server(src: Path, state_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "metalcast.cli.main", "server", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--state-dir", str(state_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1").status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server from {src} did not answer within 60 s")


def measure(src: Path, *, nodes: int, clients: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="metalcast-write-path-") as state:
        proc, base = start_server(src, Path(state))
        try:
            return _measure(proc.pid, base, src=src, nodes=nodes, clients=clients)
        finally:
            proc.terminate()
            proc.wait(30)


def _measure(pid: int, base: str, *, src: Path, nodes: int, clients: int) -> Result:
    uuids: list[str] = []
    lock = threading.Lock()

    def create(k: int) -> None:
        with httpx.Client(base_url=base, headers=HEADERS) as client:
            for i in range(k, nodes, clients):
                made = client.post("/v1/nodes", json={"driver": "fake-hardware", "name": f"n{i}"})
                made.raise_for_status()
                uuid = made.json()["uuid"]
                mac = f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
                port = {"node_uuid": uuid, "address": mac}
                client.post("/v1/ports", json=port).raise_for_status()
                with lock:
                    uuids.append(uuid)

    polls = [0] * clients

    def lifecycle(k: int) -> None:
        mine = uuids[k::clients]
        with httpx.Client(base_url=base, headers=HEADERS) as client:
            for target, wanted in LIFECYCLE:
                for start in range(0, len(mine), BATCH):
                    batch = mine[start : start + BATCH]
                    for uuid in batch:
                        request(client, uuid, target)
                    time.sleep(0.2)
                    for uuid in batch:
                        polls[k] += settle(client, uuid, wanted)

    cpu, started = cpu_seconds(pid), time.perf_counter()
    in_threads(clients, create)
    created_s, created_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    cpu, started = cpu_seconds(pid), time.perf_counter()
    in_threads(clients, lifecycle)
    moved_s, moved_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    transitions = len(LIFECYCLE) * nodes
    return Result(
        src=str(src),
        nodes_per_s=nodes / created_s,
        cpu_ms_per_node=created_cpu * 1000 / nodes,
        transitions_per_s=transitions / moved_s,
        cpu_ms_per_transition=moved_cpu * 1000 / transitions,
        polls_per_transition=sum(polls) / transitions,
        load=load(),
    )


def request(client: httpx.Client, uuid: str, target: str) -> None:
    """PUT the provision target, again while the node is still locked (409)."""
    while True:
        answer = client.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
        if answer.status_code == 202:
            return
        if answer.status_code != 409:
            answer.raise_for_status()
        time.sleep(0.05)


def settle(client: httpx.Client, uuid: str, wanted: str) -> int:
    """Poll until the node rests in ``wanted``; the number of polls."""
    polls = 0
    while True:
        polls += 1
        states = client.get(f"/v1/nodes/{uuid}/states").raise_for_status().json()
        if states["target_provision_state"] is None:
            if states["provision_state"] != wanted:
                raise SystemExit(f"{uuid} stopped in {states['provision_state']}: {states}")
            return polls
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", nargs="+", type=Path, default=[ROOT / "src"])
    parser.add_argument("--nodes", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    results: list[Result] = []
    try:
        for _ in range(args.rounds):
            for src in args.src:
                result = measure(src.resolve(), nodes=args.nodes, clients=args.clients)
                results.append(result)
                print(
                    f"{result.src}: {result.nodes_per_s:.0f} nodes/s, "
                    f"{result.cpu_ms_per_node:.2f} ms CPU per node+port; "
                    f"{result.transitions_per_s:.0f} transitions/s, "
                    f"{result.cpu_ms_per_transition:.2f} ms CPU per transition "
                    f"({result.polls_per_transition:.2f} polls each); load {result.load}",
                    flush=True,
                )
    except (httpx.HTTPError, SystemExit) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
