"""Firmware updates end to end: ``baremetal node clean`` with the step
``firmware.update`` → metalcast's conductor → sushy → the lab's virtual Redfish BMC,
which fetches the image from a loopback server itself; ``baremetal node firmware
list`` and ``metalcast node firmware`` show the versions before and after, and every
refusal leaves the node as it was with a message saying what to fix.  The image URL
carries credentials: they reach the BMC and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bmclab import baremetal, enroll, history, node, settled
from firmware_images import PASSWORD as IMAGE_PASSWORD
from firmware_images import ImageServer, image, serving

from metalcast.lab.bmc.fleet import simulated_machines
from metalcast.lab.bmc.redfish import RedfishBmc

USER, PASSWORD = "admin", "lab-pass-fw"
SERVER_ENV = {
    "METALCAST_CONDUCTOR__BMC_CALL_TIMEOUT": "5",
    "METALCAST_CONDUCTOR__BMC_RETRY_BACKOFF": "0.05",
    "METALCAST_CONDUCTOR__BMC_POLL_INTERVAL": "0.2",
}
LATEST = {"X-OpenStack-Ironic-API-Version": "latest"}


@pytest.fixture(scope="module")
def bmc() -> Iterator[RedfishBmc]:
    served = RedfishBmc(simulated_machines(3, prefix="fwc"), username=USER, password=PASSWORD)
    served.firmware.flash_seconds = 1.0
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def server(start_metalcast_server: Callable[..., Any]) -> Iterator[Any]:
    with start_metalcast_server(env=SERVER_ENV) as running:
        yield running


def _managed(url: str, bmc: RedfishBmc, index: int, name: str) -> str:
    machine = bmc.machines[index]
    info = {
        "redfish_address": bmc.url,
        "redfish_system_id": bmc.system_path(machine),
        "redfish_username": USER,
        "redfish_password": PASSWORD,
    }
    uuid = enroll(url, name, "redfish", info)
    # nothing boots: the firmware step runs on the BMC, no agent is needed
    baremetal(url, "node", "set", uuid, "--deploy-interface", "fake", "--boot-interface", "fake")
    baremetal(url, "node", "manage", uuid, "--wait", "60")
    return uuid


def _firmware_list(url: str, uuid: str) -> dict[str, dict[str, Any]]:
    shown = json.loads(baremetal(url, "node", "firmware", "list", uuid, "-f", "json").stdout)
    return {c["component"]: c for c in shown}


def _clean(
    url: str, uuid: str, settings: list[dict[str, Any]], *, wait: bool = True
) -> subprocess.CompletedProcess[str]:
    steps = [{"interface": "firmware", "step": "update", "args": {"settings": settings}}]
    waiting = ["--wait", "120"] if wait else []
    return baremetal(
        url, "node", "clean", uuid, "--clean-steps", json.dumps(steps), *waiting, check=False
    )


def _while_updating(url: str, uuid: str) -> dict[str, Any]:
    """The node as shown while its firmware update reports progress."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = httpx.get(f"{url}/v1/nodes/{uuid}", headers=LATEST).json()
        if "step_progress" in shown["driver_internal_info"]:
            return dict(shown)
        time.sleep(0.05)
    raise AssertionError("no progress was shown while the firmware was updated")


