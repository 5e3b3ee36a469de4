"""Power and boot devices end to end: the ``baremetal`` CLI → metalcast's API and
conductor → pyghmi / sushy → the lab's virtual BMCs, and back from ``ipmitool``.

Every failure an operator meets ends in a node that says what went wrong (the BMC,
the operation, the cause), within the configured bounds, with no worker held."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bmclab import (
    PASSWORD,
    USERNAME,
    baremetal,
    bmc_of,
    enroll,
    history,
    ipmitool,
    machine_of,
    node,
    settled,
    wait_for,
)

from metalcast.lab.bmc.fleet import Fleet, ServedBmc
from metalcast.lab.machine import BootDevice, Power

#: short bounds, so each failure is seen within seconds
SERVER_ENV = {
    "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0.5",
    "METALCAST_CONDUCTOR__BMC_CALL_TIMEOUT": "2",
    "METALCAST_CONDUCTOR__BMC_RETRY_BACKOFF": "0.05",
    "METALCAST_CONDUCTOR__BMC_POLL_INTERVAL": "0.2",
    "METALCAST_CONDUCTOR__POWER_STATE_CHANGE_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def url(start_metalcast_server: Callable[..., Any]) -> Iterator[str]:
    with start_metalcast_server(env=SERVER_ENV) as server:
        yield server.url


def _info(bmc: ServedBmc, password: str = PASSWORD) -> dict[str, object]:
    return bmc.driver_info(username=USERNAME, password=password)


def _managed(url: str, name: str, bmc: ServedBmc) -> str:
    uuid = enroll(url, name, bmc.protocol, _info(bmc))
    baremetal(url, "node", "manage", name, "--wait", "60")
    assert node(url, uuid)["provision_state"] == "manageable"
    return uuid


def _free_udp_ports(count: int) -> int:
    """The first of ``count`` consecutive UDP ports that are free on 127.0.0.1 now."""
    for base in range(21000, 60000, 97):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError("no free UDP port range")


# ----------------------------------------------------- the "done when"


def test_lab_bmcs_enrolled_managed_and_driven_by_baremetal_and_ipmitool(url: str) -> None:
    base = _free_udp_ports(3)
    lab = subprocess.Popen(
        [sys.executable, "-m", "metalcast.cli.main", "lab", "bmc", "--count", "3",
         "--ipmi", "--base-port", str(base), "--password", PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert lab.stdout is not None
        listing = ""
        while "Serving" not in listing and lab.poll() is None:
            listing += lab.stdout.readline()
        assert "Serving 3 BMCs" in listing, listing
        assert f"127.0.0.1 │ {base + 2}" in listing, listing
        bmcs = [
            ServedBmc(machine=None, protocol="ipmi", address="127.0.0.1", port=base + i)  # type: ignore[arg-type]
            for i in range(3)
        ]
        uuids = [_managed(url, f"lab-{i}", bmc) for i, bmc in enumerate(bmcs)]
        assert [node(url, u)["power_state"] for u in uuids] == ["power off"] * 3

        baremetal(url, "node", "power", "on", "lab-0", "--power-timeout", "30")
        assert ipmitool(bmcs[0], "power", "status").stdout.strip() == "Chassis Power is on"
        assert ipmitool(bmcs[1], "power", "status").stdout.strip() == "Chassis Power is off"

        baremetal(url, "node", "boot", "device", "set", "lab-1", "pxe", "--persistent")
        shown = ipmitool(bmcs[1], "chassis", "bootparam", "get", "5").stdout
        assert "Force PXE" in shown and "all future boots" in shown

        ipmitool(bmcs[1], "chassis", "bootdev", "disk")
        device = json.loads(
            baremetal(url, "node", "boot", "device", "show", "lab-1", "-f", "json").stdout
        )
        assert device == {"boot_device": "disk", "persistent": False}

        ipmitool(bmcs[0], "power", "off")  # out of band: the sync notices and records it
        assert wait_for(lambda: node(url, "lab-0")["power_state"] == "power off", 30)
        events = [e["event"] for e in history(url, "lab-0")]
        assert "Power state changed out of band: power on → power off" in events
    finally:
        lab.send_signal(signal.SIGTERM)
        assert lab.wait(timeout=30) == 0


# ------------------------------------------------------------------- Redfish


def test_redfish_power_boot_device_and_bios_through_the_api(url: str, fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 0)
    machine = machine_of(bmc)
    _managed(url, "rf-0", bmc)
    baremetal(url, "node", "power", "on", "rf-0")
    assert machine.power() is Power.ON
    assert node(url, "rf-0")["power_state"] == "power on"
    baremetal(url, "node", "boot", "device", "set", "rf-0", "pxe")
    assert machine.boot_override().device is BootDevice.PXE
    baremetal(url, "node", "reboot", "rf-0")
    assert machine.boots[-1].device is BootDevice.PXE
    assert machine.boot_override().device is None  # "once" was used up by that boot
    baremetal(url, "node", "power", "off", "--soft", "rf-0")
    assert machine.power() is Power.OFF
    assert settled(url, "rf-0")["power_state"] == "power off"


def test_redfish_out_of_band_inspection_reads_the_machine_through_its_bmc(
    url: str, fleet: Fleet
) -> None:
    """inspect_interface redfish: the inventory, properties and ports come from the
    virtual Redfish BMC's description of the machine, and nothing boots."""
    bmc = bmc_of(fleet, "redfish", 2)
    machine = machine_of(bmc)
    hardware = bmc.machine.hardware
    uuid = _managed(url, "rf-inspect", bmc)
    boots = len(machine.boots)
    baremetal(url, "node", "set", "rf-inspect", "--inspect-interface", "redfish")
    baremetal(url, "node", "inspect", "rf-inspect", "--wait", "60")
    inspected = node(url, uuid)
    assert inspected["provision_state"] == "manageable", inspected["last_error"]
    assert len(machine.boots) == boots  # read out of band: the machine never booted
    props = inspected["properties"]
    assert props["cpus"] == hardware.cpus
    assert props["memory_mb"] == hardware.memory_mb
    assert props["cpu_arch"] == "x86_64"
    sizes = [disk.size_gb for disk in hardware.disks]
    # the root disk: the smallest of 4 GiB or more, else the largest; less 1 GiB
    root = min((g for g in sizes if g >= 4), default=max(sizes))
    assert props["local_gb"] == root - 1
    headers = {"X-OpenStack-Ironic-API-Version": "latest"}
    stored = httpx_get(f"{url}/v1/nodes/{uuid}/inventory", headers)
    inventory = stored["inventory"]
    assert inventory["system_vendor"]["serial_number"] == hardware.serial
    assert [d["serial"] for d in inventory["disks"]] == [d.serial for d in hardware.disks]
    macs = sorted(mac.lower() for mac in hardware.nics)
    assert sorted(i["mac_address"] for i in inventory["interfaces"]) == macs
    ports = httpx_get(f"{url}/v1/ports?node_uuid={uuid}&detail=true", headers)["ports"]
    assert sorted(p["address"] for p in ports) == macs
    assert [p["pxe_enabled"] for p in ports].count(True) == 1


