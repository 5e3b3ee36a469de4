"""The first end-to-end deploy, in the virtual lab: a QEMU machine network-boots into
metalcast's agent, which writes a real bootable disk image and a config drive; the
machine then boots from its own disk and reads the config drive.  Undeploy erases the
disk again.  All through the real CLIs, the real server with its boot services
(dnsmasq, iPXE, HTTP) inside the lab's network namespace, and IPMI to the machine.

Also the failures an operator meets: an image URL that 404s, and a disk too small
for the image (reported by the agent)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_lab_updown import BAREMETAL, Lab, free_udp_base, pids_in

from metalcast.lab.lifecycle import tear_down

# a whole deploy under TCG on a loaded CI machine outlasts the suite's 300 s default
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

#: TCG is slow and CI machines are loaded: generous, as the lab notes advise
DEPLOY_TIMEOUT = "600"


@pytest.fixture
def lab_env(
    start_metalcast_server: Callable[..., Any],
    agent_ramdisk: Any,  # conftest.BuiltRamdisk: the deploy ramdisk with the real agent
    tmp_path: Path,
) -> Iterator[Lab]:
    """A server whose boot services follow a lab namespace of this test's own."""
    netns = f"mce2e{os.getpid() % 100000}"
    env = {
        "METALCAST_BOOT__ENABLED": "true",
        "METALCAST_BOOT__NETNS": netns,
        "METALCAST_BOOT__KERNEL": str(agent_ramdisk.kernel),
        "METALCAST_BOOT__RAMDISK": str(agent_ramdisk.initramfs),
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    }
    with start_metalcast_server(env=env) as server:
        lab = Lab(server.url, tmp_path / "lab", netns, free_udp_base(1))
        lab.state_dir = server.state_dir  # type: ignore[attr-defined]
        try:
            yield lab
        finally:
            with contextlib.suppress(Exception):
                tear_down(lab.lab_dir)
            for pid in pids_in(netns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


def baremetal(lab: Lab, *args: str) -> str:
    """The ``baremetal`` CLI, with room for ``--wait`` on a loaded TCG machine."""
    env = {**os.environ, "OS_ENDPOINT": lab.url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(var, None)
    done = subprocess.run(
        [BAREMETAL, *args], env=env, capture_output=True, text=True,
        timeout=float(DEPLOY_TIMEOUT) + 60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"baremetal {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def serial(lab: Lab) -> str:
    return (lab.lab_dir / "lab-0.serial").read_text(errors="replace")


def wait_for_serial(lab: Lab, marker: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = serial(lab)
        if marker in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{marker!r} not on the serial console:\n{serial(lab)[-3000:]}")


def deployable(lab: Lab, image: Path) -> tuple[str, str]:
    """The image copied where the server may read files from, and its sha256."""
    state_dir: Path = lab.state_dir  # type: ignore[attr-defined]
    target = state_dir / image.name
    shutil.copyfile(image, target)
    return target.as_uri(), hashlib.sha256(target.read_bytes()).hexdigest()


def test_deploy_a_lab_machine_from_its_own_disk_then_undeploy(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    baremetal(lab, "node", "provide", "lab-0", "--wait", DEPLOY_TIMEOUT)
    assert lab.node("lab-0")["provision_state"] == "available"

    url, checksum = deployable(lab, lab_disk_image)
    baremetal(lab,
        "node", "set", "lab-0", "--instance-info", f"image_source={url}",
        "--instance-info", f"image_checksum={checksum}",
    )  # fmt: skip
    drive = tmp_path / "configdrive" / "openstack" / "latest"
    drive.mkdir(parents=True)
    (drive / "meta_data.json").write_text(
        '{"uuid": "e2e", "hostname": "e2e-node.lab", "public_keys": {"k": "ssh-ed25519 AAAA e2e"}}'
    )
    (drive / "user_data").write_text("#cloud-config from the e2e test\n")
    baremetal(lab,
        "node", "deploy", "lab-0", "--config-drive", str(tmp_path / "configdrive"),
        "--wait", DEPLOY_TIMEOUT,
    )  # fmt: skip
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    console = wait_for_serial(lab, "METALCAST-USERDATA")
    assert "METALCAST-DISK-BOOTED root=/dev/vda" in console
    assert "METALCAST-CONFIGDRIVE hostname=e2e-node.lab uuid=e2e keys=1" in console
    assert "METALCAST-USERDATA #cloud-config from the e2e test" in console

    baremetal(lab, "node", "undeploy", "lab-0", "--wait", DEPLOY_TIMEOUT)
    assert lab.node("lab-0")["provision_state"] == "available"
    disk = lab.lab_dir / "lab-0.qcow2"
    head = tmp_path / "head.raw"
    subprocess.run(  # -U: the lab daemon may still hold the disk open
        ["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", str(disk), str(head)],
        check=True, capture_output=True,
    )  # fmt: skip
    with head.open("rb") as handle:
        assert handle.read(2**20) == bytes(2**20)  # partition table and boot code erased


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
        handle.truncate(2 * 2**30)  # 2 GiB of holes for a 1 GiB disk
        handle.write(b"x")
    url, checksum = deployable(lab, big)
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
