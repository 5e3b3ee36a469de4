"""The first end-to-end deploy, in the virtual lab: a QEMU machine network-boots into
metalcast's agent, which writes a real bootable disk image and a config drive; the
machine then boots from its own disk and reads the config drive, all of it seen on
its serial console through IPMI SOL and metalcast's websocket proxy.  The deployed
machine is then rescued (the ramdisk with an SSH login, checked from inside the lab's
namespace) and unrescued (its disk boots again): one machine carries the deploy
through rescue, undeploy and erase, so the lab boots it as few times as it can.  Undeploy erases
the disk's metadata again; manual cleaning with ``erase_devices`` then zeroes both its
disks, checked from the host.  All through the real CLIs, the real server with its boot services
(dnsmasq, iPXE, HTTP) inside the lab's network namespace, and IPMI to the machine.

Also the failures an operator meets: an image URL that 404s, and a disk too small
for the image (reported by the agent)."""

from __future__ import annotations

import http.server
import json
import os
import re
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lablib import API_HEADERS, DEPLOY_TIMEOUT, Lab, baremetal, deploy_and_boot, undeploy
from prometheus_client.parser import text_string_to_metric_families
from secret_scan import register
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

# a whole deploy under TCG on a loaded CI machine outlasts the suite's 300 s default
# (deploy, rescue and unrescue, undeploy and a full erase: eight boots of one machine)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]

RESCUE_PASSWORD = "Lab-Rescue-Pass-93be"
register(RESCUE_PASSWORD)
RESCUE_MODE = "METALCAST-RAMDISK: rescue mode"
_NET_UP = re.compile(r"METALCAST-RAMDISK: net up ([0-9.]+)/[0-9]+ ")


