#!/usr/bin/env python3
"""The benchmark workload, run against any Ironic-compatible /v1 endpoint.

Phases, in order:
  1. create nodes (fake-hardware, unique names), each with one port (unique
     MAC), with --clients concurrent clients; at each --list-at checkpoint,
     time a full read of GET /v1/nodes and GET /v1/nodes/detail (following
     ``next`` links) --list-runs times and keep the median;
  2. show: GET /v1/nodes/{uuid} --show-samples times, one client, median;
  3. fake lifecycle on the first --lifecycle nodes, --clients workers:
     manage -> manageable, provide -> available, active -> active,
     deleted -> available, polling /v1/nodes/{uuid}/states;
  4. RSS of the server's process tree (--server-pid), and the CPU seconds it
     spent creating and in the lifecycle (per node, per transition).

Needs only the stdlib and httpx. Traffic goes to --base-url only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from proctree import tree_cpu_seconds, tree_rss_bytes

DEFAULT_API_VERSION = "1.31"
VERSION_HEADER = "X-OpenStack-Ironic-API-Version"

# (target sent to PUT .../states/provision, provision_state to wait for)
LIFECYCLE: tuple[tuple[str, str], ...] = (
    ("manage", "manageable"),
    ("provide", "available"),
    ("active", "active"),
    ("deleted", "available"),
)
# Status codes a provision request may get while the node is busy: retried.
RETRY_STATUSES = frozenset({409, 503})


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass
class Settings:
    base_url: str
    api_version: str = DEFAULT_API_VERSION
    clients: int = 8
    nodes: int = 10_000
    list_at: tuple[int, ...] = (1_000, 10_000)
    list_runs: int = 5
    show_samples: int = 500
    lifecycle: int = 1_000
    poll_interval: float = 0.2
    transition_timeout: float = 300.0
    request_timeout: float = 120.0
    server_pid: int | None = None
    label: str = "target"
    seed: int = 1

    def checkpoints(self) -> list[int]:
        """Node counts at which list latency is measured (always includes --nodes)."""
        return sorted({n for n in self.list_at if 0 < n < self.nodes} | {self.nodes})


@dataclass
class Results:
    label: str
    base_url: str
    settings: dict[str, Any]
    metrics: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Tally:
    """Thread-safe counters of errors and retries per phase, and request latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.latencies: dict[str, list[float]] = {}

    def latency(self, kind: str, ms: float) -> None:
        with self._lock:
            self.latencies.setdefault(kind, []).append(ms)

    def error(self, phase: str, detail: str) -> None:
        with self._lock:
            self.errors[phase] += 1
            self.samples.setdefault(phase, detail[:300])

    def retry(self, phase: str) -> None:
        with self._lock:
            self.retries[phase] += 1


class Clients:
    """One keep-alive httpx.Client per thread; ``headers`` (credentials) go on every
    request but never into the results.  With ``base_urls`` (several API processes of
    one installation) the threads' clients take them in turn."""

    def __init__(
        self,
        settings: Settings,
        headers: Mapping[str, str] | None = None,
        *,
        base_urls: Sequence[str] = (),
    ) -> None:
        self._settings = settings
        self._headers = dict(headers or {})
        self._base_urls = list(base_urls) or [settings.base_url]
        self._turns = 0
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            with self._lock:
                base_url = self._base_urls[self._turns % len(self._base_urls)]
                self._turns += 1
            client = httpx.Client(
                base_url=base_url,
                headers={VERSION_HEADER: self._settings.api_version, **self._headers},
                timeout=self._settings.request_timeout,
            )
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._all:
                client.close()
            self._all.clear()


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code}: {response.text}"


def node_name(run_id: str, index: int) -> str:
    return f"bench-{run_id}-{index:06d}"


