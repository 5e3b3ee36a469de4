#!/usr/bin/env python3
"""Power-state sync at scale: one full sync pass over N virtual BMCs, metalcast vs Ironic.

    bench/run --power-sync                         # 1,000 IPMI + 1,000 Redfish BMCs, both
    bench/run --power-sync --nodes 50              # quick check
    bench/run --power-sync --only metalcast --protocols ipmi --workers 8 32

1. The virtual BMCs run in their own process: ``metalcast lab bmc --count N --ipmi
   --redfish --control-port P`` (IPMI: one UDP port and, by default, one loopback
   address per machine, 127.0.0.1 + i; Redfish: every machine a ComputerSystem behind
   one port).  Its power-control endpoint flips every machine's power out of band
   with one request and reads back every machine's real power state.
2. For each server and protocol, with a fresh state dir: start the server with the
   sync off, enrol N nodes of the ``ipmi`` (or ``redfish``) hardware type pointing at
   the BMCs, ``manage`` them (verification reads each BMC, in a window of
   ``--manage-window`` at a time) until every node is ``manageable``; stop it.
3. For each ``--workers`` value: start the server again on the same database with a
   sync interval of ``--interval`` (1 s) and that many sync workers; let a first
   pass (metalcast logs in to every BMC there) and a steady pass run; right after a
   pass ends, toggle every machine's power; the next pass must then find all N
   nodes changed, and its duration, from the conductor's own log line (see
   sync_logs.py), is the result.  One more (steady) pass; then every node's
   recorded power state is compared with its machine's.

Prints a table and its markdown; writes ``--json`` (bench/results/power_sync.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import compare
import httpx
import ironic_env
import workload
from proctree import descendants
from server import LOOPBACK, ManagedServer, free_port, launch
from sync_logs import PassLog, SyncPass

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TARGETS = ("metalcast", "ironic")
PROTOCOLS = ("ipmi", "redfish")
USERNAME, PASSWORD = "admin", "password"
DEFAULT_LAB_CMD = "{root}/.venv/bin/metalcast lab bmc"
#: what the API shows for the machine's "on" / "off"
API_POWER = {"on": "power on", "off": "power off"}
NODE_FIELDS = "uuid,name,provision_state,target_provision_state,power_state,last_error"
#: what a request may get while the node or the server is busy: tried again.  Ironic
#: under load answers 500 "database is locked" (SQLite) now and then.
RETRY_STATUSES = frozenset({409, 500, 503})
RETRIES = 20

log = workload.log


# -------------------------------------------------------------------- the BMCs


@dataclass
class Fleet:
    """The virtual BMCs' process and how to reach each machine."""

    server: ManagedServer
    count: int
    ipmi_base_port: int
    redfish_port: int
    ipmi_address_per_machine: bool
    redfish_port_per_machine: bool

    @staticmethod
    def name(index: int) -> str:
        return f"node-{index}"

    def driver_info(self, protocol: str, index: int) -> dict[str, Any]:
        """Ironic's driver_info keys, as ``metalcast lab bmc`` lays the BMCs out."""
        if protocol == "ipmi":
            last = 1 + index if self.ipmi_address_per_machine else 1
            address = f"127.{(last >> 16) & 0xFF}.{(last >> 8) & 0xFF}.{last & 0xFF}"
            return {
                "ipmi_address": address,
                "ipmi_port": self.ipmi_base_port + index,
                "ipmi_username": USERNAME,
                "ipmi_password": PASSWORD,
            }
        port = self.redfish_port + (index if self.redfish_port_per_machine else 0)
        return {
            "redfish_address": f"http://{LOOPBACK}:{port}",
            "redfish_system_id": f"/redfish/v1/Systems/{self.name(index)}",
            "redfish_username": USERNAME,
            "redfish_password": PASSWORD,
        }

    def power(self) -> dict[str, str]:
        """Every machine's real power state ("on"/"off") by name."""
        return self._call("GET", "/power")

    def toggle(self) -> dict[str, str]:
        """Toggle every machine's power; return the new states."""
        return self._call("POST", "/power/toggle")

    def _call(self, method: str, path: str) -> dict[str, str]:
        response = httpx.request(method, self.server.base_url + path, timeout=60)
        response.raise_for_status()
        states: dict[str, str] = response.json()
        return states


