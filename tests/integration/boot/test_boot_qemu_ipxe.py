"""A QEMU machine (TCG only) network-boots through the boot services.

Its NIC's iPXE ROM asks dnsmasq for DHCP, chains ``boot.ipxe`` over HTTP, which
chains the per-MAC script, which fetches the deploy kernel and ramdisk.  The deploy
"kernel" is ``ipxe.lkrn`` (iPXE built as a Linux bzImage): a real kernel image
iPXE accepts, so the script gets as far as fetching the ramdisk.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from boot_netlab import BootLab, StartServices, wait_for

from metalcast.boot import netns
from metalcast.boot.ipxe import NodeBoot, NodePort

pytestmark = pytest.mark.e2e

NODE = "3be26c0b-03f2-4d2e-ae87-c02d7f33c125"
MAC = "52:54:00:b0:07:10"
LKRN = Path("/usr/lib/ipxe/ipxe.lkrn")
_ACCESS = re.compile(r"^\S+ GET (\S+) (\d+)$")


def fetched(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    """(path, status) of every GET the boot HTTP server answered so far."""
    found = []
    for record in list(caplog.records):
        if record.name == "metalcast.boot.http":
            match = _ACCESS.match(record.getMessage())
            if match:
                found.append((match[1], int(match[2])))
    return found


def start_qemu(lab: BootLab, serial: Path) -> subprocess.Popen[bytes]:
    argv = [
        "ip", "netns", "exec", lab.server_ns,
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "256", "-smp", "1",
        "-display", "none", "-monitor", "none", "-serial", f"file:{serial}",
        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
        "-boot", "n", "-no-reboot",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_qemu(qemu: subprocess.Popen[bytes]) -> None:
    qemu.terminate()
    try:
        qemu.wait(10)
    except subprocess.TimeoutExpired:
        qemu.kill()
        qemu.wait()


def test_a_machine_ipxe_boots_its_deploy_script(
    boot_lab: BootLab,
    start_services: StartServices,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if shutil.which("qemu-system-x86_64") is None or not LKRN.is_file():
        pytest.skip("needs qemu-system-x86 and the ipxe package")
    caplog.set_level(logging.INFO, logger="metalcast.boot.http")
    shutil.copyfile(LKRN, state_dir / "ramdisk" / "deploy.kernel")
    netns.add_tap(boot_lab.server_ns, "tap0", bridge="br0")
    services = start_services(ignore_unknown=True)
    services.prepare_node(NodeBoot(NODE, (NodePort(MAC),)))

    began = time.monotonic()
    qemu = start_qemu(boot_lab, boot_lab.work / "serial.log")
    try:
        wanted = ("/boot/deploy.initramfs", 200)
        wait_for(lambda: wanted in fetched(caplog), timeout=180, what="the ramdisk download")
        took = time.monotonic() - began
    finally:
        stop_qemu(qemu)

    paths = [path for path, status in fetched(caplog) if status == 200]
    first = paths[: paths.index("/boot/deploy.initramfs") + 1]
    assert first == [
        "/boot/boot.ipxe",
        "/boot/nodes/52-54-00-b0-07-10.ipxe",
        "/boot/deploy.kernel",
        "/boot/deploy.initramfs",
    ]
    log = services.layout.dnsmasq_log.read_text()
    tags = [line for line in log.splitlines() if " tags: " in line and "ipxe" in line]
    assert tags and "metalcast" in tags[-1] and "known" in tags[-1]
    print(f"QEMU (TCG) power-on to deploy ramdisk fetched: {took:.1f} s")


def test_a_failed_deploy_boot_retries_then_falls_back_to_the_disk(
    boot_lab: BootLab,
    start_services: StartServices,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs qemu-system-x86")
    caplog.set_level(logging.INFO, logger="metalcast.boot.http")
    (state_dir / "ramdisk" / "deploy.kernel").unlink()  # the kernel download fails
    netns.add_tap(boot_lab.server_ns, "tap0", bridge="br0")
    services = start_services(ignore_unknown=True)
    services.prepare_node(NodeBoot(NODE, (NodePort(MAC),)))
    script = "/boot/nodes/52-54-00-b0-07-10.ipxe"

    qemu = start_qemu(boot_lab, boot_lab.work / "serial.log")
    try:
        # the script waits 10 s, chains boot.ipxe again, which chains the script again
        wait_for(lambda: fetched(caplog).count((script, 200)) >= 2, timeout=180, what="a retry")
        assert ("/boot/deploy.kernel", 404) in fetched(caplog)
        services.clean_node(NODE)
        wait_for(lambda: (script, 404) in fetched(caplog), timeout=60, what="the local boot")
    finally:
        stop_qemu(qemu)