def mac_address(run_id: str, index: int) -> str:
    """A unique, locally administered MAC: 02:<2 run bytes>:<3 index bytes>."""
    octets = [0x02, int(run_id[0:2], 16), int(run_id[2:4], 16)]
    octets += [(index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF]
    return ":".join(f"{octet:02x}" for octet in octets)


def create_one(clients: Clients, tally: Tally, run_id: str, index: int) -> str | None:
    """Create node ``index`` and its port; return the node's uuid (None on failure)."""
    client = clients.get()
    try:
        start = time.perf_counter()
        response = client.post(
            "/v1/nodes", json={"name": node_name(run_id, index), "driver": "fake-hardware"}
        )
        tally.latency("post", (time.perf_counter() - start) * 1000.0)
    except httpx.HTTPError as err:
        tally.error("create_node", repr(err))
        return None
    if response.status_code != 201:
        tally.error("create_node", describe(response))
        return None
    uuid: str = response.json()["uuid"]
    try:
        start = time.perf_counter()
        port = client.post(
            "/v1/ports", json={"node_uuid": uuid, "address": mac_address(run_id, index)}
        )
        tally.latency("post", (time.perf_counter() - start) * 1000.0)
    except httpx.HTTPError as err:
        tally.error("create_port", repr(err))
        return uuid
    if port.status_code != 201:
        tally.error("create_port", describe(port))
    return uuid


def create_range(
    pool: ThreadPoolExecutor, clients: Clients, tally: Tally, *, run_id: str, indices: range
) -> list[str]:
    """Create nodes for ``indices`` concurrently; return uuids of those created."""
    created = pool.map(lambda i: create_one(clients, tally, run_id, i), indices)
    return [uuid for uuid in created if uuid is not None]


def read_collection(client: httpx.Client, path: str) -> tuple[int, int]:
    """GET ``path`` and every ``next`` page; return (items, pages). Raises on HTTP errors."""
    url: str | None = path
    items = pages = 0
    while url:
        response = client.get(url)
        response.raise_for_status()
        body = response.json()
        items += len(body["nodes"])
        pages += 1
        url = body.get("next")
    return items, pages


def time_call(func: Callable[[], object]) -> float:
    """Return the wall time of ``func()`` in milliseconds."""
    start = time.perf_counter()
    func()
    return (time.perf_counter() - start) * 1000.0


def median_list_ms(
    client: httpx.Client, tally: Tally, *, path: str, runs: int
) -> tuple[float | None, int]:
    """Median ms of full reads of ``path``; also the item count of the last read."""
    timings: list[float] = []
    counted = 0
    for _ in range(runs):
        start = time.perf_counter()
        try:
            counted, _pages = read_collection(client, path)
        except httpx.HTTPError as err:
            tally.error("list", f"{path}: {err!r}")
            continue
        timings.append((time.perf_counter() - start) * 1000.0)
    return (statistics.median(timings) if timings else None), counted


def measure_lists(ctx: Context, *, checkpoint: int, expected: int) -> None:
    """Time full list and detail reads; a read missing nodes counts as an error."""
    client = ctx.clients.get()
    for name, path in (("list", "/v1/nodes"), ("detail", "/v1/nodes/detail")):
        median, counted = median_list_ms(client, ctx.tally, path=path, runs=ctx.settings.list_runs)
        ctx.results.metrics[f"{name}_ms_{checkpoint}"] = median
        ctx.results.info[f"{name}_items_{checkpoint}"] = counted
        if median is not None and counted != expected:
            ctx.tally.error("list_count", f"{path}: read {counted} nodes, expected {expected}")


def measure_show(
    clients: Clients, tally: Tally, uuids: Sequence[str], *, samples: int, seed: int
) -> float | None:
    """Median ms of GET /v1/nodes/{uuid} over random created nodes, one client."""
    if not uuids or samples <= 0:
        return None
    client = clients.get()
    rng = random.Random(seed)
    timings: list[float] = []
    for _ in range(samples):
        uuid = rng.choice(uuids)
        start = time.perf_counter()
        try:
            response = client.get(f"/v1/nodes/{uuid}")
        except httpx.HTTPError as err:
            tally.error("show", repr(err))
            continue
        if response.status_code != 200:
            tally.error("show", describe(response))
            continue
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings) if timings else None


class TransitionFailed(Exception):
    """A lifecycle step of one node did not reach its state."""