def start_fleet(args: argparse.Namespace, work_dir: Path) -> Fleet:
    """Start ``metalcast lab bmc`` in its own process; wait until it serves."""
    control = free_port()
    command = [part.format(root=REPO_ROOT) for part in args.lab_cmd.split()]
    command += ["--count", str(args.nodes), "--ipmi", "--redfish", "--prefix", "node"]
    command += ["--base-port", str(args.ipmi_base_port), "--redfish-port", str(args.redfish_port)]
    command += ["--control-port", str(control)]
    if not args.shared_ipmi_address:
        command.append("--ipmi-address-per-machine")
    if args.redfish_port_per_machine:
        command.append("--redfish-port-per-machine")
    log(f"starting {args.nodes} machines' BMCs: {' '.join(command)}")
    server = launch(
        "bmcs", command, base_url=f"http://{LOOPBACK}:{control}", log_path=work_dir / "bmcs.log"
    )
    fleet = Fleet(
        server,
        count=args.nodes,
        ipmi_base_port=args.ipmi_base_port,
        redfish_port=args.redfish_port,
        ipmi_address_per_machine=not args.shared_ipmi_address,
        redfish_port_per_machine=args.redfish_port_per_machine,
    )
    try:
        _wait_serving(server, timeout=args.ready_timeout)
    except BaseException:
        server.stop()
        raise
    return fleet


