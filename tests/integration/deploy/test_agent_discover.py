"""Auto-discovery end to end without QEMU: a real ``metalcast server``, a virtual IPMI
BMC, and the real ``metalcast-agent`` process, booted for discovery
(``metalcast.discovery=1``), on a machine made of files that no node knows.

With ``boot.discovery`` off the agent's report is refused (404) and nothing is
enrolled; on, the machine becomes a node: its inventory stored, its ports and
properties set, the inspection rules applied (one gives it its BMC, so that it ends
``manageable``), the discovery credentials sealed, and the agent powers it off.  A
hostile or repeated report is refused and changes nothing."""

from __future__ import annotations

import copy
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
from test_agent_deploy import MAC, SERVER_ENV, api, node, wait_for_state
from test_agent_inspect import SECOND_MAC, machine_with_two_disks, reported

from metalcast.lab.bmc.fleet import Fleet, simulated_machines

MIB = 2**20
BMC_USER, BMC_PASSWORD = "discovered-admin", "d1sc0very-Secret-pw"
DISCOVERY_ENV = {
    **SERVER_ENV,
    "METALCAST_BOOT__DISCOVERY": "true",
    "METALCAST_DISCOVERY__BMC_USERNAME": BMC_USER,
    "METALCAST_DISCOVERY__BMC_PASSWORD": BMC_PASSWORD,
}
ENDPOINT = "/v1/continue_inspection"


@pytest.fixture
def bmc() -> Iterator[Fleet]:
    with Fleet(
        simulated_machines(1, prefix="discover"), ipmi=True, username=BMC_USER,
        password=BMC_PASSWORD,
    ) as fleet:  # fmt: skip
        yield fleet


