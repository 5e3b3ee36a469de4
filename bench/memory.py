#!/usr/bin/env python3
"""The all-in-one server's memory over a long, steady workload.

What an operator does all day, in rounds: ``--verbs-per-round`` provision verbs
(``manage`` on nodes in ``enroll`` or ``available``, ``provide`` on nodes in
``manageable``; each waits until the node settles), then ``--detail-reads`` full
reads of ``GET /v1/nodes/detail``.  The server is a fresh ``metalcast server``
(its own state dir and port on 127.0.0.1) with ``--nodes`` fake-hardware nodes
created first.  The RSS of its process tree is sampled every ``--sample-every``
seconds and after each round.

Steady means the same work each round, so RSS must stop growing once warm: the
report gives RSS idle after start, after creating the nodes, after the first round
and after the last, and the growth over the second half of the rounds.

    bench/run --memory                               # 1,000 nodes, 20 rounds of 200 verbs
    bench/run --memory --nodes 200 --rounds 5        # quick (~1 min)
    bench/run --memory --metalcast-cmd 'env MALLOC_ARENA_MAX=2 {root}/.venv/bin/metalcast server \
        --port {port}'

Exit status 1 if a request failed.  JSON to ``--json`` (bench/results/memory.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import workload
from compare import DEFAULT_METALCAST_CMD, REPO_ROOT, start_metalcast
from server import free_port

#: the verb that moves a node on from where it rests, and where it then rests
NEXT_VERB = {
    "enroll": ("manage", "manageable"),
    "available": ("manage", "manageable"),
    "manageable": ("provide", "available"),
}


@dataclass
class Report:
    nodes: int
    rounds: int
    verbs_per_round: int
    detail_reads: int
    rss_start_mib: float = 0.0
    rss_created_mib: float = 0.0
    #: RSS after each round
    rss_rounds_mib: list[float] = field(default_factory=list)
    #: (seconds since start, RSS MiB) every --sample-every seconds
    samples: list[tuple[float, float]] = field(default_factory=list)
    verbs_done: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    loadavg: list[tuple[float, float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def growth_second_half(self) -> float | None:
        """RSS growth from the middle round to the last (MiB)."""
        if len(self.rss_rounds_mib) < 2:
            return None
        middle = self.rss_rounds_mib[len(self.rss_rounds_mib) // 2 - 1]
        return self.rss_rounds_mib[-1] - middle


class Sampler(threading.Thread):
    """Samples the server tree's RSS until stopped."""

    def __init__(self, pid: int, every: float, report: Report) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.report = pid, every, report
        self.stop = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            rss = workload.server_rss_mib(self.pid) or 0.0
            self.report.samples.append((round(time.monotonic() - self.started_at, 1), rss))


def settle(client: httpx.Client, uuid: str, settings: workload.Settings) -> str:
    """Wait until the node has no target state; its provision state."""
    deadline = time.monotonic() + settings.transition_timeout
    while time.monotonic() < deadline:
        states = client.get(f"/v1/nodes/{uuid}/states")
        states.raise_for_status()
        body = states.json()
        if body["target_provision_state"] is None:
            return str(body["provision_state"])
        time.sleep(settings.poll_interval)
    raise workload.TransitionFailed(f"{uuid} did not settle")


def one_verb(clients: workload.Clients, tally: workload.Tally, uuid: str, s: Any) -> bool:
    """Move ``uuid`` on by one verb (see NEXT_VERB) and wait for it; False on error."""
    client = clients.get()
    try:
        state = settle(client, uuid, s)
        verb, expected = NEXT_VERB[state]
        workload.request_transition(client, tally, uuid, target=verb, settings=s)
        workload.wait_state(client, uuid, expected=expected, settings=s)
    except (KeyError, workload.TransitionFailed, httpx.HTTPError) as err:
        tally.error("verb", f"{uuid}: {err!r}")
        return False
    return True


