"""A lab deploy end to end over TLS: the server's API and boot HTTP server on HTTPS
with certificates from ``metalcast tls generate``, the lab and the deploy driven by
the real CLIs trusting its CA, a QEMU machine that network-boots the deploy ramdisk
and the CA initrd beside it, an agent that verifies the boot server, fetches the
image and config drive over HTTPS and writes them, and a machine that then boots its
disk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lablib import Lab, deploy_and_boot

# a whole deploy under TCG on a loaded CI machine outlasts the suite's 300 s default
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

BOOT = "192.168.77.1"


def test_a_lab_machine_deploys_over_https(
    lab_env_tls: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env_tls
    assert lab.url.startswith("https://")
    lab.up(nodes=1)

    # (no automated cleaning: the deploy's own ramdisk boot is the one under test)
    console = deploy_and_boot(
        lab, lab_disk_image, tmp_path, hostname="tls-node.lab", automated_clean=False
    )

    # the agent in the ramdisk found the CA the CA initrd put there, and used it
    trusted = f"metalcast API https://{BOOT}:8443, verified with /etc/metalcast/ca.pem"
    assert trusted in console
    logs = lab.server_logs() if lab.server_logs else ""
    assert re.search(r"GET /boot/tls-ca\.cpio\.gz 200", logs), logs[-3000:]
    # images and config drives are answered 200 only on the HTTPS port (403 on the
    # plain one), the lookup too
    assert re.search(r"192\.168\.77\.\d+ GET /images/\S+ 200", logs), logs[-3000:]
    assert re.search(r"192\.168\.77\.\d+ GET /v1/lookup 200", logs), logs[-3000:]
