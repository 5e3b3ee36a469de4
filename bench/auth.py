#!/usr/bin/env python3
"""What authentication costs: one workload under noauth, builtin and keystone.

For each mode a fresh ``metalcast server`` (its own state dir and port on 127.0.0.1):

``noauth``         no credentials: the baseline
``builtin-token``  a builtin API token (``X-Auth-Token``) of a system administrator
``builtin-basic``  HTTP Basic with a system administrator's name and password
``keystone``       a Keystone token of a system administrator, validated by
                   keystonemiddleware against a real Keystone on loopback (from
                   ``.venv-keystone``, which ``scripts/install --test`` makes)

The workload (``workload.py``: create nodes with a port, list, show, the fake
lifecycle) runs with the mode's credentials on every request; the table gives each
metric and its ratio to noauth (>1: faster than noauth, <1: slower).

Then the crowd: ``--crowd`` (1,000) clients at once, each with a token of its own
(builtin: 10 users with 100 tokens each; keystone: as many Keystone tokens), each
sending ``--crowd-requests`` GETs of one node over its own connection; the same
crowd without credentials under noauth is the baseline.  It runs twice: "cold", every
token new to the server (the first request of each pays the full validation), then
"warm", the same tokens again.

    bench/run --auth                                   # every mode (~10 min)
    bench/run --auth --modes noauth builtin-token --nodes 500

Needs the project's .venv (httpx, openstacksdk) and, for keystone, .venv-keystone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import workload
from compare import DEFAULT_METALCAST_CMD, REPO_ROOT, start_metalcast
from server import LOOPBACK, free_port

MODES = ("noauth", "builtin-token", "builtin-basic", "keystone")
VERSION = {"X-OpenStack-Ironic-API-Version": "1.31"}
#: builtin users keep at most 100 tokens each
TOKENS_PER_USER = 100
KEYSTONE_DIR = REPO_ROOT / "tests" / "integration" / "keystone"


@dataclass
class Mode:
    """A server under test and the credentials its clients send."""

    name: str
    base_url: str
    pid: int
    headers: dict[str, str]
    #: makes ``n`` distinct tokens (None: the crowd goes without credentials)
    make_tokens: Any = None


@dataclass
class Crowd:
    """What the crowd phase measured."""

    clients: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    setup_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


# ------------------------------------------------------------------------ servers


@contextmanager
def metalcast(args: argparse.Namespace, name: str, env: Mapping[str, str]) -> Iterator[Any]:
    state_dir = Path(tempfile.mkdtemp(prefix=f"bench-auth-{name}-"))
    workload.log(f"{name}: starting metalcast, state in {state_dir}")
    server = start_metalcast(
        DEFAULT_METALCAST_CMD, state_dir, port=free_port(), timeout=args.ready_timeout, env=env
    )
    try:
        yield server, state_dir
    finally:
        server.stop()
        if args.keep_state:
            workload.log(f"{name}: state and logs kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def bootstrap_admin(state_dir: Path, name: str, password: str) -> None:
    """A system administrator in the server's database, as an operator makes one."""
    subprocess.run(
        [str(REPO_ROOT / ".venv/bin/metalcast"), "user", "bootstrap-admin", "--name", name,
         "--password-stdin", "--state-dir", str(state_dir)],
        input=password + "\n", text=True, check=True, capture_output=True,
    )  # fmt: skip


