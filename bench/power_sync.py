#!/usr/bin/env python3
"""Power-state sync at scale: one full sync pass over N virtual BMCs, metalcast vs Ironic.

    bench/run --power-sync                         # 1,000 IPMI + 1,000 Redfish BMCs, both
    bench/run --power-sync --nodes 50              # quick check
    bench/run --power-sync --only metalcast --protocols ipmi --workers 8 32
    bench/run --power-sync --only ironic:redfish   # one server and protocol

1. The virtual BMCs run in their own process: ``metalcast lab bmc --count N --ipmi
   --redfish --control-port P`` (IPMI: one UDP port and, by default, one loopback
   address per machine, 127.0.0.1 + i; Redfish: every machine a ComputerSystem behind
   one port).  Its power-control endpoint flips every machine's power out of band
   with one request and reads back every machine's real power state.
2. For each server and protocol, with a fresh state dir: start the server with the
   sync off, enrol N nodes of the ``ipmi`` (or ``redfish``) hardware type pointing at
   the BMCs, ``manage`` them (verification reads each BMC; metalcast: ``--clients``
   requests and ``--manage-window`` nodes at a time, Ironic: ``--ironic-manage-requests``
   and ``--ironic-manage-window``, as its SQLite backend needs; busy answers are tried
   again, see ManagePolicy) until every node is ``manageable``; stop it.
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
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
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
#: a request that gets one of these answers is tried again after a backoff (see
#: retry_reason): the node is locked by a task (409 NodeLocked), the server is busy
#: (503), or Ironic's SQLite backend timed out on its lock (a 500 "database is
#: locked").  Any other 500 is a real error, not tried again.
RETRIES = 20
BACKOFF_S = (0.5, 8.0)  # first and longest wait between tries; doubles, plus jitter
PROGRESS_S = 60.0  # how often managing logs its progress

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
        # the sensor collection would read the same BMCs during the passes measured;
        # Ironic's send_sensor_data is off by default, so both measure the sync alone
        "METALCAST_SENSORS__ENABLED": "false",
    }
    server = compare.start_metalcast(
        args.metalcast_cmd, state_dir, port=port, timeout=args.ready_timeout, env=env
    )
    return server, state_dir / "metalcast.log"


def retry_reason(response: httpx.Response) -> str | None:
    """Why ``response`` is worth trying again, or None if it is not."""
    status = response.status_code
    if status == 409:
        return "409 NodeLocked" if "NodeLocked" in response.text else "409"
    if status == 500 and "database is locked" in response.text:
        return "500 database is locked"
    if status == 503:
        return "503"
    return None


@dataclass(frozen=True)
class ManagePolicy:
    """How the benchmark brings its nodes to ``manageable`` on one server."""

    requests: int  # manage requests in flight at once
    window: int  # nodes verifying at once
    timeout: float  # seconds for every node to be manageable
    reverify: int  # times a node whose verification failed is asked to manage again


@dataclass
class ManageStats:
    """What enrolling and managing took: in each measurement's JSON."""

    nodes: int = 0
    enrol_s: float = 0.0
    manage_s: float = 0.0
    requests: int = 0
    window: int = 0
    retried: dict[str, int] = field(default_factory=dict)  # by reason (retry_reason)
    reverified: dict[str, str] = field(default_factory=dict)  # name: the failure's last_error


class ManageError(RuntimeError):
    """Some nodes did not become manageable."""


