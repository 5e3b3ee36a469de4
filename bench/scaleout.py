#!/usr/bin/env python3
"""Scale-out: the same workload against the all-in-one server on SQLite, one API and
one conductor process on PostgreSQL, and two API and three conductor processes on
PostgreSQL (issue 10, item 8).

    .venv/bin/python bench/scaleout.py                          # 100,000 nodes, a b c
    .venv/bin/python bench/scaleout.py --configs c a --nodes 100000
    .venv/bin/python bench/scaleout.py --configs b --nodes 20000 --lifecycle 1000
    .venv/bin/python bench/scaleout.py --nodes 500 --lifecycle 50   # quick (~2 min)

Configurations: ``a`` ``metalcast server`` (SQLite), ``b`` 1 ``metalcast api`` + 1
``metalcast conductor``, ``c`` 2 API + 3 conductor processes, both on a throwaway
PostgreSQL cluster (bench/deployments.py).  For each, in a fresh installation:

1. create ``--nodes`` fake-hardware nodes (no ports) with ``--clients`` keep-alive
   clients, the clients' threads taking the API processes in turn; the rate, and
   per ``--progress-every`` nodes;
2. read ``GET /v1/nodes`` and ``/v1/nodes/detail`` whole (following ``next``),
   ``--list-runs`` times each through the first API process, the median;
3. ``GET /v1/nodes/{uuid}``, ``--show-samples`` times, one client, the median;
4. the fake lifecycle (manage, provide, deploy, undeploy: bench/workload.py) of the
   first ``--lifecycle`` nodes with ``--clients`` workers: transitions per second;
5. CPU seconds of every process tree (API, conductor, server, PostgreSQL) per phase,
   RSS at the end, ``uptime`` before and after each phase.

Conductors run the defaults except a power-sync interval of an hour (fake nodes in
``enroll`` are not synced anyway) and ``--workers-pool-size``.  Markdown on stdout,
progress on stderr, everything in ``--json`` (bench/results/scaleout.json).  Exit
status 1 if a request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import deployments
import httpx
import workload
from deployments import Installation

BENCH_DIR = Path(__file__).resolve().parent
CONFIGS = {
    "a": "all-in-one server, SQLite",
    "b": "1 api + 1 conductor, PostgreSQL",
    "c": "2 api + 3 conductor, PostgreSQL",
}
log = workload.log


@dataclass
class Outcome:
    """One configuration's results."""

    config: str
    title: str
    nodes: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    cpu_s: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> process -> s
    rss_mib: dict[str, float] = field(default_factory=dict)
    uptime: dict[str, str] = field(default_factory=dict)
    create_rates: list[tuple[int, float]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)


def environment(args: argparse.Namespace) -> dict[str, str]:
    return {
        "METALCAST_BOOT__ENABLED": "false",
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "3600",
        "METALCAST_CONDUCTOR__WORKERS_POOL_SIZE": str(args.workers_pool_size),
        # the tests' launcher sets 1 s heartbeats; the defaults here
        "METALCAST_CONDUCTOR__HEARTBEAT_INTERVAL": "10",
        "METALCAST_CONDUCTOR__HEARTBEAT_TIMEOUT": "15",
    }


@contextlib.contextmanager
def installation(config: str, args: argparse.Namespace) -> Iterator[Installation]:
    env = environment(args)
    if config == "a":
        with deployments.all_in_one(env, keep=args.keep_state) as inst:
            yield inst
        return
    apis, conductors = (1, 1) if config == "b" else (2, 3)
    with deployments.split(env, apis=apis, conductors=conductors, keep=args.keep_state) as inst:
        yield inst


def create_node(
    clients: workload.Clients, tally: workload.Tally, run_id: str, index: int
) -> str | None:
    """POST one fake-hardware node; its uuid, or None (counted as an error)."""
    client = clients.get()
    body = {"name": workload.node_name(run_id, index), "driver": "fake-hardware"}
    try:
        start = time.perf_counter()
        response = client.post("/v1/nodes", json=body)
        tally.latency("post", (time.perf_counter() - start) * 1000.0)
    except httpx.HTTPError as err:
        tally.error("create_node", repr(err))
        return None
    if response.status_code != 201:
        tally.error("create_node", workload.describe(response))
        return None
    uuid: str = response.json()["uuid"]
    return uuid


