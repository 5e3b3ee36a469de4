"""``metalcast lab up`` and ``lab down`` against a real ``metalcast server``: QEMU
machines (TCG) in a network namespace, enrolled as ipmi nodes, driven by the
``baremetal`` client through the lab daemon's IPMI BMCs; then all of it removed.

Every lab here uses a namespace of this test run's own (``--netns``), never the
default ``metalcast-lab`` a developer's lab may be using.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from metalcast.cli.main import app
from metalcast.lab.lifecycle import tear_down

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or any(shutil.which(t) is None for t in ("ip", "ipmitool", "qemu-system-x86_64", "qemu-img")),
    reason="needs root, ip, ipmitool and QEMU",
)

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
MACS = ("52:54:00:6d:63:00", "52:54:00:6d:63:01")
API_HEADERS = {"X-OpenStack-Ironic-API-Version": "1.51"}


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


@dataclass
class Lab:
    """A lab this test brings up with the real CLI, in a directory and namespace of
    its own."""

    url: str
    lab_dir: Path
    netns: str
    base_port: int

    def run(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        """``metalcast --url URL lab ARGS --lab-dir DIR``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        command = [
            sys.executable, "-m", "metalcast.cli.main", "--url", url or self.url,
            "lab", *args, "--lab-dir", str(self.lab_dir),
        ]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=300, check=False
        )

    def up(self, nodes: int = 2) -> subprocess.CompletedProcess[str]:
        done = self.run(
            "up", "--nodes", str(nodes), "--netns", self.netns,
            "--base-port", str(self.base_port),
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
        answer = httpx.get(f"{self.url}/v1/nodes/{ident}", headers=API_HEADERS)
        answer.raise_for_status()
        shown: dict[str, Any] = answer.json()
        return shown

    def node_names(self) -> list[str]:
        answer = httpx.get(f"{self.url}/v1/nodes", headers=API_HEADERS)
        answer.raise_for_status()
        return sorted(node["name"] for node in answer.json()["nodes"])

    def ports(self, ident: str) -> list[str]:
        answer = httpx.get(f"{self.url}/v1/nodes/{ident}/ports", headers=API_HEADERS)
        answer.raise_for_status()
        return [port["address"] for port in answer.json()["ports"]]

    def baremetal(self, *args: str) -> str:
        env = {**os.environ, "OS_ENDPOINT": self.url, "OS_AUTH_TYPE": "none"}
        for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
            env.pop(var, None)
        done = subprocess.run(
            [BAREMETAL, *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"baremetal {' '.join(args)}:\n{done.stderr}"
        return done.stdout


@pytest.fixture
def lab(metalcast_url: str, tmp_path: Path) -> Iterator[Lab]:
    netns = f"mclab-t{os.getpid()}"
    made = Lab(metalcast_url, tmp_path / "lab", netns, free_udp_base(2))
    try:
        yield made
    finally:
        # whatever happened: lab down, then kill what is left in the namespace by PID
        with contextlib.suppress(Exception):
            tear_down(made.lab_dir)
        for pid in pids_in(netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


@pytest.mark.e2e
def test_lab_up_enrols_qemu_machines_and_lab_down_removes_them(lab: Lab) -> None:
    shown = lab.up().stdout

    # the network: namespace, bridge with both addresses, a tap per machine on it
    assert netns_exists(lab.netns)
    bridge = subprocess.run(
        ["ip", "-n", lab.netns, "-j", "addr", "show", "dev", "mcbr0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    addresses = {
        f"{a['local']}/{a['prefixlen']}" for a in json.loads(bridge.stdout)[0]["addr_info"]
    }
    assert {"192.168.77.1/24", "fd77::1/64"} <= addresses
    for tap in ("mctap0", "mctap1"):
        link = subprocess.run(
            ["ip", "-n", lab.netns, "-j", "link", "show", "dev", tap],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(link.stdout)[0]["master"] == "mcbr0"

    # the state file, the daemon, the table
    state = lab.state()
    assert (lab.lab_dir / "lab.json").stat().st_mode & 0o777 == 0o600
    daemon = state["pid"]
    assert alive(daemon)
    for mac, node in zip(MACS, state["nodes"], strict=True):
        assert node["mac"] == mac
        assert mac in shown and node["name"] in shown
        assert Path(node["disk"]).is_file()

    # the nodes and their ports
    assert lab.node_names() == ["lab-0", "lab-1"]
    for index, mac in enumerate(MACS):
        node = lab.node(f"lab-{index}")
        assert node["driver"] == "ipmi"
        assert node["provision_state"] == "enroll"
        info = node["driver_info"]
        assert info["ipmi_address"] == "127.0.0.1"
        assert int(info["ipmi_port"]) == lab.base_port + index
        assert info["ipmi_username"] == "admin"
        assert node["properties"] == {
            "cpus": 1,
            "memory_mb": 1024,
            "local_gb": 2,
            "cpu_arch": "x86_64",
        }
        assert lab.ports(f"lab-{index}") == [mac]

    # metalcast reaches the QEMU machines through their BMCs
    lab.baremetal("node", "manage", "lab-0", "--wait", "60")
    node = lab.node("lab-0")
    assert (node["provision_state"], node["power_state"]) == ("manageable", "power off")
    assert pids_in(lab.netns) == []
    lab.baremetal("node", "power", "on", "lab-0")
    wait_for(lambda: lab.node("lab-0")["power_state"] == "power on", timeout=60, what="power on")
    qemus = pids_in(lab.netns)
    assert len(qemus) == 1
    cmdline = Path(f"/proc/{qemus[0]}/cmdline").read_text().split("\0")
    assert cmdline[0] == "qemu-system-x86_64"
    assert "ifname=mctap0" in ",".join(cmdline)

    # up twice: it says so, changes nothing
    again = lab.run("up", "--nodes", "2", "--netns", lab.netns)
    assert again.returncode == 0
    assert "already up" in again.stdout
    assert lab.state()["pid"] == daemon

    status = lab.run("status")
    assert status.returncode == 0
    assert "on" in status.stdout and str(qemus[0]) in status.stdout

    gone = lab.down().stdout
    assert "lab-0, lab-1" in gone
    assert not netns_exists(lab.netns)
    assert not alive(daemon)
    assert not alive(qemus[0])
    assert lab.node_names() == []
    assert not (lab.lab_dir / "lab.json").exists()
    assert not Path(state["nodes"][0]["disk"]).exists()
    assert Path(state["nodes"][0]["serial_log"]).exists()  # kept without --purge

    twice = lab.down()
    assert "no lab is up" in twice.stdout


@pytest.mark.e2e
def test_lab_down_forces_an_active_node_out(lab: Lab) -> None:
    lab.up(nodes=1)
    # a fake deploy: the node gets active without a deploy ramdisk
    lab.baremetal("node", "set", "lab-0", "--boot-interface", "fake", "--deploy-interface", "fake")
    for verb in ("manage", "provide", "deploy"):
        lab.baremetal("node", verb, "lab-0", "--wait", "120")
    assert lab.node("lab-0")["provision_state"] == "active"

    gone = lab.down().stdout

    assert "nodes deleted: lab-0" in gone
    assert lab.node_names() == []
    assert not netns_exists(lab.netns)


@pytest.mark.e2e
def test_lab_down_after_the_daemon_died_kills_its_qemu(lab: Lab) -> None:
    lab.up(nodes=1)
    lab.baremetal("node", "manage", "lab-0", "--wait", "60")
    lab.baremetal("node", "power", "on", "lab-0")
    wait_for(lambda: len(pids_in(lab.netns)) == 1, timeout=60, what="QEMU in the namespace")
    qemu = pids_in(lab.netns)[0]
    daemon = lab.state()["pid"]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not alive(daemon), timeout=30, what="the daemon's death")

    status = lab.run("status")
    assert "daemon NOT running" in status.stdout
    left_over = lab.run("up", "--nodes", "1", "--netns", lab.netns)
    assert left_over.returncode == 1
    assert "run `metalcast lab down` first" in left_over.stderr

    gone = lab.down().stdout

    assert f"stray QEMU processes killed: [{qemu}]" in gone
    assert not alive(qemu)
    assert not netns_exists(lab.netns)
    assert lab.node_names() == []


@pytest.mark.e2e
def test_lab_up_without_a_server_creates_nothing(lab: Lab) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"

    done = lab.run("up", "--nodes", "1", "--netns", lab.netns, url=nobody)

    assert done.returncode == 1
    expected = f"no metalcast server answers at {nobody}: start one with `metalcast server`"
    assert expected in " ".join(done.stderr.split())
    assert not netns_exists(lab.netns)
    assert not (lab.lab_dir / "lab.json").exists()


@pytest.mark.e2e
def test_lab_up_refuses_taken_bmc_ports_and_node_names(lab: Lab) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", lab.base_port + 1))
        done = lab.run(
            "up", "--nodes", "2", "--netns", lab.netns, "--base-port", str(lab.base_port)
        )
    assert done.returncode == 1
    assert f"UDP port {lab.base_port + 1} on 127.0.0.1 is taken" in done.stderr

    lab.baremetal("node", "create", "--driver", "fake-hardware", "--name", "lab-0")
    done = lab.run("up", "--nodes", "1", "--netns", lab.netns, "--base-port", f"{lab.base_port}")
    assert done.returncode == 1
    assert "has a node lab-0 already" in done.stderr
    assert not netns_exists(lab.netns)


def test_lab_up_and_down_need_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    runner = CliRunner()

    up = runner.invoke(app, ["lab", "up", "--lab-dir", str(tmp_path / "lab")])
    nothing = runner.invoke(app, ["lab", "down", "--lab-dir", str(tmp_path / "lab")])

    assert up.exit_code == 1
    assert "lab up needs root to create network namespaces" in " ".join(up.output.split())
    assert nothing.exit_code == 0
    assert "no lab is up" in nothing.output