def request_transition(
    client: httpx.Client, tally: Tally, uuid: str, *, target: str, settings: Settings
) -> None:
    """PUT the provision target, retrying while the node is locked or the server busy."""
    deadline = time.monotonic() + settings.transition_timeout
    while True:
        response = client.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
        if response.status_code == 202:
            return
        if response.status_code not in RETRY_STATUSES or time.monotonic() > deadline:
            raise TransitionFailed(describe(response))
        tally.retry(f"provision_{response.status_code}")
        time.sleep(settings.poll_interval)


def wait_state(client: httpx.Client, uuid: str, *, expected: str, settings: Settings) -> None:
    """Poll the node's states until it rests in ``expected``; raise on error or timeout."""
    deadline = time.monotonic() + settings.transition_timeout
    while time.monotonic() < deadline:
        time.sleep(settings.poll_interval)
        response = client.get(f"/v1/nodes/{uuid}/states")
        if response.status_code != 200:
            raise TransitionFailed(describe(response))
        states = response.json()
        if states["target_provision_state"] is None:
            if states["provision_state"] == expected:
                return
            state, error = states["provision_state"], states["last_error"]
            raise TransitionFailed(f"{uuid} stopped in {state!r}, wanted {expected!r}: {error}")
    raise TransitionFailed(f"{uuid} not {expected!r} after {settings.transition_timeout:.0f}s")


def run_lifecycle(clients: Clients, tally: Tally, uuid: str, *, settings: Settings) -> int:
    """Drive one node through LIFECYCLE; return the number of transitions completed."""
    client = clients.get()
    done = 0
    for target, expected in LIFECYCLE:
        try:
            request_transition(client, tally, uuid, target=target, settings=settings)
            wait_state(client, uuid, expected=expected, settings=settings)
        except (TransitionFailed, httpx.HTTPError) as err:
            tally.error("lifecycle", f"{target}: {err}")
            return done
        done += 1
    return done


def measure_lifecycle(
    pool: ThreadPoolExecutor,
    clients: Clients,
    tally: Tally,
    uuids: Sequence[str],
    *,
    settings: Settings,
) -> tuple[float, int]:
    """Return (seconds, transitions completed) for the lifecycle of ``uuids``."""
    start = time.perf_counter()
    done = sum(pool.map(lambda uuid: run_lifecycle(clients, tally, uuid, settings=settings), uuids))
    return time.perf_counter() - start, done


def count_nodes(clients: Clients, tally: Tally) -> int:
    try:
        return read_collection(clients.get(), "/v1/nodes")[0]
    except httpx.HTTPError as err:
        tally.error("list", repr(err))
        return -1


def server_rss_mib(pid: int | None) -> float | None:
    return None if pid is None else tree_rss_bytes(pid) / 2**20


def server_cpu(pid: int | None) -> float:
    """CPU seconds the server's process tree has used so far (0 without a pid)."""
    return 0.0 if pid is None else tree_cpu_seconds(pid)


def per_item_ms(seconds: float, items: int, pid: int | None) -> float | None:
    """Server CPU milliseconds per item (None without a server pid or items)."""
    return seconds * 1000.0 / items if pid is not None and items else None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """Everything one workload run shares between its phases."""

    settings: Settings
    pool: ThreadPoolExecutor
    clients: Clients
    tally: Tally
    results: Results
    baseline: int = 0


