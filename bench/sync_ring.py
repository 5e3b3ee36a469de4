#!/usr/bin/env python3
"""Power-state sync over many virtual BMCs split by the hash ring: three conductor
processes against one (issue 10, item 8).

    .venv/bin/python bench/sync_ring.py                     # 10,000 IPMI BMCs (~30 min)
    .venv/bin/python bench/sync_ring.py --protocol redfish  # 10,000 Redfish systems
    .venv/bin/python bench/sync_ring.py --nodes 300         # quick check (~2 min)

IPMI BMCs cost the lab CPU while idle (its event pump visits every socket), about
1.2 CPUs for 10,000; Redfish systems are served by one HTTP service and cost only
what they are asked.

1. ``metalcast lab bmc --count N --ipmi --ipmi-address-per-machine`` serves every
   BMC (UDP port ``--ipmi-base-port`` + i on 127.0.0.1 + i), as bench/power_sync.py
   does, from one process.
2. One ``metalcast api`` and ``--conductors`` ``metalcast conductor`` processes on a
   throwaway PostgreSQL (bench/deployments.py), the sync off: N ``ipmi`` nodes are
   enrolled and managed (verification reads each BMC).
3. The conductors are restarted one by one with a sync interval of ``--interval``
   (60 s, so that all have joined the ring before any first pass) and ``--workers``
   sync workers.  Once all are up, each conductor's passes are
   read from its own log ("power sync pass: N node(s) in S s"): the first pass that
   started after the last conductor joined (it logs in to the BMCs it now owns) and
   the ``--steady`` passes after it.  Nodes per conductor come from those lines.
4. Every conductor but ``c1`` is stopped (SIGTERM): c1 owns all N, and its passes
   are timed the same way (the first over all N, then steady ones).
5. Every node's recorded power state is compared with its machine's.

CPU seconds of each conductor and of the BMCs' process over the steady passes;
``uptime`` before and after each phase.  Markdown on stdout, ``--json``
(bench/results/sync_ring.json).  Exit status 1 on a failed read or a mismatch.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import deployments
import httpx
import power_sync
from deployments import Installation
from server import LOOPBACK, ManagedServer, free_port, launch
from sync_logs import PassLog, SyncPass
from workload import log

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
_NODES = re.compile(r"^(\d+) node\(s\)")


@dataclass
class PassRow:
    """One conductor's passes in one set-up."""

    conductor: str
    nodes: int
    first_s: float
    steady_s: list[float]
    failed: int
    cpu_s: float = 0.0

    @property
    def steady_median(self) -> float:
        return statistics.median(self.steady_s)


@dataclass
class Result:
    nodes: int
    workers: int
    interval: float
    protocol: str = "ipmi"
    enrol_s: float = 0.0
    manage_s: float = 0.0
    ring: list[PassRow] = field(default_factory=list)
    single: list[PassRow] = field(default_factory=list)
    bmc_cpu_s: dict[str, float] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)
    uptime: dict[str, str] = field(default_factory=dict)


def pass_nodes(p: SyncPass) -> int:
    match = _NODES.match(p.detail)
    return int(match[1]) if match else -1


class Fleets:
    """Several ``metalcast lab bmc`` processes of at most ``per_process`` IPMI BMCs
    each, seen as one fleet (what power_sync.Api and mismatches use of a Fleet).

    One process cannot serve more: pyghmi's I/O thread waits on its sockets with
    ``select.select``, which refuses a file descriptor of 1024 or more, so a process
    with more BMCs than that answers none (its log has "ValueError: filedescriptor
    out of range in select()").  Process k serves machines ``p<k>-node-<i>`` on
    127.<k+1>.0.1 + i, UDP port ``base_port`` + i.
    """

    def __init__(
        self, count: int, *, per_process: int, base_port: int, protocol: str = "ipmi"
    ) -> None:
        self.count, self.base_port, self.protocol = count, base_port, protocol
        # one Redfish service serves every system; IPMI needs a socket per BMC
        self.per_process = per_process if protocol == "ipmi" else count
        self.servers: list[ManagedServer] = []

    def start(self, work_dir: Path, *, timeout: float) -> None:
        for k in range(math.ceil(self.count / self.per_process)):
            count = min(self.per_process, self.count - k * self.per_process)
            control = free_port()
            command = [str(REPO_ROOT / ".venv" / "bin" / "metalcast"), "lab", "bmc"]
            command += ["--count", str(count), "--prefix", f"p{k}-node"]
            if self.protocol == "ipmi":
                command += ["--ipmi", "--no-redfish", "--ipmi-address-per-machine"]
                command += ["--address", f"127.{k + 1}.0.1", "--base-port", str(self.base_port)]
            else:
                command += ["--no-ipmi", "--redfish", "--redfish-port", str(self.base_port)]
            command += ["--control-port", str(control)]
            self.servers.append(
                launch(
                    f"bmcs{k}",
                    command,
                    base_url=f"http://{LOOPBACK}:{control}",
                    log_path=work_dir / f"bmcs{k}.log",
                )
            )
        log(f"{len(self.servers)} BMC processes for {self.count} machines: {' '.join(command)}")
        for server in self.servers:
            power_sync._wait_serving(server, timeout=timeout)

    def pids(self) -> dict[str, int]:
        return {f"bmcs{k}": s.pid for k, s in enumerate(self.servers)}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def name(self, index: int) -> str:
        return f"p{index // self.per_process}-node-{index % self.per_process}"

    def driver_info(self, protocol: str, index: int) -> dict[str, Any]:
        k, i = divmod(index, self.per_process)
        if protocol == "redfish":
            return {
                "redfish_address": f"http://{LOOPBACK}:{self.base_port}",
                "redfish_system_id": f"/redfish/v1/Systems/{self.name(index)}",
                "redfish_username": power_sync.USERNAME,
                "redfish_password": power_sync.PASSWORD,
            }
        return {
            "ipmi_address": str(ipaddress.ip_address(f"127.{k + 1}.0.1") + i),
            "ipmi_port": self.base_port + i,
            "ipmi_username": power_sync.USERNAME,
            "ipmi_password": power_sync.PASSWORD,
        }

    def power(self) -> dict[str, str]:
        states: dict[str, str] = {}
        for server in self.servers:
            response = httpx.get(server.base_url + "/power", timeout=60)
            response.raise_for_status()
            states.update(response.json())
        return states