def test_clean_step_updates_firmware_and_the_list_shows_before_and_after(
    server: Any, bmc: RedfishBmc, images: ImageServer
) -> None:
    url = server.url
    uuid = _managed(url, bmc, 0, "fw-update")
    # verify read the components: the BMC's, the BIOS and the NIC of this system
    before = _firmware_list(url, uuid)
    assert {name: c["current_version"] for name, c in before.items()} == {
        "bios": "1.0.0",
        "bmc": "1.00.0",
        "NIC-fwc-0": "14.2.1",
    }
    assert before["bios"]["last_version_flashed"] is None

    images.files["/bios-2.4.0.bin"] = image("2.4.0", size=200_000)
    images.files["/bmc-1.20.0.bin"] = image("1.20.0")
    settings = [
        {"component": "bios", "url": images.url("/bios-2.4.0.bin")},
        {"component": "bmc", "url": images.url("/bmc-1.20.0.bin"), "wait": 1},
    ]
    started = _clean(url, uuid, settings, wait=False)
    assert started.returncode == 0, started.stderr
    during = _while_updating(url, uuid)
    progress = during["driver_internal_info"]["step_progress"]
    assert progress["step"] == "firmware.update"
    assert progress["target"] in ("bios", "bmc")
    assert 0 <= progress["percent"] <= 100
    # the step is shown with the URL's password masked
    shown_url = during["clean_step"]["args"]["settings"][0]["url"]
    assert shown_url == f"http://fwuser:******@127.0.0.1:{images.port}/bios-2.4.0.bin"
    done = settled(url, uuid, timeout=120)
    assert done["provision_state"] == "manageable", done["last_error"]
    assert "step_progress" not in node(url, uuid)["driver_internal_info"]

    after = _firmware_list(url, uuid)
    assert after["bios"]["initial_version"] == "1.0.0"
    assert after["bios"]["current_version"] == "2.4.0"
    assert after["bios"]["last_version_flashed"] == "2.4.0"
    assert after["bmc"]["current_version"] == "1.20.0"
    assert after["NIC-fwc-0"]["current_version"] == "14.2.1"
    assert after["NIC-fwc-0"]["last_version_flashed"] is None

    events = [e["event"] for e in history(url, uuid)]
    assert "Firmware updated: bios 1.0.0 -> 2.4.0, bmc 1.00.0 -> 1.20.0" in events

    # the BMC fetched both images; the conductor fetched nothing
    assert images.requests == ["/bios-2.4.0.bin", "/bmc-1.20.0.bin"]
    assert bmc.firmware.fetched == [s["url"] for s in settings]

    # metalcast's own CLI shows the same
    shown = subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", "--url", url, "--json",
         "node", "firmware", uuid],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    listed = {c["component"]: c for c in json.loads(shown.stdout)}
    assert listed["bios"]["current_version"] == "2.4.0"
    assert listed["bios"]["vendor"] == "metalcast lab"

    # the image URLs' credentials are nowhere but at the BMC
    shown_node = httpx.get(f"{url}/v1/nodes/{uuid}", headers=LATEST).text
    assert IMAGE_PASSWORD not in shown_node
    for path in server.files():
        assert IMAGE_PASSWORD.encode() not in path.read_bytes(), path


def test_refusals_leave_the_node_and_its_firmware_as_they_were(
    server: Any, bmc: RedfishBmc, images: ImageServer
) -> None:
    url = server.url
    uuid = _managed(url, bmc, 1, "fw-refusals")
    fetched = len(bmc.firmware.fetched)

    # not http(s): refused at once, nothing staged, nothing fetched
    refused = _clean(url, uuid, [{"component": "bios", "url": "ftp://u:Ftp-Pass-1@h/x.bin"}])
    assert refused.returncode != 0
    assert "'url' must be an http or https URL" in refused.stderr
    assert "Ftp-Pass-1" not in refused.stderr
    refused = _clean(url, uuid, [{"component": "bios"}])
    assert "'url' must be an http or https URL" in refused.stderr
    assert node(url, uuid)["provision_state"] == "manageable"

    # a component the node does not have: the step fails, naming the ones it has
    images.files["/x.bin"] = image("3.0.0")
    failed = _clean(url, uuid, [{"component": "cpld", "url": images.url("/x.bin")}])
    assert failed.returncode != 0
    shown = settled(url, uuid)
    assert shown["provision_state"] == "clean failed"
    assert "no firmware component(s) cpld" in shown["last_error"]
    assert "its components: NIC-fwc-1, bios, bmc" in shown["last_error"]
    assert len(bmc.firmware.fetched) == fetched

    # an image the BMC rejects: clean failed, the version kept, no credentials shown
    baremetal(url, "node", "manage", uuid, "--wait", "60")
    images.files["/unversioned.bin"] = image(None)
    failed = _clean(url, uuid, [{"component": "bios", "url": images.url("/unversioned.bin")}])
    shown = settled(url, uuid)
    assert shown["provision_state"] == "clean failed"
    assert "no METALCAST_FIRMWARE_VERSION" in shown["last_error"]
    assert IMAGE_PASSWORD not in shown["last_error"]
    assert "fwuser:******@" in shown["last_error"]
    assert _firmware_list(url, uuid)["bios"]["current_version"] == "1.0.0"


