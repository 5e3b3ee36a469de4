"""The virtual media ISO as the tools that read ISOs see it: El Torito entries for
BIOS (hard-disk emulation) and UEFI, the FAT image with kernel, one initrd holding
the deploy ramdisk and the node's archive, and SYSLINUX booting the command line.
(The lab's vmedia deploy test boots one.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from metalcast.boot import vmedia
from metalcast.boot.layout import BootLayout
from metalcast.boot.settings import BootSettings

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "isoinfo", "mtype"], capture_output=True).returncode != 0,
    reason="isoinfo (genisoimage) and mtype (mtools) are needed",
)

CMDLINE = "console=ttyS0 metalcast.api=http://192.168.77.1:8080 BOOTIF=01-52-54-00-aa-bb-01"


def _extract(iso: Path, name: str, out: Path) -> Path:
    data = subprocess.run(
        ["isoinfo", "-R", "-i", str(iso), "-x", name], capture_output=True, check=True
    ).stdout
    out.write_bytes(data)
    return out


def _fat_file(image: Path, name: str, *, offset: int = 0) -> bytes:
    target = f"{image}@@{offset}" if offset else str(image)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    return subprocess.run(
        ["mtype", "-i", target, f"::{name}"], capture_output=True, check=True, env=env
    ).stdout


def test_iso_boots_the_node_settings_under_bios_and_uefi(tmp_path: Path) -> None:
    kernel = tmp_path / "kernel"
    kernel.write_bytes(b"K" * 100_000)
    ramdisk = tmp_path / "ramdisk"
    ramdisk.write_bytes(b"R" * 300_000)
    overlay = vmedia.node_overlay(
        network_data={
            "links": [{"id": "p", "ethernet_mac_address": "52:54:00:aa:bb:01"}],
            "networks": [{"id": "n", "link": "p", "type": "ipv4", "ip_address": "192.168.77.9"}],
        }
    )
    iso = tmp_path / "vmedia" / vmedia.iso_name()
    vmedia.build_iso(iso, kernel=kernel, initrds=[ramdisk, overlay], cmdline=CMDLINE)

    info = subprocess.run(
        ["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout
    assert "Boot media 4 (Hard Disk Emulation)" in info
    listing = subprocess.run(
        ["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listing) == ["/boot", "/boot/bios.img", "/boot/boot.catalog", "/boot/efi.img"]
    assert [p.name for p in iso.parent.iterdir()] == [iso.name]  # no scratch left

    efi = _extract(iso, "/boot/efi.img", tmp_path / "efi.img")
    assert _fat_file(efi, "vmlinuz") == kernel.read_bytes()
    assert _fat_file(efi, "initrd") == ramdisk.read_bytes() + overlay
    assert _fat_file(efi, "EFI/BOOT/BOOTX64.EFI") == vmedia.EFI_LOADER.read_bytes()
    assert f"APPEND {CMDLINE}\n" in _fat_file(efi, "EFI/BOOT/syslinux.cfg").decode()

    bios = _extract(iso, "/boot/bios.img", tmp_path / "bios.img")
    head = bios.read_bytes()[:512]
    assert head[510:] == b"\x55\xaa" and head[446] == 0x80  # an active partition
    assert (
        f"APPEND {CMDLINE}\n"
        in _fat_file(bios, "syslinux.cfg", offset=vmedia.PARTITION_START).decode()
    )
    assert _fat_file(bios, "ldlinux.sys", offset=vmedia.PARTITION_START)


def test_build_failure_leaves_nothing(tmp_path: Path) -> None:
    iso = tmp_path / "vmedia" / vmedia.iso_name()
    with pytest.raises(vmedia.BootSetupError):
        vmedia.build_iso(iso, kernel=tmp_path / "absent", initrds=[], cmdline=CMDLINE)
    assert list(iso.parent.iterdir()) == []


def test_publish_serves_one_unguessable_iso_per_node_and_withdraw_removes_it(
    tmp_path: Path,
) -> None:
    settings = BootSettings(console="ttyS0")
    layout = BootLayout.from_settings(settings, state_dir=tmp_path)
    layout.kernel.parent.mkdir(parents=True)
    layout.kernel.write_bytes(b"K" * 1000)
    layout.ramdisk.write_bytes(b"R" * 1000)
    node = vmedia.VmediaNode(
        "5c3e2a8e-41a0-4d8b-9f0e-0d4c1c8a7b21", ("52:54:00:AA:BB:01", "52:54:00:aa:bb:02")
    )
    api = "http://192.168.77.1:6385"

    first = vmedia.publish_node_iso(layout, settings, node, api_url=api)
    second = vmedia.publish_node_iso(layout, settings, node, api_url=api)

    prefix = f"{settings.http_url}/boot/{vmedia.VMEDIA_DIR}/"
    assert first.startswith(prefix) and second.startswith(prefix) and first != second
    served = sorted(p.name for p in (layout.boot_dir / vmedia.VMEDIA_DIR).iterdir())
    assert served == [second.removeprefix(prefix)]  # the first is gone
    assert node.uuid not in second
    efi = _extract(layout.boot_dir / vmedia.VMEDIA_DIR / served[0], "/boot/efi.img", tmp_path / "e")
    config = _fat_file(efi, "syslinux.cfg").decode()
    assert f"metalcast.api={api}" in config and "BOOTIF=01-52-54-00-aa-bb-01" in config
    assert "console=ttyS0" in config
    assert _fat_file(efi, "initrd").startswith(b"R" * 1000)

    vmedia.withdraw_node_iso(layout, node.uuid)
    assert list((layout.boot_dir / vmedia.VMEDIA_DIR).iterdir()) == []
    vmedia.withdraw_node_iso(layout, node.uuid)  # gone already: no error
