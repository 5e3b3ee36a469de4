"""``metalcast lab up`` and ``lab down`` against a real ``metalcast server``: QEMU
machines (TCG) in a network namespace, enrolled as ipmi nodes, driven by the
``baremetal`` client through the lab daemon's IPMI BMCs; then all of it removed.

Every lab here uses a namespace of this test run's own (``--netns``), never the
default ``metalcast-lab`` a developer's lab may be using.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lablib import Lab, alive, free_udp_base, netns_exists, pids_in, remove_lab, wait_for
from typer.testing import CliRunner

from metalcast.cli.main import app

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or any(shutil.which(t) is None for t in ("ip", "ipmitool", "qemu-system-x86_64", "qemu-img")),
    reason="needs root, ip, ipmitool and QEMU",
)

MACS = ("52:54:00:6d:63:00", "52:54:00:6d:63:01")


@pytest.fixture
def lab(metalcast_url: str, tmp_path: Path) -> Iterator[Lab]:
    netns = f"mclab-t{os.getpid()}"
    made = Lab(metalcast_url, tmp_path / "lab", netns, free_udp_base(2))
    try:
        yield made
    finally:
        remove_lab(made.lab_dir, netns)


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
            "capabilities": "boot_mode:bios",  # SeaBIOS, until told otherwise
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


@pytest.mark.e2e
def test_lab_up_starts_realistic_and_unenrolled_machines(lab: Lab) -> None:
    lab.up(1, "--unenrolled", "1")

    state = lab.state()
    enrolled, unknown = state["nodes"]
    assert (enrolled["enrolled"], unknown["enrolled"]) == (True, False)
    assert lab.node_names() == ["lab-0"]  # metalcast is not told about lab-1
    assert unknown["node_uuid"] is None
    assert "unenrolled" in lab.run("status").stdout

    # two taps per machine on the bridge, two disks of different sizes
    for tap in ("mctap0", "mctap0n1", "mctap1", "mctap1n1"):
        link = subprocess.run(
            ["ip", "-n", lab.netns, "-j", "link", "show", "dev", tap],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(link.stdout)[0]["master"] == "mcbr0"
    sizes = []
    for disk in (unknown["disk"], unknown["second_disk"]):
        info = subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", disk],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        sizes.append(json.loads(info.stdout)["virtual-size"] // 2**30)
    assert sizes == unknown["disk_sizes_gb"] == [2, 3]

    # its BMC powers it on, with both NICs, both disks and its SMBIOS serial
    password = state["bmc_password"]
    subprocess.run(
        ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(unknown["bmc_port"]),
         "-U", "admin", "-P", password, "power", "on"],
        capture_output=True, check=True,
    )  # fmt: skip
    wait_for(lambda: len(pids_in(lab.netns)) == 1, timeout=60, what="QEMU in the namespace")
    cmdline = ",".join(Path(f"/proc/{pids_in(lab.netns)[0]}/cmdline").read_text().split("\0"))
    assert f"serial={unknown['serial']}" in cmdline
    for mac in (unknown["mac"], unknown["second_mac"]):
        assert f"mac={mac}" in cmdline
    assert "ifname=mctap1n1" in cmdline and "lab-1-1.qcow2" in cmdline

    gone = lab.down().stdout
    assert "lab-0" in gone
    assert not Path(unknown["second_disk"]).exists()