def run(args: argparse.Namespace, base_url: str, pid: int) -> Report:
    settings = workload.settings_from(args, base_url=base_url, label="memory", server_pid=pid)
    report = Report(args.nodes, args.rounds, args.verbs_per_round, args.detail_reads)
    tally = workload.Tally()
    clients = workload.Clients(settings)
    report.rss_start_mib = workload.server_rss_mib(pid) or 0.0
    sampler = Sampler(pid, args.sample_every, report)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            workload.log(f"creating {args.nodes} nodes")
            uuids = workload.create_range(
                pool,
                clients,
                tally,
                run_id=f"{os.getpid() & 0xFFFFFF:06x}",
                indices=range(args.nodes),
            )
            report.rss_created_mib = workload.server_rss_mib(pid) or 0.0
            turn = 0
            for number in range(1, args.rounds + 1):
                chosen = [uuids[(turn + i) % len(uuids)] for i in range(args.verbs_per_round)]
                turn += args.verbs_per_round
                done = pool.map(lambda u: one_verb(clients, tally, u, settings), chosen)
                report.verbs_done += sum(done)
                for _ in range(args.detail_reads):
                    try:
                        workload.read_collection(clients.get(), "/v1/nodes/detail")
                    except httpx.HTTPError as err:
                        tally.error("detail", repr(err))
                rss = workload.server_rss_mib(pid) or 0.0
                report.rss_rounds_mib.append(rss)
                report.loadavg.append(os.getloadavg())
                workload.log(f"round {number}/{args.rounds}: RSS {rss:.1f} MiB")
    finally:
        sampler.stop.set()
        clients.close()
    report.seconds = round(time.monotonic() - started, 1)
    report.errors = sum(tally.errors.values())
    report.error_samples = list(tally.samples.values())
    return report


def summary(report: Report) -> list[str]:
    rounds = report.rss_rounds_mib
    growth = report.growth_second_half()
    lines = [
        f"{report.nodes} nodes, {report.rounds} rounds of {report.verbs_per_round} verbs "
        f"and {report.detail_reads} detail reads ({report.verbs_done} verbs done, "
        f"{report.errors} errors, {report.seconds:.0f} s)",
        f"RSS idle after start     {report.rss_start_mib:7.1f} MiB",
        f"RSS after creating nodes {report.rss_created_mib:7.1f} MiB",
    ]
    if rounds:
        lines += [
            f"RSS after round 1        {rounds[0]:7.1f} MiB",
            f"RSS after last round     {rounds[-1]:7.1f} MiB (max {max(rounds):.1f})",
            "RSS by round: " + " ".join(f"{r:.0f}" for r in rounds),
        ]
    if growth is not None:
        lines.append(f"growth over the second half of the rounds: {growth:+.1f} MiB")
    if report.loadavg:
        lines.append(
            f"load average (1 min) by round: {min(a for a, _, _ in report.loadavg):.1f} to "
            f"{max(a for a, _, _ in report.loadavg):.1f}, {os.cpu_count()} CPUs"
        )
    lines += [f"  error: {sample}" for sample in report.error_samples]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="metalcast server RSS under a steady workload")
    parser.add_argument("--nodes", type=int, default=1_000, help="fake-hardware nodes")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--verbs-per-round", type=int, default=200)
    parser.add_argument("--detail-reads", type=int, default=3, help="full detail reads per round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--api-version", default="1.51")
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--transition-timeout", type=float, default=300.0)
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--metalcast-cmd", default=DEFAULT_METALCAST_CMD)
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=REPO_ROOT / "bench" / "results" / "memory.json"
    )
    args = parser.parse_args(argv)
    # what workload.settings_from reads besides these
    args.list_at, args.list_runs, args.show_samples, args.lifecycle = "", 0, 0, 0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    port = free_port()
    server = start_metalcast(args.metalcast_cmd, state_dir, port=port, timeout=args.ready_timeout)
    try:
        report = run(args, server.base_url, server.pid)
    finally:
        server.stop()
        if args.keep_state:
            workload.log(f"state and log kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    print("\n".join(summary(report)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = {**asdict(report), "command": args.metalcast_cmd, "date": time.strftime("%FT%TZ")}
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