def enrol(inst: Installation, fleet: Fleets, args: argparse.Namespace, r: Result) -> None:
    """Enrol and manage a node per machine through the API process."""
    # 1.86: firmware_interface (below)
    api = power_sync.Api(inst.api_urls[0], clients=args.clients, api_version="1.86")
    try:
        started = time.monotonic()
        # the lab's one Redfish service lists every system's firmware in its one
        # UpdateService, which each node's verification would read whole: quadratic
        # in the systems served, a cost of the lab, not of a BMC per machine
        fields = {"firmware_interface": "no-firmware"} if fleet.protocol == "redfish" else {}
        uuids = api.create_nodes(fleet, fleet.protocol, fields)  # type: ignore[arg-type]
        r.enrol_s = round(time.monotonic() - started, 1)
        log(f"{len(uuids)} nodes enrolled in {r.enrol_s} s; managing")
        policy = power_sync.ManagePolicy(
            args.clients, args.manage_window, timeout=args.manage_timeout, reverify=1
        )
        api.manage_all(uuids, policy, poll=1.0)
        r.manage_s = round(time.monotonic() - started - r.enrol_s, 1)
        log(f"manageable after {r.manage_s} s; retried {dict(api.retried) or 'none'}")
    finally:
        api.close()


def restart_with_sync(inst: Installation, args: argparse.Namespace) -> dict[str, PassLog]:
    """Restart every conductor with the sync on; a log follower per conductor."""
    deploy = inst.deployment
    assert deploy is not None
    deploy.env["METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL"] = str(args.interval)
    deploy.env["METALCAST_CONDUCTOR__SYNC_POWER_STATE_WORKERS"] = str(args.workers)
    conductors = [n for n, p in deploy.processes.items() if p.kind == "conductor"]
    for name in conductors:
        deploy.stop(name)
    followers = {n: PassLog(deploy.processes[n].stderr, "metalcast") for n in conductors}
    for name in conductors:
        deploy.start(name)
        popen = deploy.processes[name].popen
        assert popen is not None
        inst.pids[name] = popen.pid
    deploy.wait_conductors(set(conductors))
    return followers


def measure_passes(
    inst: Installation, followers: dict[str, PassLog], args: argparse.Namespace
) -> tuple[list[PassRow], float]:
    """Per conductor: the first pass started from now, then ``--steady`` more; the
    BMCs' CPU seconds over the steady passes."""
    now = time.time()
    for follower in followers.values():
        follower.skip_to_now()
    firsts: dict[str, SyncPass] = {}
    for name, follower in followers.items():
        while (p := follower.wait_next(args.pass_timeout)).started < now:
            continue
        firsts[name] = p
    cpu = inst.cpu()
    for follower in followers.values():
        follower.skip_to_now()
    steady = {
        n: [f.wait_next(args.pass_timeout) for _ in range(args.steady)]
        for n, f in followers.items()
    }
    after = inst.cpu()
    rows = [
        PassRow(
            conductor=name,
            nodes=pass_nodes(steady[name][-1]),
            first_s=firsts[name].seconds,
            steady_s=[p.seconds for p in steady[name]],
            failed=sum(p.failed for p in steady[name]) + firsts[name].failed,
            cpu_s=round(after[name] - cpu[name], 1),
        )
        for name in followers
    ]
    bmcs = sum(after[n] - cpu[n] for n in after if n.startswith("bmcs"))
    return rows, round(bmcs, 1)