class Phases:
    """Runs the phases of one configuration, recording CPU and load around each."""

    def __init__(self, inst: Installation, outcome: Outcome, args: argparse.Namespace) -> None:
        self.inst, self.outcome, self.args = inst, outcome, args
        self.settings = workload.Settings(
            base_url=inst.api_urls[0],
            api_version=args.api_version,
            clients=args.clients,
            nodes=args.nodes,
            lifecycle=args.lifecycle,
            poll_interval=args.poll_interval,
            transition_timeout=args.transition_timeout,
            label=outcome.config,
        )
        self.tally = workload.Tally()
        self.clients = workload.Clients(self.settings, base_urls=inst.api_urls)

    def timed(self, phase: str, func: Callable[[], object]) -> float:
        """Run ``func``; record its CPU per process and the load; its wall seconds."""
        self.outcome.uptime[f"{phase} before"] = deployments.uptime()
        cpu = self.inst.cpu()
        start = time.perf_counter()
        func()
        seconds = time.perf_counter() - start
        after = self.inst.cpu()
        self.outcome.cpu_s[phase] = {k: round(after[k] - cpu.get(k, 0.0), 2) for k in after}
        self.outcome.uptime[f"{phase} after"] = deployments.uptime()
        load = self.outcome.uptime[f"{phase} after"]
        log(f"{self.outcome.config}: {phase} {seconds:.1f}s; {load}")
        return seconds

    def create(self, pool: ThreadPoolExecutor) -> list[str]:
        run_id = f"{random.getrandbits(24):06x}"
        uuids: list[str] = []

        def create_all() -> None:
            step = self.args.progress_every
            for first in range(0, self.args.nodes, step):
                indices = range(first, min(first + step, self.args.nodes))
                start = time.perf_counter()
                made = pool.map(lambda i: create_node(self.clients, self.tally, run_id, i), indices)
                uuids.extend(u for u in made if u is not None)
                rate = len(indices) / (time.perf_counter() - start)
                self.outcome.create_rates.append((indices.stop, round(rate, 1)))
                config = self.outcome.config
                log(f"{config}: {len(uuids)} nodes, {rate:.0f}/s for the last {len(indices)}")

        seconds = self.timed("create", create_all)
        self.outcome.metrics["create_nodes_per_s"] = len(uuids) / seconds
        posts = self.tally.latencies.get("post")
        self.outcome.metrics["create_post_ms"] = statistics.median(posts) if posts else None
        self.outcome.metrics["nodes_created"] = len(uuids)
        return uuids

    def lists(self) -> None:
        client = self.clients.get()
        for name, path in (("list", "/v1/nodes"), ("detail", "/v1/nodes/detail")):
            found: list[tuple[float | None, int]] = []

            def read(path: str = path, found: list[tuple[float | None, int]] = found) -> None:
                found.append(
                    workload.median_list_ms(client, self.tally, path=path, runs=self.args.list_runs)
                )

            self.timed(name, read)
            median, counted = found[0]
            self.outcome.metrics[f"{name}_ms"] = median
            if counted != self.outcome.metrics["nodes_created"]:
                self.tally.error("list_count", f"{path}: {counted} nodes")

    def show(self, uuids: Sequence[str]) -> None:
        self.outcome.metrics["show_ms"] = workload.measure_show(
            self.clients, self.tally, uuids, samples=self.args.show_samples, seed=1
        )

    def lifecycle(self, pool: ThreadPoolExecutor, uuids: Sequence[str]) -> None:
        subset = list(uuids[: self.args.lifecycle])
        result: list[tuple[float, int]] = []

        def run() -> None:
            result.append(
                workload.measure_lifecycle(
                    pool, self.clients, self.tally, subset, settings=self.settings
                )
            )

        self.timed("lifecycle", run)
        seconds, done = result[0]
        self.outcome.metrics["lifecycle_s"] = seconds
        self.outcome.metrics["lifecycle_transitions"] = done
        self.outcome.metrics["lifecycle_transitions_per_s"] = done / seconds if seconds else None

    def run(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=self.args.clients) as pool:
                uuids = self.create(pool)
                self.lists()
                self.timed("show", lambda: self.show(uuids))
                self.lifecycle(pool, uuids)
            self.outcome.rss_mib = {k: round(v, 1) for k, v in self.inst.rss_mib().items()}
        finally:
            self.clients.close()
            self.outcome.errors = dict(self.tally.errors)
            self.outcome.error_samples = dict(self.tally.samples)
            self.outcome.retries = dict(self.tally.retries)