def _wait_serving(server: ManagedServer, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the BMCs' process exited: {tail}")
        if "Serving " in server.log_path.read_text(errors="replace")[-500:]:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the BMCs did not serve within {timeout:.0f} s")


# -------------------------------------------------------------------- servers


def start_server(
    target: str, state_dir: Path, args: argparse.Namespace, *, interval: int, workers: int
) -> tuple[ManagedServer, Path]:
    """Start ``target`` on ``state_dir`` with these sync settings; return it and its log."""
    port = free_port()
    if target == "ironic":
        options = ironic_env.PowerSyncOptions(interval=interval, workers=workers)
        server = ironic_env.start(state_dir, port, timeout=args.ready_timeout, power_sync=options)
        return server, state_dir / "ironic.log"
    env = {
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": str(interval),
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_WORKERS": str(workers),
    }
    server = compare.start_metalcast(
        args.metalcast_cmd, state_dir, port=port, timeout=args.ready_timeout, env=env
    )
    return server, state_dir / "metalcast.log"


class Api:
    """The few /v1 calls the benchmark makes, with ``clients`` keep-alive clients."""

    def __init__(self, base_url: str, *, clients: int) -> None:
        settings = workload.Settings(base_url=base_url, clients=clients, request_timeout=300)
        self._clients = workload.Clients(settings)
        self._pool = ThreadPoolExecutor(clients)
        self.retries = 0  # requests tried again (see RETRY_STATUSES)

    def close(self) -> None:
        self._pool.shutdown()
        self._clients.close()

    def create_nodes(self, fleet: Fleet, protocol: str) -> dict[str, str]:
        """Enrol a node per machine; return uuid by name.  Raises RuntimeError."""

        def create(index: int) -> tuple[str, str]:
            name = fleet.name(index)
            body = {
                "name": name,
                "driver": protocol,
                "driver_info": fleet.driver_info(protocol, index),
            }
            response = self._clients.get().post("/v1/nodes", json=body)
            if response.status_code != 201:
                raise RuntimeError(workload.describe(response))
            return name, str(response.json()["uuid"])

        return dict(self._pool.map(create, range(fleet.count)))

    def manage(self, uuid: str) -> None:
        """Ask for ``manage``.  Raises RuntimeError."""
        self._request("PUT", f"/v1/nodes/{uuid}/states/provision", json={"target": "manage"})

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request, tried again while it gets a RETRY_STATUSES answer.
        Raises RuntimeError on any other failure, or when the tries run out."""
        for _ in range(RETRIES):
            response = self._clients.get().request(method, url, **kwargs)
            if response.is_success:
                return response
            if response.status_code not in RETRY_STATUSES:
                break
            self.retries += 1
            time.sleep(1.0)
        raise RuntimeError(workload.describe(response))

    def manage_all(self, uuids: Sequence[str], *, window: int, poll: float) -> None:
        """Move every node to manageable, at most ``window`` verifying at once.

        Raises:
            RuntimeError: a node did not become manageable.
        """
        waiting, pending, failed = list(uuids), set[str](), []
        while waiting or pending:
            batch, waiting = waiting[: window - len(pending)], waiting[window - len(pending) :]
            list(self._pool.map(self.manage, batch))
            pending.update(batch)
            time.sleep(poll)
            for node in self.nodes().values():
                if node["uuid"] in pending and not node["target_provision_state"]:
                    pending.discard(node["uuid"])
                    if node["provision_state"] != "manageable":
                        failed.append(f"{node['name']}: {node['last_error']}")
        if failed:
            raise RuntimeError(f"{len(failed)} node(s) failed verification: {failed[:3]}")

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node (a few fields), by name, following ``next`` links."""
        url: str | None = f"/v1/nodes?fields={NODE_FIELDS}&limit=1000"
        out: dict[str, dict[str, Any]] = {}
        while url:
            body = self._request("GET", url).json()
            out.update((n["name"], n) for n in body["nodes"])
            url = body.get("next")
        return out


def mismatches(api: Api, fleet: Fleet) -> list[str]:
    """Nodes whose recorded power state is not their machine's, as "name: recorded/real"."""
    truth = fleet.power()
    nodes = api.nodes()
    wrong = [
        f"{name}: {nodes.get(name, {}).get('power_state')}/{state}"
        for name, state in truth.items()
        if nodes.get(name, {}).get("power_state") != API_POWER[state]
    ]
    return wrong


# -------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """One server, protocol and worker count: the passes seen and the checks."""

    target: str
    protocol: str
    workers: int
    nodes: int
    first_pass: SyncPass | None = None
    steady_pass: SyncPass | None = None
    flip_pass: SyncPass | None = None
    after_pass: SyncPass | None = None
    flips: int = 0
    flip_lead_s: float | None = None  # flip pass start minus flip time
    cpu_s: dict[str, float] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    error: str | None = None

    @property
    def valid(self) -> bool:
        return (
            self.error is None
            and self.flip_pass is not None
            and self.flip_pass.changed == self.nodes
            and self.flip_pass.failed == 0
            and not self.mismatched
        )


def cpu_seconds(root: int) -> float:
    """User + system CPU of ``root``'s process tree, reaped children included."""
    total = 0
    for pid in descendants(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


class Profiler:
    """py-spy recording of some processes, raw collapsed stacks (``--py-spy DIR``)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, label: str, pids: dict[str, int]) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        py_spy = REPO_ROOT / ".venv" / "bin" / "py-spy"
        for name, pid in pids.items():
            out = self.directory / f"{label}-{name}.txt"
            command = [str(py_spy), "record", "--format", "raw", "-r", "100", "--nonblocking", "-s"]
            command += ["-p", str(pid), "-o", str(out)]
            self._running.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for process in self._running:
            process.send_signal(signal.SIGINT)
        for process in self._running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self._running.clear()


def flip_and_measure(
    m: Measurement, passes: PassLog, fleet: Fleet, args: argparse.Namespace, pids: dict[str, int]
) -> None:
    """Toggle every machine right after a pass ends (the caller just saw one end);
    the next pass is the result.  Tried again (up to --flip-tries) if that pass did
    not see every node changed (the flip came after it had read some BMCs)."""
    profiler = Profiler(args.py_spy)
    for attempt in range(1, args.flip_tries + 1):
        if passes.pending():  # more passes ended meanwhile: wait for the next end
            passes.skip_to_now()
            passes.wait_next(args.pass_timeout)
        profiler.start(f"{m.target}-{m.protocol}-w{m.workers}", pids)
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        fleet.toggle()
        flipped = time.time()
        m.flips, m.flip_pass = attempt, passes.wait_next(args.pass_timeout)
        m.cpu_s = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
        profiler.stop()
        m.flip_lead_s = m.flip_pass.started - flipped
        if m.flip_pass.changed == m.nodes:
            return
        log(f"  the pass after the flip changed {m.flip_pass.changed} of {m.nodes}; again")


def measure(
    target: str,
    protocol: str,
    workers: int,
    *,
    state_dir: Path,
    fleet: Fleet,
    args: argparse.Namespace,
) -> Measurement:
    """Restart ``target`` with the sync on; measure one pass after a flip of every machine."""
    m = Measurement(target, protocol, workers, fleet.count, load_before=os.getloadavg())
    log_path = state_dir / ("ironic.log" if target == "ironic" else "metalcast.log")
    passes = PassLog(log_path, target)
    server, _ = start_server(target, state_dir, args, interval=args.interval, workers=workers)
    api = Api(server.base_url, clients=args.clients)
    try:
        m.first_pass = passes.wait_next(args.pass_timeout)
        m.steady_pass = passes.wait_next(args.pass_timeout)
        pids = {target: server.pid, "bmcs": fleet.server.pid}
        flip_and_measure(m, passes, fleet, args, pids)
        if args.after_pass:
            m.after_pass = passes.wait_next(args.pass_timeout)
        m.mismatched = mismatches(api, fleet)
    except (TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    finally:
        api.close()
        server.stop()
        m.load_after = os.getloadavg()
    return m


def enrol(
    target: str, protocol: str, *, state_dir: Path, fleet: Fleet, args: argparse.Namespace
) -> None:
    """Start ``target`` with the sync off, enrol and manage a node per machine, stop it.
    Raises RuntimeError if a node cannot be enrolled or verified."""
    server, _ = start_server(target, state_dir, args, interval=0, workers=8)
    api = Api(server.base_url, clients=args.clients)
    try:
        started = time.monotonic()
        uuids = api.create_nodes(fleet, protocol)
        created = time.monotonic()
        api.manage_all(list(uuids.values()), window=args.manage_window, poll=args.poll)
        log(
            f"  {len(uuids)} {protocol} nodes enrolled in {created - started:.0f} s, "
            f"manageable {time.monotonic() - created:.0f} s later ({api.retries} requests "
            "tried again)"
        )
        wrong = mismatches(api, fleet)
        if wrong:
            raise RuntimeError(f"after verification {len(wrong)} node(s) differ: {wrong[:3]}")
    finally:
        api.close()
        server.stop()


def run_phase(
    target: str, protocol: str, fleet: Fleet, args: argparse.Namespace
) -> list[Measurement]:
    """Enrol ``fleet`` in a fresh ``target`` over ``protocol``; measure each worker count."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"bench-sync-{target}-{protocol}-"))
    log(f"{target} / {protocol}: state in {state_dir}")
    results: list[Measurement] = []
    try:
        enrol(target, protocol, state_dir=state_dir, fleet=fleet, args=args)
        for workers in args.workers:
            m = measure(target, protocol, workers, state_dir=state_dir, fleet=fleet, args=args)
            log(f"  {describe(m)}")
            results.append(m)
    except (OSError, RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        log(f"  {target} / {protocol} failed: {exc}")
        results.append(
            Measurement(target, protocol, 0, fleet.count, error=f"{type(exc).__name__}: {exc}")
        )
    if args.keep_state or any(not m.valid for m in results):
        log(f"  state and logs kept in {state_dir}")
    else:
        shutil.rmtree(state_dir, ignore_errors=True)
    return results


# -------------------------------------------------------------------- report


def describe(m: Measurement) -> str:
    if m.error:
        return f"{m.target} {m.protocol} workers {m.workers}: ERROR {m.error}"
    flip = m.flip_pass
    assert flip is not None
    checks = "ok" if m.valid else f"INVALID ({len(m.mismatched)} mismatched)"
    return (
        f"{m.target} {m.protocol} workers {m.workers}: flip pass {flip.seconds:.2f} s "
        f"({flip.detail}); first {_secs(m.first_pass)}, steady {_secs(m.steady_pass)}, "
        f"after {_secs(m.after_pass)}; cpu {m.cpu_s}; flips {m.flips}; check {checks}"
    )


def _secs(p: SyncPass | None) -> str:
    return "-" if p is None else f"{p.seconds:.2f} s"


def _cell(p: SyncPass | None) -> str:
    return "n/a" if p is None else f"{p.seconds:.2f}"


def report_rows(results: Sequence[Measurement]) -> Iterator[list[str]]:
    """One row per protocol and worker count: both servers' passes and the ratio."""
    keys = sorted({(m.protocol, m.workers) for m in results if not m.error})
    for protocol, workers in keys:
        by = {m.target: m for m in results if (m.protocol, m.workers) == (protocol, workers)}
        mc, ir = by.get("metalcast"), by.get("ironic")
        flip = [x.flip_pass if x and x.valid else None for x in (mc, ir)]
        ratio = (
            f"{flip[1].seconds / flip[0].seconds:.1f}x"
            if flip[0] is not None and flip[1] is not None and flip[0].seconds
            else "n/a"
        )
        yield [
            f"{protocol}, {workers} workers",
            _cell(flip[0]),
            _cell(flip[1]),
            ratio,
            _cell(mc.steady_pass if mc else None),
            _cell(ir.steady_pass if ir else None),
            _cell(mc.first_pass if mc else None),
            _cell(ir.first_pass if ir else None),
        ]


HEADER = [
    "protocol",
    "metalcast pass (s)",
    "Ironic pass (s)",
    "metalcast faster by",
    "metalcast no-change (s)",
    "Ironic no-change (s)",
    "metalcast first (s)",
    "Ironic first (s)",
]


def report(results: Sequence[Measurement], nodes: int) -> str:
    body = list(report_rows(results))
    return "\n".join(
        [
            compare.plain_table(HEADER, body),
            "",
            f"Markdown ({nodes:,} nodes per protocol; pass = the pass after every machine's "
            "power was toggled):",
            "",
            compare.markdown_table(HEADER, body),
        ]
    )


def load_kept(path: Path, only: str | None) -> list[Measurement]:
    """With --only, the other server's measurements from an earlier --json file."""
    if only is None or not path.exists():
        return []
    items = json.loads(path.read_text()).get("measurements", [])
    return [from_json(item) for item in items if item["target"] != only]


def from_json(item: dict[str, Any]) -> Measurement:
    """A Measurement as :func:`dataclasses.asdict` wrote it."""
    values = dict(item)
    for key, value in item.items():
        if key.endswith("_pass"):
            values[key] = None if value is None else SyncPass(**value)
        elif key.startswith("load_"):
            values[key] = tuple(value)
    return Measurement(**values)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Power-state sync pass: metalcast vs Ironic")
    p.add_argument("--nodes", type=int, default=1000, help="machines, nodes per protocol")
    p.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    p.add_argument(
        "--only",
        choices=TARGETS,
        help="measure one server (the other's results are kept from --json)",
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[8],
        help="sync workers, each value measured (both servers' default: 8)",
    )
    p.add_argument("--interval", type=int, default=1, help="sync interval while measuring, s")
    p.add_argument("--clients", type=int, default=8, help="concurrent API clients to enrol")
    p.add_argument("--manage-window", type=int, default=100, help="nodes verifying at once")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between state polls")
    p.add_argument("--flip-tries", type=int, default=3)
    p.add_argument(
        "--after-pass", action="store_true", help="also wait for the pass after the flip pass"
    )
    p.add_argument("--pass-timeout", type=float, default=1800.0, help="longest wait for a pass")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--ipmi-base-port", type=int, default=23000)
    p.add_argument("--redfish-port", type=int, default=22000)
    p.add_argument(
        "--shared-ipmi-address",
        action="store_true",
        help="all IPMI BMCs on 127.0.0.1 (default: 127.0.0.1 + i each)",
    )
    p.add_argument("--redfish-port-per-machine", action="store_true")
    p.add_argument("--metalcast-cmd", default=compare.DEFAULT_METALCAST_CMD)
    p.add_argument("--lab-cmd", default=DEFAULT_LAB_CMD, help="the BMCs' command; {root}")
    p.add_argument("--py-spy", type=Path, help="record the flip pass with py-spy into DIR")
    p.add_argument("--keep-state", action="store_true")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "power_sync.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    before = uptime()
    log(f"uptime before: {before}")
    targets = [t for t in TARGETS if args.only in (None, t)]
    work_dir = Path(tempfile.mkdtemp(prefix="bench-sync-bmcs-"))
    fleet = start_fleet(args, work_dir)
    results = load_kept(args.json, args.only)
    try:
        for protocol in args.protocols:
            for target in targets:
                results += run_phase(target, protocol, fleet, args)
    finally:
        fleet.server.stop()
    after = uptime()
    log(f"uptime after: {after}")
    print(report(results, args.nodes))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "nodes": args.nodes,
        "uptime_before": before,
        "uptime_after": after,
        "measurements": [asdict(m) for m in results],
    }
    args.json.write_text(json.dumps(data, indent=2))
    if all(m.valid for m in results):
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if all(m.valid for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
