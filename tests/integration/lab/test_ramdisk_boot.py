"""The deploy ramdisk, built from Debian packages, really boots under QEMU (TCG).

It brings the network up with udhcpc, and Debian's python3.11 runs the agent, whose
lookup reaches a server on the host's loopback (QEMU user networking: 10.0.2.2).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

import pytest
from lab_qemu import GUEST_ADDRESS, HOST_FROM_GUEST, LookupServer, QemuRun
from lab_ramdisk import FAKE_AGENT, BuiltRamdisk

from metalcast.lab.diskimage import DISK_INIT
from metalcast.ramdisk import build_ramdisk
from metalcast.ramdisk.initscripts import RAMDISK_INIT, UDHCPC_SCRIPT

MAC = "52:54:00:12:34:56"
StartQemu = Callable[[Sequence[str]], QemuRun]


def _boot(start_qemu: StartQemu, ramdisk: BuiltRamdisk, port: int) -> QemuRun:
    append = (
        f"console=ttyS0 panic=-1 metalcast.api=http://{HOST_FROM_GUEST}:{port} "
        f"BOOTIF=01-{MAC.replace(':', '-')} metalcast.heartbeat=2"
    )
    return start_qemu(
        [
            "-kernel", str(ramdisk.kernel), "-initrd", str(ramdisk.initramfs),
            "-append", append,
            "-netdev", "user,id=n0", "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
        ]
    )  # fmt: skip


@pytest.mark.parametrize("script", [RAMDISK_INIT, UDHCPC_SCRIPT, DISK_INIT])
def test_the_shell_scripts_parse_in_busybox(script: str) -> None:
    subprocess.run(["busybox", "sh", "-n"], input=script.encode(), check=True)


@pytest.mark.e2e
def test_the_agent_starts_reaches_the_api_and_obeys_the_power_button(
    agent_ramdisk: BuiltRamdisk, start_qemu: StartQemu, lookup_server: LookupServer
) -> None:
    qemu = _boot(start_qemu, agent_ramdisk, lookup_server.port)

    net = qemu.wait_for(r"METALCAST-RAMDISK: net up (\S+) dev=(\S+) mac=(\S+)")
    qemu.wait_for(r"METALCAST-RAMDISK: starting metalcast-agent")
    request = lookup_server.wait_for_request()

    assert net.groups() == (f"{GUEST_ADDRESS}/24", "eth0", MAC)
    url = urlsplit(request.path)
    assert (request.method, url.path) == ("GET", "/v1/lookup")
    assert MAC in parse_qs(url.query)["addresses"][0].split(",")
    assert "x-openstack-ironic-api-version" in {k.lower() for k in request.headers}
    print(f"first lookup {qemu.seconds():.1f} s after QEMU started")

    qemu.press_power_button()

    assert qemu.wait_exit() == 0
    assert "METALCAST-RAMDISK: power button pressed, powering off" in qemu.log()


@pytest.mark.e2e
def test_the_ramdisk_powers_off_when_the_agent_exits(
    fake_agent_ramdisk: BuiltRamdisk, start_qemu: StartQemu, lookup_server: LookupServer
) -> None:
    qemu = _boot(start_qemu, fake_agent_ramdisk, lookup_server.port)

    assert qemu.wait_exit() == 0

    log = qemu.log()
    assert "FAKE-AGENT python 3.11" in log
    assert f"/v1/lookup?addresses={MAC} -> 404" in log
    assert "METALCAST-RAMDISK: metalcast-agent exited with status 5" in log
    assert "METALCAST-RAMDISK: powering off" in log


@pytest.mark.e2e
def test_an_unchanged_ramdisk_is_not_rebuilt(fake_agent_ramdisk: BuiltRamdisk) -> None:
    progress: list[str] = []

    again = build_ramdisk(
        fake_agent_ramdisk.out_dir,
        cache_dir=fake_agent_ramdisk.out_dir.parent / "unused-cache",
        progress=progress.append,
        agent_source=FAKE_AGENT,
    )

    assert again == fake_agent_ramdisk.manifest
    assert any(line.startswith("up to date") for line in progress)
    assert not (fake_agent_ramdisk.out_dir.parent / "unused-cache").exists()