def measure(config: str, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(config, CONFIGS[config], args.nodes)
    outcome.uptime["start"] = deployments.uptime()
    log(f"{config}: starting {CONFIGS[config]}; {outcome.uptime['start']}")
    with installation(config, args) as inst:
        Phases(inst, outcome, args).run()
    outcome.uptime["end"] = deployments.uptime()
    log(f"{config}: done; errors {outcome.errors or 'none'} {outcome.error_samples}")
    return outcome


# -------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return workload.format_value(value)


def main_rows(outcomes: Sequence[Outcome]) -> Iterator[list[str]]:
    keys = (
        ("create_nodes_per_s", "create (nodes/s)"),
        ("create_post_ms", "POST /v1/nodes median (ms)"),
        ("list_ms", "list all nodes, median (ms)"),
        ("detail_ms", "detail all nodes, median (ms)"),
        ("show_ms", "show one node, median (ms)"),
        ("lifecycle_transitions_per_s", "lifecycle (transitions/s)"),
        ("lifecycle_s", "lifecycle (s)"),
    )
    for key, label in keys:
        yield [label, *(fmt(o.metrics.get(key)) for o in outcomes)]
    yield ["errors", *(str(sum(o.errors.values())) for o in outcomes)]


def cpu_rows(outcome: Outcome) -> Iterator[list[str]]:
    processes = list(next(iter(outcome.cpu_s.values()), {}))
    for process in processes:
        cells = [f"{outcome.cpu_s[p].get(process, 0.0):.1f}" for p in outcome.cpu_s]
        yield [process, *cells, f"{outcome.rss_mib.get(process, 0.0):.0f}"]


def report(outcomes: Sequence[Outcome]) -> str:
    header = ["metric", *(f"{o.config}: {o.title} ({o.nodes:,} nodes)" for o in outcomes)]
    lines = [markdown_table(header, list(main_rows(outcomes))), ""]
    for outcome in outcomes:
        phases = list(outcome.cpu_s)
        lines += [
            f"CPU seconds per phase and RSS, {outcome.config} ({outcome.title}):",
            "",
            markdown_table(["process", *phases, "RSS MiB"], list(cpu_rows(outcome))),
            "",
        ]
        lines += [f"    {k}: {v}" for k, v in outcome.uptime.items()]
        lines.append("")
    return "\n".join(lines)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["a", "b", "c"])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument(
        "--clients", type=int, default=16, help="client threads (and lifecycle workers)"
    )
    parser.add_argument(
        "--lifecycle", type=int, default=1_000, help="nodes taken through the lifecycle"
    )
    parser.add_argument("--list-runs", type=int, default=3)
    parser.add_argument("--show-samples", type=int, default=200)
    parser.add_argument(
        "--progress-every", type=int, default=5_000, help="nodes per logged create step"
    )
    parser.add_argument("--api-version", default="1.31")
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--transition-timeout", type=float, default=600.0)
    parser.add_argument("--workers-pool-size", type=int, default=100)
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "scaleout.json")
    args = parser.parse_args(argv)
    args.lifecycle = min(args.lifecycle, args.nodes)
    args.progress_every = max(1, min(args.progress_every, args.nodes))
    return args


def save(outcomes: Sequence[Outcome], path: Path) -> None:
    """Write ``outcomes`` into ``path``, keeping rows of other configurations and sizes."""
    kept: list[dict[str, Any]] = []
    if path.exists():
        fresh = {(o.config, o.nodes) for o in outcomes}
        kept = [r for r in json.loads(path.read_text()) if (r["config"], r["nodes"]) not in fresh]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept + [asdict(o) for o in outcomes], indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes: list[Outcome] = []
    for config in args.configs:
        outcomes.append(measure(config, args))
        save(outcomes, args.json)
        print(report(outcomes[-1:]), flush=True)
    print(report(outcomes))
    return 1 if any(o.errors for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