def start_discovery_agent(api_url: str, machine: FakeMachine, log: Path) -> subprocess.Popen[bytes]:
    """The agent as the discovery script boots it: ``metalcast.discovery=1``."""
    write(
        machine.env.proc_root / "cmdline",
        f"metalcast.api={api_url} BOOTIF=01-{MAC.replace(':', '-')} metalcast.heartbeat=0.2 "
        "metalcast.discovery=1\n",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "metalcast_agent",
                f"--sys-root={machine.env.sys_root}", f"--proc-root={machine.env.proc_root}",
                f"--dev-root={machine.env.dev_root}", "--power-action=exit",
            ],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for_line(log: Path, text: str, agent: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace"):
        assert agent.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


def nodes(server: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api(server, "GET", "/v1/nodes?detail=true")["nodes"]
    return listed


def test_with_discovery_off_an_unknown_machine_is_not_enrolled(
    start_metalcast_server: Callable[..., Any], tmp_path: Path
) -> None:
    machine = machine_with_two_disks(tmp_path / "machine")
    log = tmp_path / "agent.log"
    with start_metalcast_server(env=dict(SERVER_ENV)) as server:
        agent = start_discovery_agent(server.url, machine, log)
        try:
            wait_for_line(log, "waiting to be provisioned instead", agent)
        finally:
            agent.kill()
            agent.wait()
        assert "Discovery failed: HTTP 404" in log.read_text()
        assert nodes(server) == []
        assert api(server, "GET", "/v1/ports")["ports"] == []


def test_an_unknown_machine_is_discovered_inspected_and_enrolled(
    start_metalcast_server: Callable[..., Any], bmc: Fleet, tmp_path: Path
) -> None:
    machine = machine_with_two_disks(tmp_path / "machine")
    served = bmc.bmcs[0]
    env = {**DISCOVERY_ENV, "METALCAST_DISCOVERY__STATE": "manageable"}
    with start_metalcast_server(env=env) as server:
        serial = "{inventory[system_vendor][serial_number]}"
        # the rule an operator writes for a rack: this serial's BMC is there
        api(server, "POST", "/v1/inspection_rules", {
            "conditions": [{"op": "eq", "args": {"values": [serial, "LAB-SERIAL-0"]}}],
            "actions": [
                {"op": "set-attribute",
                 "args": {"path": "/driver_info/ipmi_address", "value": served.address}},
                {"op": "set-attribute",
                 "args": {"path": "/driver_info/ipmi_port", "value": served.port}},
                {"op": "set-attribute", "args": {"path": "/name", "value": "rack-a-0"}},
                {"op": "add-trait", "args": {"name": "CUSTOM_DISCOVERED"}},
            ],
        })  # fmt: skip
        agent = start_discovery_agent(server.url, machine, tmp_path / "agent.log")
        try:
            status = agent.wait(timeout=90)  # it powers the machine off ("exit" here)
        finally:
            agent.kill()
        agent_log = (tmp_path / "agent.log").read_text()
        assert status == 0, agent_log
        [found] = nodes(server)
        uuid = found["uuid"]
        assert f"enrolled as node {uuid}" in agent_log
        shown = wait_for_state(server, uuid, "manageable")

        assert shown["name"] == "rack-a-0"
        assert shown["driver"] == "ipmi"
        assert shown["inspect_interface"] == "agent"
        info = shown["driver_info"]
        assert info["ipmi_username"] == BMC_USER
        assert info["ipmi_password"] == "******"
        assert (info["ipmi_address"], info["ipmi_port"]) == (served.address, served.port)
        props = shown["properties"]
        assert (props["cpus"], props["memory_mb"]) == (2, 2000000 // 1024)
        assert props["local_gb"] == 5  # the smallest disk of at least 4 GiB, less 1 GiB
        assert props["capabilities"] == "boot_mode:bios"
        ports = api(server, "GET", f"/v1/ports?node_uuid={uuid}&detail=true")["ports"]
        assert sorted((p["address"], p["pxe_enabled"]) for p in ports) == [
            (MAC, True), (SECOND_MAC, False),
        ]  # fmt: skip
        stored = api(server, "GET", f"/v1/nodes/{uuid}/inventory")
        assert stored["plugin_data"] == {"auto_discovered": True}
        assert stored["inventory"]["system_vendor"]["serial_number"] == "LAB-SERIAL-0"
        assert api(server, "GET", f"/v1/nodes/{uuid}/traits")["traits"] == ["CUSTOM_DISCOVERED"]
        history = [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]
        assert any(e.startswith("Discovered: enrolled") for e in history), history
        assert any("Inspection rules applied" in e for e in history), history
        # the discovery password: sealed in the database, never logged
        for path in server.files():
            assert BMC_PASSWORD.encode() not in path.read_bytes(), path


def hostile_report(inventory: dict[str, Any], hostile: str) -> Any:
    report = copy.deepcopy(inventory)
    if hostile == "control characters":
        report["system_vendor"]["serial_number"] = "X\x1b]0;owned\x07"
    elif hostile == "malformed":
        report["disks"] = {"sda": 1}
    elif hostile == "no NIC":
        report["interfaces"] = []
    elif hostile == "one MAC twice":
        report["interfaces"] = [report["interfaces"][0]] * 2
    return {"inventory": report}


def test_hostile_and_repeated_reports_are_refused_and_change_nothing(
    start_metalcast_server: Callable[..., Any], tmp_path: Path
) -> None:
    inventory = reported(machine_with_two_disks(tmp_path / "machine"))
    env = {**DISCOVERY_ENV, "METALCAST_DISCOVERY__MAX_PER_MINUTE": "3"}
    with start_metalcast_server(env=env) as server:
        known = api(server, "POST", "/v1/nodes", {"name": "known", "driver": "fake-hardware"})
        api(server, "POST", "/v1/ports", {"address": SECOND_MAC, "node_uuid": known["uuid"]})
        before = node(server, "known")

        def post(report: Any, **kw: Any) -> httpx.Response:
            return httpx.post(f"{server.url}{ENDPOINT}", json=report, **kw)

        # a machine with a NIC of a known node: refused, whichever node is not said
        refused = post({"inventory": inventory})
        assert refused.status_code == 409, refused.text
        assert "nothing was changed" in refused.text.lower()
        assert known["uuid"] not in refused.text
        for hostile, status, says in (
            ("control characters", 400, "control character"),
            ("malformed", 400, "'disks' is missing"),
            ("no NIC", 400, "no NIC"),
            ("one MAC twice", 400, "one MAC address for two NICs"),
        ):
            answer = post(hostile_report(inventory, hostile))
            assert (answer.status_code, says in answer.text) == (status, True), answer.text
        huge = post({"inventory": {"disks": [{"model": "x" * (10 * MIB)}]}})
        assert huge.status_code == 413, huge.text
        not_json = post(None, content=b"\x00\x01", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 400, not_json.text
        assert [n["uuid"] for n in nodes(server)] == [known["uuid"]]
        assert node(server, "known") == before

        # a new machine whose BMC address is loopback: enrolled, the address ignored
        inventory["interfaces"] = [i for i in inventory["interfaces"] if i["mac_address"] == MAC]
        inventory["bmc_address"] = "127.0.0.1"
        enrolled = post({"inventory": inventory, "extra": "ignored"})
        assert enrolled.status_code == 202, enrolled.text
        uuid = enrolled.json()["uuid"]
        shown = node(server, uuid)
        assert shown["provision_state"] == "enroll"
        assert "ipmi_address" not in shown["driver_info"]
        history = api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]
        assert "BMC address ignored" in history[0]["event"], history
        # the same machine reporting again: refused, nothing changed
        again = post({"inventory": inventory})
        assert again.status_code == 409, again.text
        assert node(server, uuid) == shown
        assert node(server, "known") == before
        # the fourth report within a minute (max_per_minute 3): refused until later
        other = copy.deepcopy(inventory)
        other["interfaces"][0]["mac_address"] = "52:54:00:6d:63:aa"
        throttled = post({"inventory": other})
        assert throttled.status_code == 503, throttled.text
        assert len(nodes(server)) == 2