def httpx_get(address: str, headers: dict[str, str]) -> Any:
    answer = httpx.get(address, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("protocol", ["ipmi", "redfish"])
def test_wrong_credentials_keep_the_node_in_enroll(url: str, fleet: Fleet, protocol: str) -> None:
    bmc = bmc_of(fleet, protocol, 1)
    name = f"badpw-{protocol}"
    enroll(url, name, protocol, _info(bmc, password="not-the-password"))
    result = baremetal(url, "node", "manage", name, "--wait", "60", check=False)
    assert result.returncode != 0
    shown = settled(url, name)
    assert shown["provision_state"] == "enroll"
    assert "authentication rejected" in shown["last_error"]
    assert f"127.0.0.1:{bmc.port}" in shown["last_error"]
    assert "get power state" in shown["last_error"]
    assert "not-the-password" not in json.dumps(shown)


def test_unreachable_bmc_keeps_the_node_in_enroll(url: str) -> None:
    port = _free_udp_ports(1)
    enroll(url, "nobmc", "ipmi", {"ipmi_address": "127.0.0.1", "ipmi_port": port})
    started = time.monotonic()
    baremetal(url, "node", "manage", "nobmc", "--wait", "60", check=False)
    shown = settled(url, "nobmc")
    assert time.monotonic() - started < 40  # 3 tries of a 2 s deadline, plus the CLI
    assert shown["provision_state"] == "enroll"
    assert f"IPMI get power state of BMC 127.0.0.1:{port} failed: no answer" in shown["last_error"]


@pytest.mark.parametrize("protocol", ["ipmi", "redfish"])
def test_hanging_bmc_fails_its_node_and_holds_up_no_other(
    url: str, fleet: Fleet, protocol: str
) -> None:
    hung, other = bmc_of(fleet, protocol, 1), bmc_of(fleet, protocol, 2)
    _managed(url, f"hang-{protocol}", hung)
    _managed(url, f"ok-{protocol}", other)
    baremetal(url, "node", "power", "off", f"hang-{protocol}")
    baremetal(url, "node", "power", "off", f"ok-{protocol}")
    machine_of(hung).faults.hang = True
    baremetal(url, "node", "power", "on", f"hang-{protocol}", check=False)
    baremetal(url, "node", "power", "on", f"ok-{protocol}")  # while the other one hangs
    assert machine_of(other).power() is Power.ON
    shown = settled(url, f"hang-{protocol}")
    assert shown["power_state"] == "power off"
    assert "no answer from the BMC within 2 s" in shown["last_error"]
    machine_of(hung).faults.clear()
    baremetal(url, "node", "power", "on", f"hang-{protocol}")
    assert settled(url, f"hang-{protocol}")["power_state"] == "power on"


@pytest.mark.parametrize("protocol", ["ipmi", "redfish"])
def test_lost_packets_are_retried(url: str, fleet: Fleet, protocol: str) -> None:
    bmc = bmc_of(fleet, protocol, 0)
    _managed(url, f"lossy-{protocol}", bmc)
    machine_of(bmc).faults.drop_next = 2
    baremetal(url, "node", "power", "on", f"lossy-{protocol}")
    shown = settled(url, f"lossy-{protocol}")
    assert (shown["power_state"], shown["last_error"]) == ("power on", None)
    assert machine_of(bmc).power() is Power.ON


@pytest.mark.parametrize("protocol", ["ipmi", "redfish"])
def test_power_command_the_bmc_never_carries_out(url: str, fleet: Fleet, protocol: str) -> None:
    bmc = bmc_of(fleet, protocol, 2)
    name = f"ignored-{protocol}"
    _managed(url, name, bmc)
    baremetal(url, "node", "power", "off", name)
    machine_of(bmc).faults.ignore_power = True
    result = baremetal(url, "node", "power", "on", name, check=False)
    assert result.returncode != 0 or settled(url, name)["last_error"]
    shown = settled(url, name)
    assert shown["power_state"] == "power off"
    assert "accepted 'on' but the node did not reach 'power on' within 3 s" in shown["last_error"]
