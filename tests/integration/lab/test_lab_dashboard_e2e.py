"""The dashboard's done-when walk on a real lab machine: lab-0 (QEMU, a virtual IPMI
BMC, network boot) deployed from the node page's form in Debian's chromium, the
image write's progress bar on the page, then the deployed system booting on the
console page (xterm.js through the websocket proxy): its config drive read with the
host name and SSH key given in the form.  Lab lock, several minutes under TCG."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lablib import DEPLOY_TIMEOUT, Lab, baremetal

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[3]
FLOW = Path(__file__).with_name("lab_dashboard_flow.mjs")


#: random bytes after the test image's partitions: the agent writes them all, so the
#: write lasts several of its 2 s heartbeats, each with a progress report the page
#: shows (the 64 MiB image alone is written in about one when the host is idle)
PADDING = 192 * 2**20


def padded(image: Path, target: Path) -> Path:
    """``image`` followed by :data:`PADDING` random bytes (it boots the same: its
    partition table covers the image's own 64 MiB)."""
    shutil.copyfile(image, target)
    with target.open("ab") as out:
        for _ in range(PADDING // 2**20):
            out.write(os.urandom(2**20))
    return target


def test_deploy_a_lab_machine_from_the_dashboard(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    if not Path("/usr/bin/chromium").exists() or shutil.which("node") is None:
        pytest.fail("missing chromium or node: run scripts/install --test")
    lab = lab_env
    lab.up(nodes=1)
    baremetal(lab, "node", "set", "lab-0", "--console-interface", "ipmi-sol")
    baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    baremetal(lab, "node", "provide", "lab-0", "--wait", DEPLOY_TIMEOUT)
    image, checksum = lab.deployable(padded(lab_disk_image, tmp_path / "lab-web.img"))
    env = {
        **os.environ,
        "BASE": lab.url,
        "NODE": lab.node("lab-0")["uuid"],
        "IMAGE": image,
        "CHECKSUM": checksum,
        "TIMEOUT": str(int(DEPLOY_TIMEOUT) * 1000),
        "SHOTS": os.environ.get("METALCAST_DASHBOARD_SHOTS", ""),
    }
    result = subprocess.run(
        ["node", str(FLOW)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=int(DEPLOY_TIMEOUT) * 2 + 120,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{lab.serial()[-3000:]}"
    assert "lab_dashboard_flow: done" in result.stdout
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    assert "METALCAST-CONFIGDRIVE hostname=lab-web" in lab.serial()