def creation_phase(ctx: Context) -> list[str]:
    """Create --nodes nodes, timing lists at each checkpoint; return created uuids.

    Show latency and the lifecycle are measured at the first checkpoint that
    holds --lifecycle nodes (1,000 by default), before the rest is created.
    """
    settings, results = ctx.settings, ctx.results
    run_id = f"{random.getrandbits(24):06x}"
    uuids: list[str] = []
    create_seconds = create_cpu = 0.0
    previous = 0
    for checkpoint in settings.checkpoints():
        log(f"{settings.label}: creating nodes {previous}..{checkpoint - 1}")
        start, cpu = time.perf_counter(), server_cpu(settings.server_pid)
        indices = range(previous, checkpoint)
        uuids += create_range(ctx.pool, ctx.clients, ctx.tally, run_id=run_id, indices=indices)
        segment = time.perf_counter() - start
        create_seconds += segment
        create_cpu += server_cpu(settings.server_pid) - cpu
        results.info.setdefault("loadavg_create", []).append(os.getloadavg())
        rates = results.info.setdefault("create_nodes_per_s_by_segment", {})
        rates[f"{previous}-{checkpoint}"] = round(len(indices) / segment, 2) if segment else None
        log(f"{settings.label}: {len(uuids)} created; timing list/detail at {checkpoint}")
        measure_lists(ctx, checkpoint=checkpoint, expected=ctx.baseline + len(uuids))
        due = checkpoint >= settings.lifecycle or checkpoint == settings.nodes
        if due and "lifecycle_at_nodes" not in results.info:
            show_and_lifecycle(ctx, uuids)
        previous = checkpoint
    results.metrics["create_nodes_per_s"] = len(uuids) / create_seconds if create_seconds else None
    posts = ctx.tally.latencies.get("post")
    results.metrics["create_post_ms"] = statistics.median(posts) if posts else None
    results.metrics["create_cpu_ms_per_node"] = per_item_ms(
        create_cpu, len(uuids), settings.server_pid
    )
    results.info["nodes_created"] = len(uuids)
    results.info["create_seconds"] = round(create_seconds, 3)
    return uuids


def show_and_lifecycle(ctx: Context, uuids: Sequence[str]) -> None:
    """Measure show latency, then the lifecycle of the first --lifecycle nodes."""
    settings, results = ctx.settings, ctx.results
    results.info["lifecycle_at_nodes"] = len(uuids)
    log(f"{settings.label}: show latency")
    results.metrics["show_ms"] = measure_show(
        ctx.clients, ctx.tally, uuids, samples=settings.show_samples, seed=settings.seed
    )
    subset = list(uuids[: settings.lifecycle])
    if not subset:
        return
    log(f"{settings.label}: lifecycle of {len(subset)} nodes")
    cpu = server_cpu(settings.server_pid)
    seconds, done = measure_lifecycle(ctx.pool, ctx.clients, ctx.tally, subset, settings=settings)
    cpu = server_cpu(settings.server_pid) - cpu
    results.info["loadavg_lifecycle"] = os.getloadavg()
    results.metrics["lifecycle_s"] = seconds
    results.metrics["lifecycle_transitions_per_s"] = done / seconds if seconds else None
    results.metrics["lifecycle_cpu_ms_per_transition"] = per_item_ms(cpu, done, settings.server_pid)
    results.info["lifecycle_nodes"] = len(subset)
    results.info["lifecycle_transitions"] = done
    results.info["lifecycle_transitions_expected"] = len(subset) * len(LIFECYCLE)


def run(settings: Settings, *, headers: Mapping[str, str] | None = None) -> Results:
    """Run every phase against ``settings.base_url`` and return the results;
    ``headers`` (credentials) are sent with every request."""
    results = Results(label=settings.label, base_url=settings.base_url, settings=asdict(settings))
    tally = Tally()
    clients = Clients(settings, headers)
    results.info["rss_mib_start"] = server_rss_mib(settings.server_pid)
    results.info["loadavg_start"] = os.getloadavg()
    try:
        baseline = max(count_nodes(clients, tally), 0)
        with ThreadPoolExecutor(max_workers=settings.clients) as pool:
            uuids = creation_phase(Context(settings, pool, clients, tally, results, baseline))
        results.info["nodes_listed"] = count_nodes(clients, tally) - baseline
        if results.info["nodes_listed"] != len(uuids):
            tally.error("list_count", f"final list: {results.info['nodes_listed']} new nodes")
    finally:
        clients.close()
    results.metrics["rss_mib"] = server_rss_mib(settings.server_pid)
    results.info["loadavg_end"] = os.getloadavg()
    results.errors = dict(tally.errors)
    results.retries = dict(tally.retries)
    results.info["error_samples"] = tally.samples
    results.metrics["errors"] = float(sum(tally.errors.values()))
    return results