class Api:
    """The few /v1 calls the benchmark makes, with ``clients`` keep-alive clients."""

    def __init__(self, base_url: str, *, clients: int, api_version: str = "1.31") -> None:
        settings = workload.Settings(
            base_url=base_url, clients=clients, request_timeout=300, api_version=api_version
        )
        self._clients = workload.Clients(settings)
        self._pool = ThreadPoolExecutor(clients)
        self.retried: Counter[str] = Counter()  # requests tried again, by retry_reason

    def close(self) -> None:
        self._pool.shutdown()
        self._clients.close()

    def create_nodes(
        self, fleet: Fleet, protocol: str, fields: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """Enrol a node per machine (with ``fields`` too); return uuid by name.
        Raises RuntimeError."""

        def create(index: int) -> tuple[str, str]:
            name = fleet.name(index)
            body = {
                **(fields or {}),
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
        """Ask for ``manage``, again after a backoff while the answer is worth it
        (retry_reason); done as soon as the node has left ``enroll`` (a try that
        failed may still have started verification).  Raises RuntimeError."""
        url = f"/v1/nodes/{uuid}/states/provision"
        delay = BACKOFF_S[0]
        for _ in range(RETRIES):
            response = self._clients.get().put(url, json={"target": "manage"})
            if response.is_success:
                return
            reason = retry_reason(response)
            if reason is None:
                raise RuntimeError(workload.describe(response))
            self.retried[reason] += 1
            time.sleep(delay + random.uniform(0, delay))
            delay = min(2 * delay, BACKOFF_S[1])
            node = self._request("GET", f"/v1/nodes/{uuid}?fields={NODE_FIELDS}").json()
            if node["provision_state"] != "enroll" or node["target_provision_state"]:
                return
        raise RuntimeError(f"after {RETRIES} tries: {workload.describe(response)}")

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request, tried again after a backoff while retry_reason says so.
        Raises RuntimeError on any other failure, or when the tries run out."""
        delay = BACKOFF_S[0]
        for _ in range(RETRIES):
            response = self._clients.get().request(method, url, **kwargs)
            if response.is_success:
                return response
            reason = retry_reason(response)
            if reason is None:
                break
            self.retried[reason] += 1
            time.sleep(delay + random.uniform(0, delay))
            delay = min(2 * delay, BACKOFF_S[1])
        raise RuntimeError(workload.describe(response))

    def manage_all(
        self, uuids: dict[str, str], policy: ManagePolicy, *, poll: float
    ) -> dict[str, str]:
        """Move every node (uuid by name) to manageable: at most ``policy.requests``
        manage requests in flight and ``policy.window`` nodes verifying at once; a
        node whose verification failed is asked again up to ``policy.reverify``
        times.  Returns those failures' last_error by node name.

        Raises:
            ManageError: a node did not become manageable (each named, with its
                state and last_error), or not within ``policy.timeout``.
        """
        names = {uuid: name for name, uuid in uuids.items()}
        waiting, pending = deque(uuids.values()), set[str]()
        tries: Counter[str] = Counter()
        reverified: dict[str, str] = {}
        failed: dict[str, dict[str, Any]] = {}
        last: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + policy.timeout
        progress = time.monotonic() + PROGRESS_S
        with ThreadPoolExecutor(policy.requests) as requests:
            while waiting or pending:
                if time.monotonic() > progress:
                    progress += PROGRESS_S
                    done = len(uuids) - len(waiting) - len(pending) - len(failed)
                    log(f"  {done} manageable, {len(pending)} verifying, {len(waiting)} to go")
                if time.monotonic() > deadline:
                    stuck = [last.get(names[u], {"name": names[u]}) for u in pending]
                    stuck += [{"name": names[u], "provision_state": "enroll"} for u in waiting]
                    raise ManageError(
                        f"{len(stuck)} node(s) not manageable within {policy.timeout:.0f} s: "
                        + _node_states(stuck + list(failed.values()))
                    )
                room = min(len(waiting), policy.window - len(pending))
                batch = [waiting.popleft() for _ in range(room)]
                tries.update(batch)
                list(requests.map(self.manage, batch))
                pending.update(batch)
                time.sleep(poll)
                # the nodes verifying only: reading all of them at every poll made
                # managing 10,000 quadratic (22 minutes in bench/sync_ring.py)
                last = dict(requests.map(self.node, list(pending)))
                for node in last.values():
                    uuid = node["uuid"]
                    if uuid not in pending or node["target_provision_state"]:
                        continue
                    if node["provision_state"] == "manageable":
                        pending.discard(uuid)
                    elif node["provision_state"] != "enroll" or not node["last_error"]:
                        continue  # verifying, or not started yet
                    elif tries[uuid] <= policy.reverify:
                        pending.discard(uuid)
                        reverified[node["name"]] = str(node["last_error"])
                        log(f"  {node['name']} failed verification ({node['last_error']}); again")
                        waiting.append(uuid)
                    else:
                        pending.discard(uuid)
                        failed[uuid] = node
        wrong = [n for n in self.nodes().values() if n["provision_state"] != "manageable"]
        if failed or wrong:
            bad = {n["uuid"]: n for n in [*failed.values(), *wrong]}
            raise ManageError(
                f"{len(bad)} node(s) not manageable: {_node_states(list(bad.values()))}"
            )
        return reverified

    def node(self, uuid: str) -> tuple[str, dict[str, Any]]:
        """One node (the fields of :meth:`nodes`) with its name."""
        node: dict[str, Any] = self._request("GET", f"/v1/nodes/{uuid}?fields={NODE_FIELDS}").json()
        return node["name"], node

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node (a few fields), by name, following ``next`` links."""
        url: str | None = f"/v1/nodes?fields={NODE_FIELDS}&limit=1000"
        out: dict[str, dict[str, Any]] = {}
        while url:
            body = self._request("GET", url).json()
            out.update((n["name"], n) for n in body["nodes"])
            url = body.get("next")
        return out


def _node_states(nodes: Sequence[dict[str, Any]], limit: int = 10) -> str:
    """'name: state (last_error: ...)' for the first ``limit`` nodes, and how many more."""
    shown = [
        f"{n.get('name')}: {n.get('provision_state')}"
        + (f" -> {n['target_provision_state']}" if n.get("target_provision_state") else "")
        + f" (last_error: {n.get('last_error')})"
        for n in nodes[:limit]
    ]
    more = f"; and {len(nodes) - limit} more" if len(nodes) > limit else ""
    return "; ".join(shown) + more


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
    #: when it was measured, and ``uptime`` at the start and end of its run (a
    #: measurement kept from an earlier run with --only keeps its own)
    date: str = ""
    uptime_before: str = ""
    uptime_after: str = ""
    manage: ManageStats | None = None  # how the nodes were enrolled and managed

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
    m.date = time.strftime("%Y-%m-%dT%H:%M:%S%z")
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


class ManageFailed(RuntimeError):
    """Enrolling or managing failed; ``stats`` says how far it got."""

    def __init__(self, message: str, stats: ManageStats) -> None:
        super().__init__(message)
        self.stats = stats


def manage_policy(target: str, args: argparse.Namespace) -> ManagePolicy:
    """metalcast: ``--clients`` requests and ``--manage-window`` nodes at once;
    Ironic: ``--ironic-manage-requests`` and ``--ironic-manage-window`` (its SQLite
    backend answers 500 "database is locked" when many manage at once)."""
    if target == "ironic":
        requests, window = args.ironic_manage_requests, args.ironic_manage_window
    else:
        requests, window = args.clients, args.manage_window
    return ManagePolicy(requests, window, timeout=args.manage_timeout, reverify=args.reverify)


def enrol(
    target: str, protocol: str, *, state_dir: Path, fleet: Fleet, args: argparse.Namespace
) -> ManageStats:
    """Start ``target`` with the sync off, enrol and manage a node per machine, stop it.
    Raises RuntimeError if a node cannot be enrolled or verified."""
    policy = manage_policy(target, args)
    stats = ManageStats(fleet.count, requests=policy.requests, window=policy.window)
    server, _ = start_server(target, state_dir, args, interval=0, workers=8)
    api = Api(server.base_url, clients=args.clients)
    try:
        started = time.monotonic()
        uuids = api.create_nodes(fleet, protocol)
        created = time.monotonic()
        stats.enrol_s = round(created - started, 1)
        log(
            f"  {len(uuids)} {protocol} nodes enrolled in {stats.enrol_s:.0f} s; managing "
            f"{policy.requests} request(s) and {policy.window} node(s) at a time"
        )
        stats.reverified = api.manage_all(uuids, policy, poll=args.poll)
        stats.manage_s = round(time.monotonic() - created, 1)
        stats.retried = dict(api.retried)
        log(
            f"  manageable {stats.manage_s:.0f} s later; requests tried again: "
            f"{stats.retried or 'none'}; verified again: {len(stats.reverified)}"
        )
        wrong = mismatches(api, fleet)
        if wrong:
            raise RuntimeError(f"after verification {len(wrong)} node(s) differ: {wrong[:3]}")
    except RuntimeError as exc:
        stats.retried = dict(api.retried)
        raise ManageFailed(str(exc), stats) from exc
    finally:
        api.close()
        server.stop()
    return stats


def run_phase(
    target: str, protocol: str, fleet: Fleet, args: argparse.Namespace
) -> list[Measurement]:
    """Enrol ``fleet`` in a fresh ``target`` over ``protocol``; measure each worker count."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"bench-sync-{target}-{protocol}-"))
    log(f"{target} / {protocol}: state in {state_dir}")
    results: list[Measurement] = []
    stats: ManageStats | None = None
    try:
        stats = enrol(target, protocol, state_dir=state_dir, fleet=fleet, args=args)
        for workers in args.workers:
            m = measure(target, protocol, workers, state_dir=state_dir, fleet=fleet, args=args)
            m.manage = stats
            log(f"  {describe(m)}")
            results.append(m)
    except (OSError, RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        log(f"  {target} / {protocol} failed: {exc}")
        failed = Measurement(target, protocol, 0, fleet.count, error=f"{type(exc).__name__}: {exc}")
        failed.date = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        failed.manage = exc.stats if isinstance(exc, ManageFailed) else stats
        results.append(failed)
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
    keys = sorted({(m.protocol, m.nodes, m.workers) for m in results if not m.error})
    for protocol, nodes, workers in keys:
        by = {
            m.target: m
            for m in results
            if (m.protocol, m.nodes, m.workers) == (protocol, nodes, workers)
        }
        mc, ir = by.get("metalcast"), by.get("ironic")
        flip = [x.flip_pass if x and x.valid else None for x in (mc, ir)]
        ratio = (
            f"{flip[1].seconds / flip[0].seconds:.1f}x"
            if flip[0] is not None and flip[1] is not None and flip[0].seconds
            else "n/a"
        )
        yield [
            f"{protocol}, {nodes:,} nodes, {workers} workers",
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


def report(results: Sequence[Measurement]) -> str:
    body = list(report_rows(results))
    return "\n".join(
        [
            compare.plain_table(HEADER, body),
            "",
            "Markdown (pass = the pass after every machine's power was toggled):",
            "",
            compare.markdown_table(HEADER, body),
        ]
    )


def load_kept(path: Path, nodes: int, measured: set[tuple[str, str]]) -> list[Measurement]:
    """With --only, the measurements of an earlier --json file that this run does not
    repeat (same server, protocol and --nodes), each with its own node count, date and
    uptime.  A failed one of a server and protocol measured now is dropped."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    kept = []
    for item in data.get("measurements", []):
        pair = (item["target"], item["protocol"])
        if pair in measured and (item["nodes"] == nodes or item["error"]):
            continue
        m = from_json(item)
        m.uptime_before = m.uptime_before or data.get("uptime_before", "")
        m.uptime_after = m.uptime_after or data.get("uptime_after", "")
        kept.append(m)
    return kept


def from_json(item: dict[str, Any]) -> Measurement:
    """A Measurement as :func:`dataclasses.asdict` wrote it."""
    values = dict(item)
    for key, value in item.items():
        if key.endswith("_pass"):
            values[key] = None if value is None else SyncPass(**value)
        elif key.startswith("load_"):
            values[key] = tuple(value)
        elif key == "manage" and value is not None:
            values[key] = ManageStats(**value)
    return Measurement(**values)


def selection(only: Sequence[str] | None, protocols: Sequence[str]) -> list[tuple[str, str]]:
    """The (target, protocol) pairs to measure, in run order: for each protocol,
    metalcast then Ironic, as ``--only`` (TARGET or TARGET:PROTOCOL) allows."""
    pairs = []
    for protocol in protocols:
        for target in TARGETS:
            if only is None or target in only or f"{target}:{protocol}" in only:
                pairs.append((target, protocol))
    return pairs


def only_value(text: str) -> str:
    """argparse type of ``--only``: metalcast, ironic, or one of them:ipmi|redfish."""
    target, _, protocol = text.partition(":")
    if target not in TARGETS or (protocol and protocol not in PROTOCOLS):
        choices = [*TARGETS, *(f"{t}:{p}" for t in TARGETS for p in PROTOCOLS)]
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(choices)}")
    return text


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
        nargs="+",
        type=only_value,
        metavar="TARGET[:PROTOCOL]",
        help="measure only these: metalcast, ironic, or e.g. ironic:redfish (the other "
        "rows are kept from --json)",
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
    p.add_argument(
        "--manage-window", type=int, default=100, help="metalcast: nodes verifying at once"
    )
    p.add_argument(
        "--ironic-manage-requests",
        type=int,
        default=4,
        help="Ironic: manage requests in flight at once",
    )
    p.add_argument(
        "--ironic-manage-window", type=int, default=20, help="Ironic: nodes verifying at once"
    )
    p.add_argument(
        "--manage-timeout", type=float, default=10800.0, help="s for every node to be manageable"
    )
    p.add_argument(
        "--reverify",
        type=int,
        default=1,
        help="times a node whose verification failed is asked to manage again",
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between state polls")
    p.add_argument("--flip-tries", type=int, default=3)
    p.add_argument(
        "--after-pass", action="store_true", help="also wait for the pass after the flip pass"
    )
    p.add_argument("--pass-timeout", type=float, default=7200.0, help="longest wait for a pass")
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
    pairs = selection(args.only, args.protocols)
    kept = load_kept(args.json, args.nodes, set(pairs)) if args.only else []
    work_dir = Path(tempfile.mkdtemp(prefix="bench-sync-bmcs-"))
    fleet = start_fleet(args, work_dir)
    measured: list[Measurement] = []
    try:
        for target, protocol in pairs:
            measured += run_phase(target, protocol, fleet, args)
            log(f"uptime: {uptime()}")
    finally:
        fleet.server.stop()
    after = uptime()
    log(f"uptime after: {after}")
    for m in measured:
        m.uptime_before, m.uptime_after = before, after
    results = sorted(
        kept + measured,
        key=lambda m: (PROTOCOLS.index(m.protocol), -m.nodes, TARGETS.index(m.target), m.workers),
    )
    print(report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "nodes": args.nodes,
        "command": " ".join(["bench/power_sync.py", *(argv if argv is not None else sys.argv[1:])]),
        "uptime_before": before,
        "uptime_after": after,
        "measurements": [asdict(m) for m in results],
    }
    args.json.write_text(json.dumps(data, indent=2))
    if all(m.valid for m in measured):
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if all(m.valid for m in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
