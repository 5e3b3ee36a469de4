#!/usr/bin/env python3
"""Run the same workload against real Ironic and against metalcast; print ratios.

Each server gets a fresh temp state dir and a free port on 127.0.0.1, is
started, measured and stopped in turn. Ratios are "metalcast vs Ironic" with
>1 meaning metalcast is better (faster, higher rate or less memory).

    python bench/compare.py                       # full size, both servers
    python bench/compare.py --nodes 200 --lifecycle 50 --list-at 100
    python bench/compare.py --only ironic
    python bench/compare.py --ironic-json bench/results/ironic.json   # reuse
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ironic_env
import workload
from server import LOOPBACK, ManagedServer, free_port, launch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_METALCAST_CMD = "{root}/.venv/bin/metalcast server --port {port}"
TARGETS = ("ironic", "metalcast")
TITLES = {"ironic": f"Ironic {ironic_env.IRONIC_VERSION}", "metalcast": "metalcast"}


def start_metalcast(
    template: str,
    state_dir: Path,
    *,
    port: int,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> ManagedServer:
    """Start metalcast from the --metalcast-cmd template and wait for /v1; ``env``
    adds settings (``METALCAST_<AREA>__<KEY>``)."""
    values = {"port": str(port), "state_dir": str(state_dir), "root": str(REPO_ROOT)}
    command = [part.format(**values) for part in shlex.split(template)]
    server = launch(
        "metalcast",
        command,
        base_url=f"http://{LOOPBACK}:{port}",
        log_path=state_dir / "metalcast.log",
        env={"METALCAST_STATE_DIR": str(state_dir), **(env or {})},
    )
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


def start_target(target: str, args: argparse.Namespace, state_dir: Path) -> ManagedServer:
    port = free_port()
    workload.log(f"starting {target} on {LOOPBACK}:{port}, state in {state_dir}")
    if target == "ironic":
        return ironic_env.start(state_dir, port, timeout=args.ready_timeout)
    return start_metalcast(args.metalcast_cmd, state_dir, port=port, timeout=args.ready_timeout)


def measure_target(target: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Start ``target``, run the workload, stop it; return the results as a dict."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"bench-{target}-"))
    try:
        server = start_target(target, args, state_dir)
    except (OSError, RuntimeError, TimeoutError, subprocess.CalledProcessError) as err:
        workload.log(f"{target} did not start ({err}); logs in {state_dir}")
        return None
    try:
        settings = workload.settings_from(
            args, base_url=server.base_url, label=target, server_pid=server.pid
        )
        results = workload.run(settings)
    finally:
        server.stop()
    if args.keep_state or results.errors:
        workload.log(f"{target} state and logs kept in {state_dir}")
    else:
        shutil.rmtree(state_dir, ignore_errors=True)
    print(
        "\n".join(
            [
                *workload.table_lines(results, workload.metric_catalog(settings)),
                *workload.summary_lines(results),
            ]
        ),
        file=sys.stderr,
    )
    data = asdict(results)
    workload.write_json(results, args.results_dir / f"{target}.json")
    return data


def load_or_measure(target: str, args: argparse.Namespace) -> dict[str, Any] | None:
    saved: Path | None = getattr(args, f"{target}_json")
    if saved is not None:
        loaded: dict[str, Any] = json.loads(saved.read_text())
        return loaded
    if args.only not in (None, target):
        return None
    return measure_target(target, args)


def ratio(ironic: float | None, metalcast: float | None, *, higher_is_better: bool) -> float | None:
    """metalcast vs Ironic, >1 meaning metalcast is better."""
    if not ironic or not metalcast:
        return None
    return metalcast / ironic if higher_is_better else ironic / metalcast


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def rows(
    results: dict[str, dict[str, Any] | None], catalog: Sequence[workload.Metric]
) -> Iterator[list[str]]:
    """One row per metric: label (unit), a value per target, the ratio."""
    for metric in catalog:
        values = [(r or {}).get("metrics", {}).get(metric.key) for r in results.values()]
        cells = [f"{metric.label} ({metric.unit})", *map(workload.format_value, values)]
        if metric.key == "errors":
            cells.append("")
        else:
            cells.append(
                format_ratio(ratio(values[0], values[1], higher_is_better=metric.higher_is_better))
            )
        yield cells


def plain_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, *body]:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def report(results: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> str:
    reference = workload.settings_from(
        args, base_url=f"http://{LOOPBACK}", label="", server_pid=None
    )
    header = ["metric", *(TITLES[t] for t in results), "metalcast vs Ironic"]
    body = list(rows(results, workload.metric_catalog(reference)))
    settings = (
        f"{reference.clients} clients, API {reference.api_version}, {reference.nodes:,} nodes, "
        f"lifecycle {reference.lifecycle:,} nodes, poll {reference.poll_interval}s"
    )
    return "\n".join(
        [plain_table(header, body), "", f"Markdown ({settings}):", "", markdown_table(header, body)]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ironic vs metalcast benchmark")
    parser.add_argument("--only", choices=TARGETS, help="measure just one server")
    parser.add_argument(
        "--metalcast-cmd",
        default=DEFAULT_METALCAST_CMD,
        help="command template; {port}, {state_dir} and {root} are filled in "
        f"(default: {DEFAULT_METALCAST_CMD!r})",
    )
    parser.add_argument(
        "--ironic-json", type=Path, help="reuse these Ironic results instead of running it"
    )
    parser.add_argument("--metalcast-json", type=Path, help="reuse these metalcast results")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where JSON goes"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=180.0, help="seconds to wait for /v1"
    )
    parser.add_argument("--keep-state", action="store_true", help="keep state dirs and server logs")
    workload.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = {target: load_or_measure(target, args) for target in TARGETS}
    print(report(results, args))
    failed = any(r is None for t, r in results.items() if args.only in (None, t))
    return 1 if failed or any(r and r.get("errors") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