def metric_catalog(settings: Settings) -> list[Metric]:
    """The metrics reported for ``settings``, in table order."""
    catalog = [
        Metric("create_nodes_per_s", "node create (+1 port)", "nodes/s", True),
        Metric("create_post_ms", "POST node or port, median", "ms", False),
        Metric("create_cpu_ms_per_node", "server CPU per node (+port)", "ms", False),
    ]
    for checkpoint in settings.checkpoints():
        catalog.append(Metric(f"list_ms_{checkpoint}", f"list {checkpoint:,} nodes", "ms", False))
        catalog.append(
            Metric(f"detail_ms_{checkpoint}", f"detail {checkpoint:,} nodes", "ms", False)
        )
    catalog += [
        Metric("show_ms", "show one node", "ms", False),
        Metric("lifecycle_s", f"lifecycle {settings.lifecycle:,} nodes", "s", False),
        Metric("lifecycle_transitions_per_s", "lifecycle transitions", "1/s", True),
        Metric("lifecycle_cpu_ms_per_transition", "server CPU per transition", "ms", False),
        Metric("rss_mib", "server RSS after run", "MiB", False),
        Metric("errors", "errors", "count", False),
    ]
    return catalog


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table_lines(results: Results, catalog: Iterable[Metric]) -> Iterator[str]:
    yield f"{'metric':<28} {'value':>10}  unit"
    for metric in catalog:
        value = format_value(results.metrics.get(metric.key))
        yield f"{metric.label:<28} {value:>10}  {metric.unit}"


def summary_lines(results: Results) -> Iterator[str]:
    info = results.info
    yield f"nodes created {info.get('nodes_created')}, listed {info.get('nodes_listed')}"
    if "lifecycle_transitions" in info:
        done, expected = info["lifecycle_transitions"], info["lifecycle_transitions_expected"]
        at = info.get("lifecycle_at_nodes")
        yield f"lifecycle transitions {done}/{expected}, run with {at} nodes in the server"
    yield f"errors {results.errors or 'none'}; retries {results.retries or 'none'}"
    if "loadavg_end" in info:
        yield f"load average at end {info['loadavg_end'][0]:.1f} (1 min), {os.cpu_count()} CPUs"
    for phase, sample in info.get("error_samples", {}).items():
        yield f"  first {phase} error: {sample}"


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(results), indent=2) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Workload flags, shared with compare.py."""
    parser.add_argument(
        "--api-version", default=DEFAULT_API_VERSION, help="X-OpenStack-Ironic-API-Version"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes to create in total")
    parser.add_argument(
        "--list-at", default="1000,10000", help="node counts at which to time lists"
    )
    parser.add_argument("--list-runs", type=int, default=5, help="full list reads per measurement")
    parser.add_argument(
        "--show-samples", type=int, default=500, help="GET /v1/nodes/{uuid} samples"
    )
    parser.add_argument(
        "--lifecycle", type=int, default=1_000, help="nodes taken through the lifecycle"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.2, help="seconds between state polls"
    )
    parser.add_argument(
        "--transition-timeout", type=float, default=300.0, help="seconds per transition"
    )


def require_loopback(base_url: str) -> None:
    """Refuse any target that is not on this machine's loopback."""
    host = httpx.URL(base_url).host
    if not (host == "localhost" or host == "::1" or host.startswith("127.")):
        raise SystemExit(f"refusing non-loopback target {base_url!r}")


def settings_from(
    args: argparse.Namespace, *, base_url: str, label: str, server_pid: int | None
) -> Settings:
    require_loopback(base_url)
    return Settings(
        base_url=base_url.rstrip("/"),
        api_version=args.api_version,
        clients=args.clients,
        nodes=args.nodes,
        list_at=tuple(int(part) for part in args.list_at.split(",") if part.strip()),
        list_runs=args.list_runs,
        show_samples=args.show_samples,
        lifecycle=min(args.lifecycle, args.nodes),
        poll_interval=args.poll_interval,
        transition_timeout=args.transition_timeout,
        server_pid=server_pid,
        label=label,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ironic-compatible API workload")
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:6385")
    parser.add_argument("--server-pid", type=int, help="pid whose process tree RSS is measured")
    parser.add_argument("--label", default="target", help="name of the target in the output")
    parser.add_argument("--json", type=Path, help="write results here")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = settings_from(
        args, base_url=args.base_url, label=args.label, server_pid=args.server_pid
    )
    results = run(settings)
    print("\n".join([*table_lines(results, metric_catalog(settings)), *summary_lines(results)]))
    if args.json:
        write_json(results, args.json)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
