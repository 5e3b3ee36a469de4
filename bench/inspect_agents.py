#!/usr/bin/env python3
"""In-band inspection at scale: N simulated agents inspected at once by one conductor.

    bench/run --inspect                    # 200 nodes (the issue's figure)
    bench/run --inspect --nodes 20         # quick check

1. ``metalcast lab bmc --count N --ipmi`` serves a virtual IPMI BMC per machine in its
   own process (its CPU is not the server's).
2. The all-in-one ``metalcast server`` (SQLite, fresh state dir; boot services on in a
   namespace that does not exist, so boot files are written and no dnsmasq runs, as
   the agent tests do) gets N ``ipmi`` nodes with their PXE port; every node is
   ``manage``d (verification reads its BMC).
3. Every machine's inventory is collected once, before the clock starts, by the real
   agent's code (``metalcast_agent.hardware.collect_inventory``) on a machine made of
   files (the tests' ``agent_machine.FakeMachine``): two disks, two NICs, SMBIOS; each
   machine's copy gets its own MACs and serial.
4. The clock starts; ``inspect`` is asked for every node (``--clients`` requests at a
   time).  Each simulated agent (a thread) does what the ramdisk's agent does once its
   machine has booted: ``GET /v1/lookup`` until its node answers (every
   ``--lookup-interval`` s), heartbeats, runs the ``get_inventory`` command it is
   handed at once and heartbeats the result.  The conductor checks and stores the
   inventory, creates the second NIC's port, sets the properties, runs the
   inspection rules (one rule, adding a trait) and powers the machine off.
5. The clock stops when every node is ``manageable`` with ``inspection_finished_at``
   set.  Reported: wall time and inspections per second, each node's own
   ``inspection_started_at`` → ``inspection_finished_at``, the server's and the BMCs'
   CPU seconds per inspection, and a check that every node got its own inventory,
   port and trait.

Ironic is not part of this bench (its in-band inspection needs the ramdisk to boot
through a real boot interface).  Prints a markdown table; writes ``--json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import workload
from deployments import all_in_one, uptime
from power_sync import DEFAULT_LAB_CMD, Api, ManagePolicy, start_fleet
from proctree import tree_cpu_seconds

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "unit" / "agent"))

from agent_machine import FakeMachine, write  # noqa: E402

from metalcast_agent.hardware import collect_inventory  # noqa: E402

log = workload.log
HEADERS = {"X-OpenStack-Ironic-API-Version": "1.81"}
AGENT_HEADERS = {"X-OpenStack-Ironic-API-Version": "1.36"}
GIB = 2**30
TRAIT = "CUSTOM_BENCH_INSPECTED"
SERVER_ENV = {
    "METALCAST_BOOT__ENABLED": "true",
    "METALCAST_BOOT__NETNS": "mc-none-bench",
    "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    "METALCAST_SENSORS__ENABLED": "false",
}


def mac(index: int, nic: int) -> str:
    """The MAC of machine ``index``'s NIC ``nic`` (0: the PXE NIC)."""
    return (
        f"52:54:{nic:02x}:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"
    )


def template_inventory(root: Path) -> dict[str, Any]:
    """What the real agent's code reports on a two-disk, two-NIC machine of files."""
    machine = FakeMachine(root)
    machine.add_disk("vda", 20 * GIB, serial="DISK-A")
    machine.add_disk("vdb", 40 * GIB, serial="DISK-B", **{"queue/rotational": "1"})
    machine.add_nic("eth0", mac(0, 0))
    machine.add_nic("eth1", mac(0, 1), carrier=False)
    write(machine.env.proc_root / "cpuinfo", "processor : 0\nprocessor : 1\nmodel name : Bench\n")
    write(machine.env.proc_root / "meminfo", "MemTotal:        4000000 kB\n")
    write(machine.env.proc_root / "cmdline", f"BOOTIF=01-{mac(0, 0).replace(':', '-')}\n")
    dmi = machine.env.sys_root / "class" / "dmi" / "id"
    write(dmi / "sys_vendor", "QEMU\n")
    write(dmi / "product_name", "Bench machine\n")
    write(dmi / "product_serial", "BENCH-0\n")
    return dict(collect_inventory(machine.env))


def inventory_of(template: dict[str, Any], index: int) -> dict[str, Any]:
    """The template with machine ``index``'s own MACs and serial."""
    inventory = copy.deepcopy(template)
    for nic, interface in enumerate(inventory["interfaces"]):
        interface["mac_address"] = mac(index, nic)
    inventory["boot"]["pxe_interface"] = mac(index, 0)
    inventory["system_vendor"]["serial_number"] = f"BENCH-{index}"
    return inventory


@dataclass
class AgentRecord:
    """What one simulated agent saw."""

    lookups: int = 0
    heartbeats: int = 0
    looked_up_at: float | None = None
    reported_at: float | None = None
    error: str | None = None


