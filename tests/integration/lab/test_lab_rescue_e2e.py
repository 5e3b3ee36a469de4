"""Rescue in the virtual lab: a deployed QEMU machine is rescued with
``baremetal node rescue --rescue-password``; it network-boots the deploy ramdisk,
whose agent sets the rescue user's password (its hash) and starts dropbear; an SSH
login with the password from inside the lab's network namespace gets a shell (a wrong
password does not).  ``unrescue`` boots the deployed system from its disk again."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from lablib import DEPLOY_TIMEOUT, Lab, baremetal, deploy_and_boot
from secret_scan import register

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

PASSWORD = "Lab-Rescue-Pass-93be"
register(PASSWORD)
RESCUE_MODE = "METALCAST-RAMDISK: rescue mode"
_NET_UP = re.compile(r"METALCAST-RAMDISK: net up ([0-9.]+)/[0-9]+ ")


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


def test_rescue_a_deployed_lab_machine_over_ssh_then_unrescue(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    deploy_and_boot(lab, lab_disk_image, tmp_path, hostname="rescue-node.lab")
    assert lab.node("lab-0")["rescue_interface"] == "agent"

    baremetal(lab, "node", "rescue", "lab-0", "--rescue-password", PASSWORD,
              "--wait", DEPLOY_TIMEOUT)  # fmt: skip
    rescued = lab.node("lab-0")
    assert (rescued["provision_state"], rescued["last_error"]) == ("rescue", None)
    console = lab.wait_for_serial(RESCUE_MODE, timeout=120)
    addresses = _NET_UP.findall(console[: console.rindex(RESCUE_MODE)])
    assert addresses, console[-3000:]

    askpass = tmp_path / "askpass"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$RESCUE_PASSWORD"\n')
    askpass.chmod(0o700)
    login = ssh(lab, addresses[-1], PASSWORD, askpass)
    assert login.returncode == 0, login.stderr
    assert "RESCUE-SHELL 0 " in login.stdout
    refused = ssh(lab, addresses[-1], PASSWORD + "-wrong", askpass)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr

    baremetal(lab, "node", "unrescue", "lab-0", "--wait", DEPLOY_TIMEOUT)
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    assert "hashed_rescue_password" not in node["instance_info"]
    # the deployed system boots from its disk a second time
    deadline = time.monotonic() + float(DEPLOY_TIMEOUT)
    while lab.serial().count("METALCAST-DISK-BOOTED root=/dev/vda") < 2:
        assert time.monotonic() < deadline, lab.serial()[-3000:]
        time.sleep(1)
