"""Auto-discovery in the virtual lab: a QEMU machine metalcast does not know
(``lab up --unenrolled 1``) is powered on through its virtual BMC, network-boots the
discovery ramdisk (``boot.discovery``), and its agent's inventory makes it a node:
with the MACs QEMU was given, its SMBIOS serial and disks, and, through an inspection
rule keyed on that serial, its BMC, with which the node reaches ``manageable``.  The
agent powers the machine off."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx
import pytest
from lablib import API_HEADERS, Lab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

#: seconds a TCG machine may take to boot the ramdisk and report
DISCOVERY_TIMEOUT = 600


def ipmitool(lab: Lab, port: int, *args: str) -> str:
    """``ipmitool`` against a lab machine's virtual BMC on loopback; its output."""
    password = lab.state()["bmc_password"]
    done = subprocess.run(
        ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), "-U", "admin",
         "-P", password, *args],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def api(lab: Lab, method: str, path: str, body: Any = None) -> Any:
    answer = httpx.request(method, f"{lab.url}{path}", json=body, headers=API_HEADERS)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def discovered(lab: Lab, name: str) -> dict[str, Any]:
    """The node discovery made (and a rule named), once it rests in ``manageable``."""
    deadline = time.monotonic() + DISCOVERY_TIMEOUT
    while time.monotonic() < deadline:
        found = [n for n in api(lab, "GET", "/v1/nodes?detail=true")["nodes"] if n["name"] == name]
        if found and found[0]["provision_state"] == "manageable":
            shown: dict[str, Any] = found[0]
            return shown
        time.sleep(2)
    raise AssertionError(f"no machine discovered: {found}\n{lab.serial('lab-1')[-3000:]}")


def test_an_unenrolled_lab_machine_is_discovered_and_enrolled(lab_env_discovery: Lab) -> None:
    lab = lab_env_discovery
    lab.up(1, "--unenrolled", "1")  # lab-0 stays off: only lab-1 boots
    [_, machine] = lab.state()["nodes"]
    assert machine["enrolled"] is False
    serial = "{inventory[system_vendor][serial_number]}"
    api(lab, "POST", "/v1/inspection_rules", {
        "sensitive": True,  # it holds the BMC password
        "conditions": [{"op": "eq", "args": {"values": [serial, machine["serial"]]}}],
        "actions": [
            {"op": "set-attribute", "args": {"path": "/name", "value": "found-1"}},
            {"op": "add-trait", "args": {"name": "CUSTOM_DISCOVERED"}},
            {"op": "set-attribute",
             "args": {"path": "/driver_info/ipmi_address", "value": "127.0.0.1"}},
            {"op": "set-attribute",
             "args": {"path": "/driver_info/ipmi_port", "value": machine["bmc_port"]}},
            {"op": "set-attribute",
             "args": {"path": "/driver_info/ipmi_password",
                      "value": lab.state()["bmc_password"]}},
        ],
    })  # fmt: skip

    ipmitool(lab, machine["bmc_port"], "chassis", "bootdev", "pxe")
    ipmitool(lab, machine["bmc_port"], "chassis", "power", "on")
    node = discovered(lab, "found-1")

    assert node["name"] == "found-1"
    assert node["driver"] == "ipmi"
    assert node["driver_info"]["ipmi_password"] == "******"
    assert api(lab, "GET", f"/v1/nodes/{node['uuid']}/traits")["traits"] == ["CUSTOM_DISCOVERED"]
    ports = api(lab, "GET", f"/v1/ports?node_uuid={node['uuid']}&detail=true")["ports"]
    assert sorted((p["address"], p["pxe_enabled"]) for p in ports) == [
        (machine["mac"], True), (machine["second_mac"], False),
    ]  # fmt: skip
    inventory = api(lab, "GET", f"/v1/nodes/{node['uuid']}/inventory")["inventory"]
    assert inventory["system_vendor"]["serial_number"] == machine["serial"]
    assert sorted(d["serial"] for d in inventory["disks"]) == [
        f"{machine['serial']}-D0", f"{machine['serial']}-D1",
    ]  # fmt: skip
    assert node["properties"]["local_gb"] >= 1
    history = api(lab, "GET", f"/v1/nodes/{node['uuid']}/history")["history"]
    assert history[0]["event"].startswith("Discovered: enrolled"), history
    # the agent powers the machine off once it was enrolled
    deadline = time.monotonic() + 120
    while "is off" not in ipmitool(lab, machine["bmc_port"], "chassis", "power", "status"):
        assert time.monotonic() < deadline, lab.serial("lab-1")[-3000:]
        time.sleep(2)
