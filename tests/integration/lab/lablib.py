"""Helpers of the lab's end-to-end tests: a lab brought up with the real CLI
(:class:`Lab`), the ``baremetal`` client, serial consoles, and the processes and
namespaces a test must find and remove by PID and name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from metalcast.lab.lifecycle import tear_down

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
API_HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
#: TCG is slow and CI machines are loaded: generous, as the lab notes advise
DEPLOY_TIMEOUT = "600"


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def free_udp_base(count: int) -> int:
    """A port P such that UDP P … P+count-1 are free on 127.0.0.1."""
    for _ in range(100):
        base = random.randrange(40000, 60000)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError("no free UDP ports")


def netns_exists(name: str) -> bool:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return name in [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def pids_in(netns: str) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(pid) for pid in listed.stdout.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove_lab(lab_dir: Path, netns: str, *, cacert: Path | None = None) -> None:
    """Whatever happened: lab down, then kill what is left in the namespace by PID,
    then delete the namespace."""
    with contextlib.suppress(Exception):
        tear_down(lab_dir, cacert=cacert)
    for pid in pids_in(netns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


def _client_env(url: str, cacert: Path | None) -> dict[str, str]:
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN", "OS_CACERT"):
        env.pop(var, None)
    if cacert is not None:
        env["OS_CACERT"] = str(cacert)
    return env


@dataclass
class Lab:
    """A lab this test brings up with the real CLI, in a directory and namespace of
    its own."""

    url: str
    lab_dir: Path
    netns: str
    base_port: int
    #: the server's state directory, when the test started the server itself
    state_dir: Path | None = None
    #: a directory that server may read local images from (its images.file_roots)
    images_dir: Path | None = None
    #: what that server logged so far
    server_logs: Callable[[], str] | None = None
    #: the CA the server's certificate comes from, when it serves HTTPS
    cacert: Path | None = None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """How httpx verifies the server."""
        return ssl.create_default_context(cafile=self.cacert) if self.cacert else True

    def run(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        """``metalcast --url URL [--cacert CA] lab ARGS --lab-dir DIR``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        trust = ["--cacert", str(self.cacert)] if self.cacert else []
        command = [
            sys.executable, "-m", "metalcast.cli.main", "--url", url or self.url, *trust,
            "lab", *args, "--lab-dir", str(self.lab_dir),
        ]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=300, check=False
        )

    def up(self, nodes: int = 2, *extra: str) -> subprocess.CompletedProcess[str]:
        done = self.run(
            "up", "--nodes", str(nodes), "--netns", self.netns,
            "--base-port", str(self.base_port), *extra,
        )  # fmt: skip
        assert done.returncode == 0, f"lab up failed:\n{done.stdout}\n{done.stderr}"
        return done

    def down(self) -> subprocess.CompletedProcess[str]:
        done = self.run("down")
        assert done.returncode == 0, f"lab down failed:\n{done.stdout}\n{done.stderr}"
        return done

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.lab_dir / "lab.json").read_text())
        return loaded

    def node(self, ident: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/nodes/{ident}", headers=API_HEADERS, verify=self.verify)
        answer.raise_for_status()
        shown: dict[str, Any] = answer.json()
        return shown

    def node_names(self) -> list[str]:
        answer = httpx.get(f"{self.url}/v1/nodes", headers=API_HEADERS, verify=self.verify)
        answer.raise_for_status()
        return sorted(node["name"] for node in answer.json()["nodes"])

    def ports(self, ident: str) -> list[str]:
        answer = httpx.get(
            f"{self.url}/v1/nodes/{ident}/ports", headers=API_HEADERS, verify=self.verify
        )
        answer.raise_for_status()
        return [port["address"] for port in answer.json()["ports"]]

    def baremetal(self, *args: str, timeout: float = 180) -> str:
        """The ``baremetal`` CLI against this lab's server; its stdout."""
        done = subprocess.run(
            [BAREMETAL, *args], env=_client_env(self.url, self.cacert), capture_output=True,
            text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"baremetal {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def serial(self, node: str = "lab-0") -> str:
        """The machine's serial console so far."""
        return (self.lab_dir / f"{node}.serial").read_text(errors="replace")

    def wait_for_serial(self, marker: str, *, node: str = "lab-0", timeout: float = 300) -> str:
        """The serial console once ``marker`` is on it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.serial(node)
            if marker in text:
                return text
            time.sleep(0.5)
        raise AssertionError(f"{marker!r} not on the serial console:\n{self.serial(node)[-3000:]}")

    def dnsmasq_log(self) -> str:
        """What the server's dnsmasq logged (DHCP and TFTP)."""
        assert self.state_dir is not None, "the lab's server was not started by the test"
        return (self.state_dir / "boot" / "dnsmasq.log").read_text(errors="replace")

    def deployable(self, image: Path) -> tuple[str, str]:
        """The image copied where the server may read files from: its URL and sha256."""
        assert self.images_dir is not None, "the lab's server was not started by the test"
        target = self.images_dir / image.name
        shutil.copyfile(image, target)
        return target.as_uri(), hashlib.sha256(target.read_bytes()).hexdigest()


def baremetal(lab: Lab, *args: str) -> str:
    """The ``baremetal`` CLI, with room for ``--wait`` on a loaded TCG machine."""
    return lab.baremetal(*args, timeout=float(DEPLOY_TIMEOUT) + 60)


def write_config_drive(directory: Path, *, hostname: str, user_data: str) -> Path:
    """A config drive tree (``openstack/latest``) for ``baremetal node deploy
    --config-drive``; its root."""
    latest = directory / "openstack" / "latest"
    latest.mkdir(parents=True)
    meta_data = {"uuid": "e2e", "hostname": hostname, "public_keys": {"k": "ssh-ed25519 AAAA e2e"}}
    (latest / "meta_data.json").write_text(json.dumps(meta_data))
    (latest / "user_data").write_text(user_data)
    return directory


def disk_head(disk: Path, scratch: Path) -> bytes:
    """The first MiB of a machine's qcow2 disk."""
    head = scratch / "head.raw"
    subprocess.run(  # -U: the lab daemon may still hold the disk open
        ["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", str(disk), str(head)],
        check=True, capture_output=True,
    )  # fmt: skip
    with head.open("rb") as handle:
        return handle.read(2**20)


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def qemu_command_line(lab: Lab) -> list[str]:
    """The arguments of the one QEMU running in the lab's namespace."""
    qemus = [args for args in map(_command_line, pids_in(lab.netns)) if "-qmp" in args]
    assert len(qemus) == 1, f"QEMU processes in {lab.netns}: {qemus}"
    return qemus[0]


def deploy_and_boot(
    lab: Lab,
    image: Path,
    scratch: Path,
    *,
    hostname: str,
    managed: bool = False,
    roots: tuple[str, ...] = ("/dev/vda",),
    automated_clean: bool = True,
) -> str:
    """manage (unless ``managed`` already), provide, deploy with a config drive: the
    node is active and its machine booted its disk (one of ``roots``: the members of
    a RAID-1 carry the same labels); the serial console then.

    ``automated_clean=False`` turns the node's automated cleaning off first, so that
    ``provide`` does not boot the ramdisk: one TCG boot fewer for the tests whose
    subject is not cleaning."""
    if not automated_clean:
        baremetal(lab, "node", "set", "lab-0", "--no-automated-clean")
    if not managed:
        baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    baremetal(lab, "node", "provide", "lab-0", "--wait", DEPLOY_TIMEOUT)
    assert lab.node("lab-0")["provision_state"] == "available"
    url, checksum = lab.deployable(image)
    baremetal(lab,
        "node", "set", "lab-0", "--instance-info", f"image_source={url}",
        "--instance-info", f"image_checksum={checksum}",
    )  # fmt: skip
    drive = write_config_drive(
        scratch / "configdrive", hostname=hostname, user_data=f"#cloud-config {hostname}\n"
    )
    baremetal(lab,
        "node", "deploy", "lab-0", "--config-drive", str(drive), "--wait", DEPLOY_TIMEOUT,
    )  # fmt: skip
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    console = lab.wait_for_serial("METALCAST-USERDATA")
    assert any(f"METALCAST-DISK-BOOTED root={root}" in console for root in roots), roots
    assert f"METALCAST-CONFIGDRIVE hostname={hostname} uuid=e2e keys=1" in console
    assert f"METALCAST-USERDATA #cloud-config {hostname}" in console
    return console


def undeploy(lab: Lab, scratch: Path, *, cleaned: bool = True) -> None:
    """``undeploy``: the node is available again and, when automated cleaning is on
    (``cleaned``), the first MiB of its disk is erased (partition table, boot code)."""
    baremetal(lab, "node", "undeploy", "lab-0", "--wait", DEPLOY_TIMEOUT)
    assert lab.node("lab-0")["provision_state"] == "available"
    head = disk_head(lab.lab_dir / "lab-0.qcow2", scratch)
    assert (head == bytes(2**20)) is cleaned
