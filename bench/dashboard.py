#!/usr/bin/env python3
"""The dashboard's node table at 10,000 nodes: how long its pages take to come back.

    bench/run --dashboard                  # 10,000 nodes
    bench/run --dashboard --nodes 1000     # quick check

The all-in-one ``metalcast server`` (SQLite, noauth, fresh state dir) gets ``--nodes``
fake-hardware nodes (``--clients`` at a time; a tenth of them in maintenance, a
fifth owned by a project, so that the filters have something to find).  Then, one
request at a time, ``--rounds`` times each, timed from the client:

- ``/dashboard``: the whole page with the table's first 50 rows (what an operator
  opens);
- ``/dashboard/nodes/table`` with a provision-state filter, with maintenance on, with
  an owner, with a search by name, and the table's 100th page (a marker);
- ``/dashboard/nodes/{node}/row``: the row the page fetches when the event stream
  says a node changed (what keeps the table live).

Prints a markdown table of median, p95 and max milliseconds; writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import workload
from deployments import all_in_one, uptime

BENCH_DIR = Path(__file__).resolve().parent
HEADERS = {"X-OpenStack-Ironic-API-Version": "1.81"}
log = workload.log


def enrol(url: str, count: int, clients: int) -> list[str]:
    """``count`` fake nodes: every tenth in maintenance, every fifth owned."""

    local = threading.local()

    def create(index: int) -> str:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=url, headers=HEADERS, timeout=120)
        http: httpx.Client = local.http
        body: dict[str, Any] = {"name": f"node-{index:05d}", "driver": "fake-hardware"}
        if index % 5 == 0:
            body["owner"] = "project-a"
        made = http.post("/v1/nodes", json=body)
        made.raise_for_status()
        uuid = str(made.json()["uuid"])
        if index % 10 == 0:
            http.put(f"/v1/nodes/{uuid}/maintenance", json={"reason": "bench"}).raise_for_status()
        return uuid

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(create, range(count)))


def marker_of_page(http: httpx.Client, page: int) -> str:
    """The UUID the table's ``page``-th page starts after (50 rows a page), the API's
    own order, followed through its ``next`` links."""
    wanted = 50 * (page - 1)
    seen: list[str] = []
    url: str | None = "/v1/nodes?fields=uuid&limit=1000"
    while url and len(seen) < wanted:
        found = http.get(url, headers=HEADERS)
        found.raise_for_status()
        seen += [n["uuid"] for n in found.json()["nodes"]]
        url = found.json().get("next")
    return seen[wanted - 1]


def timed(http: httpx.Client, path: str, params: dict[str, str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = http.get(path, params=params)
        elapsed = time.perf_counter() - started
        answer.raise_for_status()
        times.append(elapsed * 1000)
    return times


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"nodes": args.nodes, "load_before": uptime()}
    with all_in_one({"METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0"}) as installation:
        url = installation.api_urls[0]
        started = time.monotonic()
        uuids = enrol(url, args.nodes, args.clients)
        log(f"{len(uuids)} nodes in {time.monotonic() - started:.0f} s")
        with httpx.Client(base_url=url, timeout=120) as http:
            marker = marker_of_page(http, 100) if args.nodes > 5000 else uuids[0]
            cases = {
                "/dashboard (page, first 50 rows)": ("/dashboard", {}),
                "table: provision_state=enroll": (
                    "/dashboard/nodes/table",
                    {"provision_state": "enroll"},
                ),
                "table: maintenance=true": ("/dashboard/nodes/table", {"maintenance": "true"}),
                "table: owner=project-a": ("/dashboard/nodes/table", {"owner": "project-a"}),
                "table: search by name": ("/dashboard/nodes/table", {"q": "node-04321"}),
                "table: page 100 (marker)": ("/dashboard/nodes/table", {"marker": marker}),
                "one row (a live update)": (f"/dashboard/nodes/{uuids[len(uuids) // 2]}/row", {}),
            }
            rows = {}
            for name, (path, params) in cases.items():
                timed(http, path, params, 2)  # warm
                times = sorted(timed(http, path, params, args.rounds))
                rows[name] = {
                    "median": round(statistics.median(times), 1),
                    "p95": round(times[int(0.95 * (len(times) - 1))], 1),
                    "max": round(times[-1], 1),
                }
            result["ms"] = rows
    result["load_after"] = uptime()
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"| request, {result['nodes']} nodes | median ms | p95 ms | max ms |"]
    lines.append("| --- | ---: | ---: | ---: |")
    for name, ms in result["ms"].items():
        lines.append(f"| {name} | {ms['median']} | {ms['p95']} | {ms['max']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=8, help="concurrent clients enrolling")
    p.add_argument("--rounds", type=int, default=20, help="requests timed per case")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "dashboard.json")
    args = p.parse_args(argv)
    result = run(args)
    print(report(result))
    print(f"\nload before: {result['load_before']}\nload after: {result['load_after']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