def test_deploy_a_lab_machine_rescue_it_then_undeploy_and_erase(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    watcher = watch_console(lab)

    console = deploy_and_boot(lab, lab_disk_image, tmp_path, hostname="e2e-node.lab")
    assert "METALCAST-DISK-FIRMWARE bios" in console
    check_metrics(lab, lab.node("lab-0")["uuid"])
    # the same boot, seen through the BMC's SOL and metalcast's websocket proxy
    seen = watcher.wait_for(b"METALCAST-USERDATA")
    log = httpx.get(f"{lab.url}/v1/nodes/lab-0/console/log", verify=lab.verify).json()
    assert b"METALCAST-USERDATA" in seen, (log, watcher.ended)
    for text in (
        b"iPXE",
        b"metalcast-agent",
        b"METALCAST-DISK-FIRMWARE bios",
        b"METALCAST-USERDATA",
    ):
        assert text in seen, text
    watcher.stop()

    rescue_over_ssh_then_unrescue(lab, tmp_path)
    undeploy(lab, tmp_path)  # partition table and boot code erased
    erase_both_disks(lab, tmp_path)


def rescue_over_ssh_then_unrescue(lab: Lab, scratch: Path) -> None:
    """``baremetal node rescue --rescue-password``: the machine network-boots the deploy
    ramdisk, whose agent sets the rescue user's password (its hash) and starts
    dropbear; an SSH login with the password from inside the lab's namespace gets a
    shell (a wrong password does not).  ``unrescue`` boots the deployed system from its
    disk again."""
    assert lab.node("lab-0")["rescue_interface"] == "agent"
    booted = lab.serial().count("METALCAST-DISK-BOOTED root=/dev/vda")
    baremetal(lab, "node", "rescue", "lab-0", "--rescue-password", RESCUE_PASSWORD,
              "--wait", DEPLOY_TIMEOUT)  # fmt: skip
    rescued = lab.node("lab-0")
    assert (rescued["provision_state"], rescued["last_error"]) == ("rescue", None)
    console = lab.wait_for_serial(RESCUE_MODE, timeout=120)
    addresses = _NET_UP.findall(console[: console.rindex(RESCUE_MODE)])
    assert addresses, console[-3000:]

    askpass = scratch / "askpass"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$RESCUE_PASSWORD"\n')
    askpass.chmod(0o700)
    login = ssh(lab, addresses[-1], RESCUE_PASSWORD, askpass)
    assert login.returncode == 0, login.stderr
    assert "RESCUE-SHELL 0 " in login.stdout
    refused = ssh(lab, addresses[-1], RESCUE_PASSWORD + "-wrong", askpass)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr

    baremetal(lab, "node", "unrescue", "lab-0", "--wait", DEPLOY_TIMEOUT)
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    assert "hashed_rescue_password" not in node["instance_info"]
    # the deployed system boots from its disk once more
    deadline = time.monotonic() + float(DEPLOY_TIMEOUT)
    while lab.serial().count("METALCAST-DISK-BOOTED root=/dev/vda") <= booted:
        assert time.monotonic() < deadline, lab.serial()[-3000:]
        time.sleep(1)


def ssh(lab: Lab, address: str, password: str, askpass: Path) -> subprocess.CompletedProcess[str]:
    """``ssh rescue@address`` from inside the lab's namespace, the password given by
    an askpass program (OpenSSH reads it from no other place without a terminal)."""
    return subprocess.run(
        ["ip", "netns", "exec", lab.netns, "ssh", "-F", "/dev/null",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
         "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=30",
         f"rescue@{address}", "echo RESCUE-SHELL $(id -u) $(hostname)"],
        env={**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
             "RESCUE_PASSWORD": password},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def erase_both_disks(lab: Lab, scratch: Path) -> None:
    """Manual cleaning with ``erase_devices``: undeploy left the image's data past the
    first MiB of the boot disk; afterwards both disks read as zeros, compared from the
    host with blank qcow2 images of their size (the guest-visible contents, whatever
    clusters QEMU allocated)."""
    node = next(n for n in lab.state()["nodes"] if n["name"] == "lab-0")
    disks = [Path(node["disk"]), Path(node["second_disk"])]
    assert not zeroed(disks[0], scratch), "the deployed image should still be on the disk"
    baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    steps = json.dumps([{"interface": "deploy", "step": "erase_devices"}])
    baremetal(lab, "node", "clean", "lab-0", "--clean-steps", steps, "--wait", DEPLOY_TIMEOUT)
    cleaned = lab.node("lab-0")
    assert (cleaned["provision_state"], cleaned["last_error"]) == ("manageable", None)
    for disk in disks:
        assert zeroed(disk, scratch), f"{disk.name} is not zeroed"
    answer = httpx.get(f"{lab.url}/v1/nodes/lab-0/history", headers=API_HEADERS, verify=lab.verify)
    events = [e["event"] for e in answer.json()["history"]]
    erased = [e for e in events if e.startswith("Agent: erase_devices succeeded")]
    assert len(erased) == 1 and "(/dev/vda: zeroout, 2.0 GiB in" in erased[0], events[-5:]
    assert "/dev/vdb: zeroout, 3.0 GiB in" in erased[0], erased


def zeroed(disk: Path, scratch: Path) -> bool:
    """Whether a qcow2 disk reads as zeros all through (``qemu-img compare`` with a
    blank image of its size; ``-U``: the machine may hold it open)."""
    info = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(disk)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    blank = scratch / f"blank-{disk.name}"
    size = str(json.loads(info.stdout)["virtual-size"])
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(blank), size], check=True,
                   capture_output=True)  # fmt: skip
    compared = subprocess.run(
        ["qemu-img", "compare", "-U", str(disk), str(blank)], capture_output=True, text=True
    )
    blank.unlink()
    assert compared.returncode in (0, 1), compared.stderr
    return compared.returncode == 0


class ConsoleWatcher:
    """Everything a websocket console connection receives, gathered by a thread."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None) -> None:
        options: dict[str, Any] = {"ssl": ssl_context} if ssl_context else {}
        # it only listens: a quiet console is no reason to hang up, whatever the
        # pong times on a loaded TCG host
        self._ws = connect(url, open_timeout=60, ping_interval=None, **options)
        self._changed = threading.Condition()
        self.data = bytearray()
        self.ended = ""
        self._thread = threading.Thread(target=self._gather, daemon=True)
        self._thread.start()

    def _gather(self) -> None:
        try:
            with self._ws:  # websockets wants its connections used as context managers
                for frame in self._ws:
                    with self._changed:
                        self.data += frame if isinstance(frame, bytes) else frame.encode()
                        self._changed.notify_all()
        except ConnectionClosed as exc:
            self.ended = repr(exc)
        else:
            self.ended = f"closed: {self._ws.close_code} {self._ws.close_reason}"

    def wait_for(self, text: bytes, timeout: float = 120) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: text in self.data, timeout)
            return bytes(self.data)

    def stop(self) -> None:
        self._ws.close()
        self._thread.join(timeout=30)


def watch_console(lab: Lab) -> ConsoleWatcher:
    """Enable lab-0's ``ipmi-sol`` console and connect to it through the proxy."""
    baremetal(lab, "node", "set", "lab-0", "--console-interface", "ipmi-sol")
    baremetal(lab, "node", "console", "enable", "lab-0")
    deadline = time.monotonic() + 120
    while True:
        shown = httpx.get(
            f"{lab.url}/v1/nodes/lab-0/states/console",
            headers={"X-OpenStack-Ironic-API-Version": "1.60"},
            verify=lab.verify,
        ).json()
        if shown["console_enabled"]:
            break
        assert time.monotonic() < deadline, f"console not enabled: {lab.node('lab-0')}"
        time.sleep(0.5)
    verify = lab.verify
    return ConsoleWatcher(shown["console_info"]["url"], verify if verify is not True else None)


