"""The QEMU command line of a lab machine with virtual media in its CD drive."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.lab.lifecycle import LabOptions, plan
from metalcast.lab.machine import BootDevice, BootMode, BootOverride
from metalcast.lab.qemu import CD_DEVICE, QemuSettings, boot_argument, qemu_command
from metalcast.lab.state import machine_spec


@pytest.mark.parametrize(("persistent", "argument"), [(False, "once=d"), (True, "order=d")])
def test_a_cd_override_boots_the_cd(persistent: bool, argument: str) -> None:
    assert boot_argument(BootOverride(BootDevice.CDROM, persistent=persistent)) == argument


def test_no_media_no_cd_drive(tmp_path: Path) -> None:
    spec = machine_spec(plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0])
    args = qemu_command(spec, QemuSettings(), boot="order=c")
    assert not any("ide-cd" in arg for arg in args)


def test_media_is_a_read_only_cd_first_under_uefi(tmp_path: Path) -> None:
    spec = machine_spec(plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0])
    iso = tmp_path / "x,y.iso"

    args = qemu_command(spec, QemuSettings(), boot="once=d", mode=BootMode.UEFI, media=iso)

    drive = f"if=none,id={CD_DEVICE}-drive,media=cdrom,readonly=on,file={tmp_path}/x,,y.iso"
    assert drive in args
    assert f"ide-cd,drive={CD_DEVICE}-drive,id={CD_DEVICE},bus=ide.2,bootindex=0" in args
    assert f"virtio-net-pci,netdev=net0,mac={spec.mac},romfile=,bootindex=2" in args


def test_media_under_bios_follows_the_boot_option(tmp_path: Path) -> None:
    spec = machine_spec(plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0])

    args = qemu_command(spec, QemuSettings(), boot="once=d", media=tmp_path / "a.iso")

    assert args[args.index("-boot") + 1] == "once=d"
    assert f"ide-cd,drive={CD_DEVICE}-drive,id={CD_DEVICE},bus=ide.2" in args
