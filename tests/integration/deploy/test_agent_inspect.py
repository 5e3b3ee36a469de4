"""In-band inspection end to end without QEMU: a real ``metalcast server``, a virtual
IPMI BMC, and the real ``metalcast-agent`` process on a machine made of files.

``inspect`` boots the node into the ramdisk; the agent looks itself up by MAC, is
handed ``get_inventory`` and reports the fake machine's two disks, two NICs and SMBIOS
data; the conductor stores the inventory (``GET /v1/nodes/{node}/inventory``), sets the
node's properties and creates the port it did not know.  An inventory with another
node's MAC is refused and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "agent"))
from agent_machine import FakeMachine, write
from test_agent_deploy import HEADERS, MAC, SERVER_ENV, api, node, start_agent, wait_for_state

from metalcast.lab.bmc.fleet import Fleet, simulated_machines
from metalcast.lab.machine import BootDevice, Power

GIB = 2**30
MIB = 2**20
SECOND_MAC = "52:54:00:6d:63:f1"


@pytest.fixture
def server(start_metalcast_server: Callable[..., Any], tmp_path: Path) -> Iterator[Any]:
    with start_metalcast_server(env=dict(SERVER_ENV)) as running:
        yield running


@pytest.fixture
def bmc() -> Iterator[Fleet]:
    with Fleet(simulated_machines(1, prefix="inspect"), ipmi=True) as fleet:
        yield fleet


def machine_with_two_disks(root: Path) -> FakeMachine:
    machine = FakeMachine(root)
    machine.add_disk("vda", 6 * GIB, serial="SMALL-1")
    machine.add_disk("vdb", 12 * GIB, serial="BIG-2", **{"queue/rotational": "1"})
    machine.add_nic("eth0", MAC)
    machine.add_nic("eth1", SECOND_MAC, carrier=False)
    write(machine.env.proc_root / "cpuinfo", "processor : 0\nprocessor : 1\nmodel name : Lab CPU\n")
    write(machine.env.proc_root / "meminfo", "MemTotal:        2000000 kB\n")
    dmi = machine.env.sys_root / "class" / "dmi" / "id"
    write(dmi / "sys_vendor", "QEMU\n")
    write(dmi / "product_name", "Lab machine\n")
    write(dmi / "product_serial", "LAB-SERIAL-0\n")
    return machine


def enroll(server: Any, bmc: Fleet, name: str) -> str:
    served = bmc.bmcs[0]
    created = api(server, "POST", "/v1/nodes", {
        "name": name, "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })  # fmt: skip
    assert created["inspect_interface"] == "agent"
    uuid: str = created["uuid"]
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"})
    wait_for_state(server, uuid, "manageable")
    return uuid


def test_inspect_stores_the_inventory_sets_properties_and_creates_ports(
    server: Any, bmc: Fleet, tmp_path: Path
) -> None:
    machine = machine_with_two_disks(tmp_path / "machine")
    uuid = enroll(server, bmc, "inspect-0")
    missing = httpx.get(f"{server.url}/v1/nodes/{uuid}/inventory", headers=HEADERS)
    assert missing.status_code == 404, missing.text
    api(server, "PATCH", f"/v1/nodes/{uuid}", [
        {"op": "add", "path": "/properties/root_device", "value": {"serial": "BIG-2"}},
    ])  # fmt: skip
    # an inspection rule: a trait for the machines this serial names, one that does not hit
    serial = "{inventory[system_vendor][serial_number]}"
    for wanted, trait in (("LAB-SERIAL-0", "CUSTOM_RACK_A"), ("OTHER", "CUSTOM_RACK_B")):
        api(server, "POST", "/v1/inspection_rules", {
            "conditions": [{"op": "eq", "args": {"values": [serial, wanted]}}],
            "actions": [{"op": "add-trait", "args": {"name": trait}}],
        })  # fmt: skip

    agent = start_agent(server.url, machine, tmp_path / "agent.log")
    try:
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "inspect"})
        inspected = wait_for_state(server, uuid, "manageable")
    finally:
        agent.kill()
        agent.wait()

    assert [b.device for b in bmc.machines[0].boots] == [BootDevice.PXE]  # type: ignore[attr-defined]
    assert bmc.machines[0].power() is Power.OFF
    props = inspected["properties"]
    assert props["cpus"] == 2
    assert props["memory_mb"] == 2000000 // 1024
    assert props["local_gb"] == 11  # the hinted 12 GiB disk, less 1 GiB
    assert props["capabilities"] == "boot_mode:bios"
    assert inspected["inspection_finished_at"]
    stored = api(server, "GET", f"/v1/nodes/{uuid}/inventory")
    assert stored["plugin_data"] == {}
    inventory = stored["inventory"]
    assert [d["serial"] for d in inventory["disks"]] == ["SMALL-1", "BIG-2"]
    assert inventory["system_vendor"]["serial_number"] == "LAB-SERIAL-0"
    assert inventory["boot"]["pxe_interface"] == MAC
    ports = api(server, "GET", f"/v1/ports?node_uuid={uuid}&detail=true")["ports"]
    assert sorted((p["address"], p["pxe_enabled"]) for p in ports) == [
        (MAC, True), (SECOND_MAC, False),
    ]  # fmt: skip
    events = [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]
    assert any(f"ports created: {SECOND_MAC}" in e for e in events), events
    assert api(server, "GET", f"/v1/nodes/{uuid}/traits")["traits"] == ["CUSTOM_RACK_A"]
    # python-ironicclient's `baremetal node inventory save` reads the same
    saved = subprocess.run(
        [str(Path(sys.executable).parent / "baremetal"), "node", "inventory", "save", uuid],
        env={**os.environ, "OS_ENDPOINT": server.url, "OS_AUTH_TYPE": "none"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout) == stored


class HostileAgent:
    """An agent under a tenant's control: it looks up with the node's MAC as the real
    one does, then reports whatever inventory it likes."""

    def __init__(self, server: Any, uuid: str) -> None:
        self.url, self.uuid = server.url, uuid
        headers = {"X-OpenStack-Ironic-API-Version": "1.36"}
        self.headers = headers
        found = httpx.get(f"{self.url}/v1/lookup", params={"addresses": MAC}, headers=headers)
        assert found.status_code == 200, found.text
        self.token = found.json()["config"]["agent_token"]

    def heartbeat(self, **body: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/heartbeat/{self.uuid}",
            json={"agent_token": self.token, "agent_version": "hostile 1", **body},
            headers=self.headers,
        )

    def report_inventory(self, inventory: Any) -> None:
        command = self.heartbeat().json()["command"]
        assert command["name"] == "get_inventory"
        result = {"id": command["id"], "name": "get_inventory", "status": "succeeded",
                  "result": inventory, "error": None}  # fmt: skip
        self.heartbeat(results=[result])


def reported(machine: FakeMachine) -> dict[str, Any]:
    """What the real agent code collects on ``machine``."""
    from metalcast_agent.hardware import collect_inventory

    return dict(collect_inventory(machine.env))


def inspect_until_waiting(server: Any, uuid: str) -> None:
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "inspect"})
    wait_for_state_exactly(server, uuid, "inspect wait")


@pytest.mark.parametrize("hostile", ["another node's MAC", "control characters", "malformed"])
def test_a_hostile_inventory_is_refused_on_the_node_and_changes_nothing(
    server: Any, bmc: Fleet, tmp_path: Path, hostile: str
) -> None:
    uuid = enroll(server, bmc, "inspect-1")
    other = api(server, "POST", "/v1/nodes", {"name": "other", "driver": "fake-hardware"})
    api(server, "POST", "/v1/ports", {"address": SECOND_MAC, "node_uuid": other["uuid"]})
    before = node(server, uuid)["properties"]
    inventory = reported(machine_with_two_disks(tmp_path / "machine"))
    expected = {
        "another node's MAC": "belongs to a port of another node",
        "control characters": "control character",
        "malformed": "'disks' is missing",
    }[hostile]
    if hostile == "control characters":
        inventory["system_vendor"]["serial_number"] = "X\x1b]0;owned\x07"
    elif hostile == "malformed":
        inventory["disks"] = {"sda": 1}

    inspect_until_waiting(server, uuid)
    HostileAgent(server, uuid).report_inventory(inventory)
    failed = wait_for_failure(server, uuid)

    assert expected in failed["last_error"], failed["last_error"]
    assert other["uuid"] not in failed["last_error"]
    assert failed["properties"] == before
    missing = httpx.get(f"{server.url}/v1/nodes/{uuid}/inventory", headers=HEADERS)
    assert missing.status_code == 404
    ports = api(server, "GET", "/v1/ports?detail=true")["ports"]
    assert sorted((p["address"], p["node_uuid"]) for p in ports) == [
        (MAC, uuid), (SECOND_MAC, other["uuid"]),
    ]  # fmt: skip
    assert node(server, other["uuid"])["properties"] == {}


def test_a_ten_megabyte_inventory_is_refused_by_the_api(
    server: Any, bmc: Fleet, tmp_path: Path
) -> None:
    uuid = enroll(server, bmc, "inspect-2")
    inspect_until_waiting(server, uuid)
    agent = HostileAgent(server, uuid)
    command = agent.heartbeat().json()["command"]
    huge = {"id": command["id"], "name": "get_inventory", "status": "succeeded",
            "result": {"disks": [{"model": "x" * (10 * MIB)}]}, "error": None}  # fmt: skip

    refused = agent.heartbeat(results=[huge])

    assert refused.status_code == 413, refused.text
    assert node(server, uuid)["provision_state"] == "inspect wait"  # nothing recorded


def wait_for_state_exactly(server: Any, uuid: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (shown := node(server, uuid))["provision_state"] != state:
        assert time.monotonic() < deadline, shown
        time.sleep(0.1)
    return shown


def wait_for_failure(server: Any, uuid: str) -> dict[str, Any]:
    return wait_for_state_exactly(server, uuid, "inspect failed")


def test_an_inventory_too_large_to_send_fails_the_inspection_with_a_clear_message(
    server: Any, bmc: Fleet, tmp_path: Path
) -> None:
    machine = machine_with_two_disks(tmp_path / "machine")
    flags = " ".join(f"flag{i}" for i in range(300_000))  # 2.6 MB of CPU flags
    write(machine.env.proc_root / "cpuinfo", f"processor : 0\nflags : {flags}\n")
    uuid = enroll(server, bmc, "inspect-3")

    agent = start_agent(server.url, machine, tmp_path / "agent.log")
    try:
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "inspect"})
        failed = wait_for_failure(server, uuid)
    finally:
        agent.kill()
        agent.wait()

    assert "get_inventory failed" in failed["last_error"], failed["last_error"]
    assert "larger than metalcast accepts" in failed["last_error"]
    missing = httpx.get(f"{server.url}/v1/nodes/{uuid}/inventory", headers=HEADERS)
    assert missing.status_code == 404


def test_an_aborted_inspection_powers_the_machine_off(server: Any, bmc: Fleet) -> None:
    """As Ironic does: the ramdisk's boot removed and the machine off, not left running
    the agent for nothing."""
    uuid = enroll(server, bmc, "inspect-4")
    inspect_until_waiting(server, uuid)
    assert bmc.machines[0].power() is Power.ON

    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "abort"})
    failed = wait_for_failure(server, uuid)

    assert "Inspection aborted by" in failed["last_error"], failed["last_error"]
    assert bmc.machines[0].power() is Power.OFF
    events = [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]
    assert "Inspection ended: the node is powered off" in events, events[-4:]