def test_without_the_ramdisk_and_as_a_service_step(
    server: Any, bmc: RedfishBmc, images: ImageServer
) -> None:
    url = server.url
    uuid = _managed(url, bmc, 2, "fw-service")
    images.files["/nic-15.1.0.bin"] = image("15.1.0")
    images.files["/bios-3.0.0.bin"] = image("3.0.0")
    # the step runs on the BMC: cleaning without the ramdisk may run it
    nic = [{"component": "NIC-fwc-2", "url": images.url("/nic-15.1.0.bin")}]
    steps = [{"interface": "firmware", "step": "update", "args": {"settings": nic}}]
    baremetal(
        url, "node", "clean", uuid, "--clean-steps", json.dumps(steps), "--disable-ramdisk",
        "--wait", "120",
    )  # fmt: skip
    assert _firmware_list(url, uuid)["NIC-fwc-2"]["current_version"] == "15.1.0"

    baremetal(url, "node", "provide", uuid, "--wait", "120")
    baremetal(url, "node", "deploy", uuid, "--wait", "120")
    assert settled(url, uuid)["provision_state"] == "active"
    bios = [{"component": "bios", "url": images.url("/bios-3.0.0.bin")}]
    steps = [{"interface": "firmware", "step": "update", "args": {"settings": bios}}]
    baremetal(url, "node", "service", uuid, "--service-steps", json.dumps(steps), "--wait", "120")
    shown = settled(url, uuid)
    assert shown["provision_state"] == "active", shown["last_error"]
    listed = _firmware_list(url, uuid)
    assert listed["bios"]["current_version"] == "3.0.0"
    assert listed["bios"]["last_version_flashed"] == "3.0.0"


def _at(version: int) -> dict[str, str]:
    return {"X-OpenStack-Ironic-API-Version": f"1.{version}"}


def test_firmware_endpoint_follows_ironic_versions(server: Any, bmc: RedfishBmc) -> None:
    url = server.url
    first = _managed(url, bmc, 0, "fw-versions")
    path = f"{url}/v1/nodes/{first}/firmware"
    newest = int(httpx.get(f"{url}/v1").json()["version"]["version"].split(".")[1])
    # below 1.86 (or below the served maximum, where the features above it start)
    older = httpx.get(path, headers=_at(min(86, newest) - 1))
    assert older.status_code == 404
    latest = httpx.get(path, headers=LATEST).json()["firmware"]
    assert {"vendor", "model", "serial_number"} <= set(latest[0])
    some = httpx.get(path, params={"fields": "component"}, headers=LATEST).json()["firmware"]
    assert set(some[0]) == {"created_at", "updated_at", "component"}
    if newest < 114:
        return  # 1.86 to 1.113 are not served yet: nothing to tell them apart by
    at_86 = httpx.get(path, headers=_at(86)).json()
    assert set(at_86["firmware"][0]) == {
        "created_at", "updated_at", "component", "initial_version", "current_version",
        "last_version_flashed",
    }  # fmt: skip
    no_vendor = httpx.get(path, params={"fields": "vendor"}, headers=_at(86))
    assert no_vendor.status_code == 400
    assert "require at least API version 1.114" in no_vendor.text