def check_metrics(lab: Lab, uuid: str) -> None:
    """``curl /metrics`` after the deploy: the deploy in the transition and agent-phase
    metrics, and the machine's sensors read from its virtual IPMI BMC."""

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = httpx.get(f"{lab.url}/metrics", verify=lab.verify)
        assert response.status_code == 200, response.text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def got(name: str, **labels: str) -> float:
        return scrape().get((name, frozenset(labels.items())), 0.0)

    for event, old, new in [
        ("deploy", "available", "deploying"),
        ("wait", "deploying", "wait call-back"),
        ("done", "deploying", "active"),
    ]:
        labels = {"event": event, "from_state": old, "to_state": new}
        assert got("metalcast_provision_transitions_total", **labels) == 1, labels
    assert got("metalcast_provision_state_duration_seconds_count", state="wait call-back") == 1
    deployed = {"verb": "deploy", "result": "succeeded"}
    assert got("metalcast_provision_verb_duration_seconds_count", **deployed) == 1
    wrote = {"command": "write_image", "status": "succeeded"}
    assert got("metalcast_agent_commands_total", **wrote) == 1
    assert got("metalcast_image_write_bytes_total") > 0
    # the machine runs its deployed system: its BMC reports it powered
    sensor = {"node": uuid, "sensor": "CPU Temp"}
    deadline = time.monotonic() + 60
    while got("metalcast_sensor_temperature_celsius", **sensor) != 45.0:
        assert time.monotonic() < deadline, "no CPU temperature of the running machine"
        time.sleep(1)


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_image_url_that_404s_and_a_disk_too_small_fail_the_deploy(
    lab_env: Lab, tmp_path: Path
) -> None:
    lab = lab_env
    done = lab.run("up", "--nodes", "1", "--disk-size", "1", "--netns", lab.netns,
                   "--base-port", str(lab.base_port))  # fmt: skip
    assert done.returncode == 0, done.stderr
    baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    baremetal(lab, "node", "provide", "lab-0", "--wait", DEPLOY_TIMEOUT)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        missing = f"http://127.0.0.1:{httpd.server_address[1]}/nope.raw"
        baremetal(lab,
            "node", "set", "lab-0", "--instance-info", f"image_source={missing}",
            "--instance-info", f"image_checksum={'a' * 64}",
        )  # fmt: skip
        failed = _deploy_and_fail(lab)
        assert f"Image download from {missing} failed: HTTP 404" in failed["last_error"]
    finally:
        httpd.shutdown()

    big = tmp_path / "big.raw"
    with big.open("wb") as handle:
        # holes larger than both disks (1 GiB and the second's 2 GiB): the agent
        # would write an image that fits the second disk onto it
        handle.truncate(3 * 2**30)
        handle.write(b"x")
    url, checksum = lab.deployable(big)
    baremetal(lab, "node", "undeploy", "lab-0", "--wait", DEPLOY_TIMEOUT)
    baremetal(lab,
        "node", "set", "lab-0", "--instance-info", f"image_source={url}",
        "--instance-info", f"image_checksum={checksum}",
    )  # fmt: skip
    failed = _deploy_and_fail(lab)
    assert "is too small for the image" in failed["last_error"], failed["last_error"]
    assert "The agent's write_image failed" in failed["last_error"]


def _deploy_and_fail(lab: Lab) -> dict[str, Any]:
    baremetal(lab, "node", "deploy", "lab-0")
    deadline = time.monotonic() + float(DEPLOY_TIMEOUT)
    while time.monotonic() < deadline:
        node = lab.node("lab-0")
        if node["provision_state"] == "deploy failed":
            return node
        assert node["provision_state"] in ("deploying", "wait call-back"), node
        time.sleep(1)
    raise AssertionError(f"deploy did not fail: {lab.node('lab-0')}")