def run(args: argparse.Namespace) -> Result:
    r = Result(args.nodes, args.workers, args.interval, args.protocol)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-sync-ring-"))
    r.uptime["start"] = deployments.uptime()
    fleet = Fleets(
        args.nodes,
        per_process=args.per_process,
        base_port=args.ipmi_base_port if args.protocol == "ipmi" else args.redfish_port,
        protocol=args.protocol,
    )
    env = {
        "METALCAST_BOOT__ENABLED": "false",
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
        "METALCAST_CONDUCTOR__HEARTBEAT_INTERVAL": "10",
        "METALCAST_CONDUCTOR__HEARTBEAT_TIMEOUT": "15",
    }
    try:
        fleet.start(work_dir, timeout=args.ready_timeout)
        with deployments.split(
            env, apis=1, conductors=args.conductors, keep=args.keep_state
        ) as inst:
            inst.pids.update(fleet.pids())
            enrol(inst, fleet, args, r)
            r.uptime["enrolled"] = deployments.uptime()
            followers = restart_with_sync(inst, args)
            r.ring, r.bmc_cpu_s["ring"] = measure_passes(inst, followers, args)
            r.uptime["ring measured"] = deployments.uptime()
            log(f"ring: {[(p.conductor, p.nodes, p.first_s, p.steady_s) for p in r.ring]}")
            deploy = inst.deployment
            assert deploy is not None
            for name in list(followers)[1:]:
                deploy.stop(name)
                del followers[name], inst.pids[name]
            deploy.wait_conductors({"c1"})
            r.single, r.bmc_cpu_s["single"] = measure_passes(inst, followers, args)
            r.uptime["single measured"] = deployments.uptime()
            log(f"single: {[(p.conductor, p.nodes, p.first_s, p.steady_s) for p in r.single]}")
            api = power_sync.Api(inst.api_urls[0], clients=2)
            r.mismatched = power_sync.mismatches(api, fleet)  # type: ignore[arg-type]
            api.close()
    finally:
        fleet.stop()
        if args.keep_state:
            log(f"the BMCs' log kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    r.uptime["end"] = deployments.uptime()
    return r


def report(r: Result) -> str:
    lines = [
        f"{r.nodes:,} {r.protocol} nodes, {r.workers} sync workers per conductor, interval "
        f"{r.interval:g} s; enrolled in {r.enrol_s} s, manageable {r.manage_s} s later",
        "",
        "| set-up | conductor | nodes | first pass (s) | steady passes (s) "
        "| CPU s over the steady passes | failed reads |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for title, rows, key in (("3 conductors", r.ring, "ring"), ("1 conductor", r.single, "single")):
        for p in rows:
            steady = ", ".join(f"{s:.2f}" for s in p.steady_s)
            cells = [title, p.conductor, f"{p.nodes:,}", f"{p.first_s:.2f}", steady]
            lines.append("| " + " | ".join([*cells, str(p.cpu_s), str(p.failed)]) + " |")
        lines.append(f"| {title} | BMCs' processes | | | | {r.bmc_cpu_s.get(key)} | |")
    lines += ["", f"mismatched power states: {len(r.mismatched)} {r.mismatched[:5]}", ""]
    lines += [f"    {k}: {v}" for k, v in r.uptime.items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="power sync split by the ring")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--protocol", choices=("ipmi", "redfish"), default="ipmi")
    parser.add_argument("--redfish-port", type=int, default=12000)
    parser.add_argument("--conductors", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8, help="sync workers per conductor")
    # a conductor's first pass comes one interval after its start and takes the ring
    # as it is then: at 1 s, the first conductor up took all 10,000 BMCs (logging in
    # to each) while the others started; 60 s lets all three join first
    parser.add_argument("--interval", type=float, default=60.0, help="sync interval, s")
    parser.add_argument("--steady", type=int, default=2, help="steady passes per conductor")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--manage-window", type=int, default=200)
    parser.add_argument("--manage-timeout", type=float, default=3600)
    parser.add_argument("--pass-timeout", type=float, default=1800)
    parser.add_argument("--ready-timeout", type=float, default=600)
    # below the ephemeral range (32768-), and away from power_sync.py's 23000
    parser.add_argument("--ipmi-base-port", type=int, default=12000)
    parser.add_argument(
        "--per-process", type=int, default=900, help="BMCs per lab process (pyghmi's select)"
    )
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "sync_ring.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = run(args)
    data: dict[str, Any] = asdict(r)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(report(r))
    failed = any(p.failed for p in [*r.ring, *r.single])
    return 1 if failed or r.mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