class SimulatedAgent(threading.Thread):
    """The agent's protocol for one machine, as the ramdisk runs it after boot."""

    def __init__(
        self, url: str, index: int, inventory: dict[str, Any], *, interval: float, until: float
    ) -> None:
        super().__init__(name=f"agent-{index}", daemon=True)
        self.url, self.index, self.inventory = url, index, inventory
        self.interval, self.until = interval, until
        self.record = AgentRecord()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers=AGENT_HEADERS, timeout=120) as http:
                self._run(http)
        except Exception as exc:  # recorded, reported at the end
            self.record.error = f"{type(exc).__name__}: {exc}"

    def _run(self, http: httpx.Client) -> None:
        uuid, token = self._lookup(http)
        if uuid is None:
            return
        while not self.stop.is_set() and time.monotonic() < self.until:
            self.record.heartbeats += 1
            answer = http.post(
                f"/v1/heartbeat/{uuid}", json={"agent_token": token, "agent_version": "bench 1"}
            )
            if answer.status_code >= 400:
                self.record.error = f"heartbeat: {answer.status_code} {answer.text[:200]}"
                return
            command = (answer.json() if answer.content else {}).get("command")
            if command and command.get("name") == "get_inventory":
                result = {
                    "id": command["id"], "name": "get_inventory", "status": "succeeded",
                    "result": self.inventory, "error": None,
                }  # fmt: skip
                self.record.heartbeats += 1
                sent = http.post(
                    f"/v1/heartbeat/{uuid}",
                    json={"agent_token": token, "agent_version": "bench 1", "results": [result]},
                )
                if sent.status_code >= 400:
                    self.record.error = f"result: {sent.status_code} {sent.text[:200]}"
                self.record.reported_at = time.monotonic()
                return  # the conductor powers the machine off next
            self.stop.wait(self.interval)

    def _lookup(self, http: httpx.Client) -> tuple[str | None, str]:
        while not self.stop.is_set() and time.monotonic() < self.until:
            self.record.lookups += 1
            found = http.get("/v1/lookup", params={"addresses": mac(self.index, 0)})
            if found.status_code == 200:
                body = found.json()
                self.record.looked_up_at = time.monotonic()
                return str(body["node"]["uuid"]), str(body["config"]["agent_token"])
            self.stop.wait(self.interval)
        self.record.error = "the lookup never found the node"
        return None, ""


@dataclass
class Result:
    nodes: int
    clients: int
    lookup_interval: float
    wall_s: float = 0.0
    per_second: float = 0.0
    node_seconds: dict[str, float] = field(default_factory=dict)  # median, p95, max
    server_cpu_s: float = 0.0
    bmc_cpu_s: float = 0.0
    lookups: int = 0
    heartbeats: int = 0
    failures: list[str] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""


def _seconds(node: dict[str, Any]) -> float:
    started = datetime.fromisoformat(node["inspection_started_at"])
    finished = datetime.fromisoformat(node["inspection_finished_at"])
    return (finished - started).total_seconds()


def run(args: argparse.Namespace) -> Result:
    result = Result(args.nodes, args.clients, args.lookup_interval, load_before=uptime())
    work_dir = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    with tempfile.TemporaryDirectory() as machine_root:
        template = template_inventory(Path(machine_root))
    inventories = [inventory_of(template, i) for i in range(args.nodes)]
    fleet = start_fleet(args, work_dir)
    try:
        with all_in_one(SERVER_ENV, keep=args.keep_state) as installation:
            url = installation.api_urls[0]
            api = Api(url, clients=args.clients)
            try:
                uuids = api.create_nodes(fleet, "ipmi")
                http = httpx.Client(base_url=url, headers=HEADERS, timeout=300)
                names = sorted(uuids, key=lambda n: int(n.split("-")[1]))
                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(lambda n: _port(http, uuids[n], mac(_index(n), 0)), names))
                _rule(http)
                log(f"{args.nodes} nodes enrolled; managing")
                api.manage_all(uuids, ManagePolicy(args.clients, args.nodes, 1800, 1), poll=1)
                log("all manageable; inspecting")
                server_cpu = installation.cpu()["server"]
                bmc_cpu = tree_cpu_seconds(fleet.server.pid)
                started = time.monotonic()
                until = started + args.timeout
                agents = [
                    SimulatedAgent(url, _index(n), inventories[_index(n)],
                                   interval=args.lookup_interval, until=until)
                    for n in names
                ]  # fmt: skip
                for agent in agents:
                    agent.start()
                with ThreadPoolExecutor(args.clients) as pool:
                    answers = list(pool.map(lambda n: _inspect(http, uuids[n]), names))
                result.failures += [a for a in answers if a]
                nodes = _wait_inspected(http, args.nodes, until)
                result.wall_s = round(time.monotonic() - started, 2)
                result.server_cpu_s = round(installation.cpu()["server"] - server_cpu, 2)
                result.bmc_cpu_s = round(tree_cpu_seconds(fleet.server.pid) - bmc_cpu, 2)
                for agent in agents:
                    agent.stop.set()
                for agent in agents:
                    agent.join(10)
                    result.lookups += agent.record.lookups
                    result.heartbeats += agent.record.heartbeats
                    if agent.record.error:
                        result.failures.append(f"agent {agent.index}: {agent.record.error}")
                result.failures += _check(http, nodes, uuids)
                durations = sorted(_seconds(n) for n in nodes if n["inspection_finished_at"])
                if durations:
                    result.node_seconds = {
                        "median": round(statistics.median(durations), 2),
                        "p95": round(durations[int(0.95 * (len(durations) - 1))], 2),
                        "max": round(durations[-1], 2),
                    }
                result.per_second = round(len(durations) / result.wall_s, 2)
                http.close()
            finally:
                api.close()
    finally:
        fleet.server.stop()
    result.load_after = uptime()
    return result