def builtin_token(base_url: str, auth: Mapping[str, str], **scope: Any) -> str:
    body = scope or {"system": True}
    response = httpx.post(
        f"{base_url}/v1/auth/tokens", json=body, headers={**VERSION, **auth}, timeout=60
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def builtin_crowd_tokens(base_url: str, admin: Mapping[str, str], count: int) -> list[str]:
    """``count`` tokens of system readers: users of up to 100 tokens each."""
    tokens: list[str] = []
    with httpx.Client(base_url=base_url, headers={**VERSION, **admin}, timeout=60) as client:
        for index in range((count + TOKENS_PER_USER - 1) // TOKENS_PER_USER):
            name, password = f"crowd-{index}", secrets.token_urlsafe(16)
            client.post("/v1/auth/users", json={"name": name, "password": password})
            client.put(f"/v1/auth/system/users/{name}/roles/reader").raise_for_status()
            want = min(TOKENS_PER_USER, count - len(tokens))
            auth = basic(name, password)
            tokens += [builtin_token(base_url, auth) for _ in range(want)]
    return tokens


@contextmanager
def builtin_mode(args: argparse.Namespace, name: str) -> Iterator[Mode]:
    with metalcast(args, name, {"METALCAST_API__AUTH_STRATEGY": "builtin"}) as (server, state):
        password = secrets.token_urlsafe(24)
        bootstrap_admin(state, "bench-admin", password)
        admin = basic("bench-admin", password)
        if name == "builtin-basic":
            headers = admin
        else:
            headers = {"X-Auth-Token": builtin_token(server.base_url, admin)}
        yield Mode(
            name,
            server.base_url,
            server.pid,
            headers,
            make_tokens=lambda n: builtin_crowd_tokens(server.base_url, admin, n),
        )


@contextmanager
def keystone_mode(args: argparse.Namespace) -> Iterator[Mode]:
    sys.path.insert(0, str(KEYSTONE_DIR))  # the tests' Keystone on loopback
    import keystonelab  # type: ignore[import-not-found]

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-keystone-")))
        keystone = stack.enter_context(keystonelab.running_keystone(workdir))
        keystonelab.create_personas(keystone)
        server, _state = stack.enter_context(
            metalcast(args, "keystone", keystonelab.metalcast_env(keystone))
        )
        keystonelab.register_baremetal(keystone, server.base_url)
        admin = keystonelab.PERSONAS["system-admin"]
        reader = keystonelab.PERSONAS["system-reader"]

        def tokens(n: int) -> list[str]:
            return [keystone_token(keystone.url, reader) for _ in range(n)]

        headers = {"X-Auth-Token": keystone_token(keystone.url, admin)}
        yield Mode("keystone", server.base_url, server.pid, headers, make_tokens=tokens)


def keystone_token(url: str, persona: Any) -> str:
    """A new system-scoped token of ``persona`` (one password login)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": persona.username,
                        "domain": {"name": "Default"},
                        "password": persona.password,
                    }
                },
            },
            "scope": {"system": {"all": True}},
        }
    }
    response = httpx.post(f"{url}/auth/tokens", json=body, timeout=60)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


@contextmanager
def mode_server(args: argparse.Namespace, name: str) -> Iterator[Mode]:
    if name == "noauth":
        with metalcast(args, name, {"METALCAST_API__AUTH_STRATEGY": "noauth"}) as (server, _):
            yield Mode(name, server.base_url, server.pid, {})
    elif name == "keystone":
        with keystone_mode(args) as mode:
            yield mode
    else:
        with builtin_mode(args, name) as mode:
            yield mode


# -------------------------------------------------------------------------- crowd


async def _one_client(
    url: str, headers: Mapping[str, str], requests: int, latencies: list[float]
) -> dict[str, int]:
    statuses: dict[str, int] = {}
    # plain HTTP: verify=False spares each client loading a CA bundle (tens of ms of
    # the client's CPU each, which would be measured as the server's latency)
    client = httpx.AsyncClient(headers={**VERSION, **headers}, timeout=300, verify=False)
    async with client:
        for _ in range(requests):
            started = time.perf_counter()
            try:
                response = await client.get(url)
                key = str(response.status_code)
            except httpx.HTTPError as err:
                key = type(err).__name__
            latencies.append(time.perf_counter() - started)
            statuses[key] = statuses.get(key, 0) + 1
    return statuses


async def _crowd(url: str, credentials: list[dict[str, str]], requests: int) -> Crowd:
    latencies: list[float] = []
    started = time.perf_counter()
    results = await asyncio.gather(
        *(_one_client(url, headers, requests, latencies) for headers in credentials)
    )
    seconds = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for result in results:
        for key, count in result.items():
            statuses[key] = statuses.get(key, 0) + count
    ordered = sorted(latencies)
    return Crowd(
        clients=len(credentials),
        requests=len(ordered),
        seconds=round(seconds, 2),
        requests_per_s=round(len(ordered) / seconds, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 1),
        p99_ms=round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        errors=sum(c for k, c in statuses.items() if k != "200"),
        statuses=statuses,
    )


def crowd_phase(mode: Mode, args: argparse.Namespace) -> dict[str, Crowd]:
    """``--crowd`` clients at once, each with a distinct token (or none): first with
    tokens the server has never seen ("cold": each is validated), then again with the
    same tokens ("warm": validated ones are remembered)."""
    with httpx.Client(base_url=mode.base_url, headers={**VERSION, **mode.headers}) as client:
        node = client.post("/v1/nodes", json={"driver": "fake-hardware"}).json()["uuid"]
    started = time.perf_counter()
    if mode.make_tokens is None:
        credentials: list[dict[str, str]] = [{} for _ in range(args.crowd)]
    else:
        credentials = [{"X-Auth-Token": t} for t in mode.make_tokens(args.crowd)]
    setup = time.perf_counter() - started
    url = f"{mode.base_url}/v1/nodes/{node}"
    runs: dict[str, Crowd] = {}
    for run in ("cold", "warm"):
        workload.log(f"{mode.name}: {len(credentials)} clients, {args.crowd_requests} GETs each")
        runs[run] = asyncio.run(_crowd(url, credentials, args.crowd_requests))
        runs[run].setup_s = round(setup, 1)
    return runs


# -------------------------------------------------------------------------- report


def measure(args: argparse.Namespace, name: str) -> dict[str, Any]:
    with mode_server(args, name) as mode:
        settings = workload.settings_from(
            args, base_url=mode.base_url, label=name, server_pid=mode.pid
        )
        results = workload.run(settings, headers=mode.headers)
        crowd = crowd_phase(mode, args)
    data = asdict(results)
    data["crowd"] = {run: asdict(measured) for run, measured in crowd.items()}
    workload.log(f"{name}: workload errors {results.errors or 'none'}; crowd {crowd}")
    return data


def table(measured: Mapping[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    names = list(measured)
    settings = workload.settings_from(
        args, base_url=f"http://{LOOPBACK}:1", label="", server_pid=None
    )
    header = ["metric", *(f"{n}" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = measured.get("noauth", {})
    for metric in workload.metric_catalog(settings):
        if metric.key == "rss_mib":
            continue
        cells = [f"{metric.label} ({metric.unit})"]
        for name in names:
            value = measured[name]["metrics"].get(metric.key)
            cells.append(_cell(value, base.get("metrics", {}).get(metric.key), metric, name))
        lines.append("| " + " | ".join(cells) + " |")
    for run in ("cold", "warm"):
        for key, label, better in (
            ("requests_per_s", f"crowd of {args.crowd}, {run}: GETs (1/s)", True),
            ("p50_ms", f"crowd {run}: p50 latency (ms)", False),
            ("p99_ms", f"crowd {run}: p99 latency (ms)", False),
            ("errors", f"crowd {run}: errors", False),
        ):
            metric = workload.Metric(key, label, "", better)
            cells = [label]
            for name in names:
                value = measured[name]["crowd"][run].get(key)
                base_value = base.get("crowd", {}).get(run, {}).get(key)
                cells.append(_cell(value, base_value, metric, name))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(value: float | None, base: float | None, metric: workload.Metric, name: str) -> str:
    text = workload.format_value(value)
    if name == "noauth" or metric.key == "errors" or not value or not base:
        return text
    ratio = value / base if metric.higher_is_better else base / value
    return f"{text} ({ratio:.2f}x)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="What authentication costs metalcast")
    workload.add_arguments(parser)
    parser.set_defaults(nodes=2000, list_at="1000", lifecycle=200, show_samples=500)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--crowd", type=int, default=1000, help="concurrent clients")
    parser.add_argument("--crowd-requests", type=int, default=5, help="GETs per crowd client")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of every mode, in turns; medians are shown"
    )
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench/results/auth.json")
    args = parser.parse_args(argv)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in args.modes}
    for turn in range(args.rounds):
        # each round starts with another mode, so that no mode always runs first
        for name in args.modes[turn % len(args.modes) :] + args.modes[: turn % len(args.modes)]:
            rounds[name].append(measure(args, name))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rounds, indent=2) + "\n")
    print("\n".join(table({name: median_of(runs) for name, runs in rounds.items()}, args)))
    failed = any(
        m["errors"] or any(run["errors"] for run in m["crowd"].values())
        for runs in rounds.values()
        for m in runs
    )
    return 1 if failed else 0


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode's results with every metric the median of its rounds."""
    metrics = {
        key: statistics.median(values)
        for key in runs[0]["metrics"]
        if (values := [r["metrics"][key] for r in runs if r["metrics"].get(key) is not None])
    }
    crowd = {
        run: {
            key: statistics.median(r["crowd"][run][key] for r in runs)
            for key in ("requests_per_s", "p50_ms", "p99_ms", "errors")
        }
        for run in runs[0]["crowd"]
    }
    return {"metrics": metrics, "crowd": crowd}


if __name__ == "__main__":
    sys.exit(main())