def _index(name: str) -> int:
    return int(name.split("-")[1])


def _port(http: httpx.Client, uuid: str, address: str) -> None:
    response = http.post("/v1/ports", json={"node_uuid": uuid, "address": address})
    response.raise_for_status()


def _rule(http: httpx.Client) -> None:
    """One inspection rule for every machine: a trait when the SMBIOS vendor is QEMU."""
    vendor = "{inventory[system_vendor][manufacturer]}"
    response = http.post(
        "/v1/inspection_rules",
        json={
            "description": "bench: mark inspected machines",
            "conditions": [{"op": "eq", "args": {"values": [vendor, "QEMU"]}}],
            "actions": [{"op": "add-trait", "args": {"name": TRAIT}}],
        },
    )
    response.raise_for_status()


def _inspect(http: httpx.Client, uuid: str) -> str | None:
    response = http.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "inspect"})
    return None if response.status_code == 202 else f"inspect {uuid}: {response.text[:200]}"


def _wait_inspected(http: httpx.Client, count: int, until: float) -> list[dict[str, Any]]:
    fields = "uuid,name,provision_state,inspection_started_at,inspection_finished_at,last_error"
    while True:
        nodes = http.get("/v1/nodes", params={"fields": fields, "limit": 0}).json()["nodes"]
        done = [n for n in nodes if n["provision_state"] in ("manageable", "inspect failed")]
        finished = [n for n in done if n["inspection_finished_at"] or n["last_error"]]
        if len(finished) == count or time.monotonic() > until:
            return list(nodes)
        time.sleep(0.2)


def _check(http: httpx.Client, nodes: Sequence[dict[str, Any]], uuids: dict[str, str]) -> list[str]:
    """Each node manageable, with its own inventory, its second port and the trait."""
    wrong: list[str] = []
    for node in nodes:
        index = _index(node["name"])
        if node["provision_state"] != "manageable" or not node["inspection_finished_at"]:
            wrong.append(f"{node['name']}: {node['provision_state']} ({node['last_error']})")
            continue
        uuid = uuids[node["name"]]
        stored = http.get(f"/v1/nodes/{uuid}/inventory").json()["inventory"]
        if stored["system_vendor"]["serial_number"] != f"BENCH-{index}":
            wrong.append(f"{node['name']}: inventory of another machine")
        ports = http.get("/v1/ports", params={"node_uuid": uuid}).json()["ports"]
        if sorted(p["address"] for p in ports) != sorted([mac(index, 0), mac(index, 1)]):
            wrong.append(f"{node['name']}: ports {[p['address'] for p in ports]}")
        if TRAIT not in http.get(f"/v1/nodes/{uuid}/traits").json()["traits"]:
            wrong.append(f"{node['name']}: no {TRAIT}")
    return wrong


def report(result: Result) -> str:
    seconds = result.node_seconds
    rows = [
        ("nodes inspected at once", f"{result.nodes}"),
        ("wall: first inspect request → all manageable, s", f"{result.wall_s}"),
        ("inspections per second", f"{result.per_second}"),
        ("one node's inspection (started → finished), median / p95 / max, s",
         f"{seconds.get('median')} / {seconds.get('p95')} / {seconds.get('max')}"),
        ("server CPU, s (per inspection, ms)",
         f"{result.server_cpu_s} ({1000 * result.server_cpu_s / result.nodes:.0f})"),
        ("virtual BMCs' CPU, s", f"{result.bmc_cpu_s}"),
        ("agents' lookups / heartbeats", f"{result.lookups} / {result.heartbeats}"),
        ("failures", f"{len(result.failures)}"),
    ]  # fmt: skip
    lines = ["| measure | value |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=200, help="machines inspected at once")
    p.add_argument("--clients", type=int, default=8, help="concurrent API clients")
    p.add_argument("--lookup-interval", type=float, default=1.0, help="agents' retry, s")
    p.add_argument("--timeout", type=float, default=1800.0, help="longest wait, s")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--ipmi-base-port", type=int, default=24000)
    p.add_argument("--redfish-port", type=int, default=22500)
    p.add_argument("--shared-ipmi-address", action="store_true")
    p.add_argument("--redfish-port-per-machine", action="store_true")
    p.add_argument("--lab-cmd", default=DEFAULT_LAB_CMD, help="the BMCs' command; {root}")
    p.add_argument("--keep-state", action="store_true")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "inspect_agents.json")
    args = p.parse_args(argv)
    result = run(args)
    for failure in result.failures[:20]:
        log(f"FAILED: {failure}")
    print(report(result))
    print(f"\nload before: {result.load_before}\nload after: {result.load_after}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
