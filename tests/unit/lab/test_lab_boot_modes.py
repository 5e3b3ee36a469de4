"""The lab's boot modes without starting anything: what ``lab up`` plans and enrols,
and the QEMU command line each firmware gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.lab.enrolment import node_body
from metalcast.lab.lifecycle import LabOptions, plan
from metalcast.lab.machine import BootMode
from metalcast.lab.qemu import OVMF_CODE, QemuSettings, qemu_command
from metalcast.lab.state import LabState, machine_spec


@pytest.mark.parametrize(
    ("mode", "capability"), [(BootMode.LEGACY, "boot_mode:bios"), (BootMode.UEFI, "boot_mode:uefi")]
)
def test_nodes_are_enrolled_with_the_labs_boot_mode(
    tmp_path: Path, mode: BootMode, capability: str
) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=1, boot_mode=mode))

    body = node_body(state, state.nodes[0], {"boot_interface": "ipxe"})
    assert body["properties"]["capabilities"] == capability
    assert state.qemu_settings.boot_mode is mode
    assert state.nodes[0].nvram == tmp_path.absolute() / "lab-0.nvram.fd"


def test_a_lab_is_bios_unless_asked(tmp_path: Path) -> None:
    assert plan(LabOptions(lab_dir=tmp_path)).boot_mode is BootMode.LEGACY


def test_a_lab_state_from_before_boot_modes_is_bios(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=1))
    old = state.model_dump(mode="json", exclude={"boot_mode"})
    old["nodes"][0].pop("nvram")

    loaded = LabState.model_validate(old)

    assert loaded.boot_mode is BootMode.LEGACY
    disk = loaded.nodes[0].disk
    assert machine_spec(loaded.nodes[0]).nvram_file == disk.with_name("lab-0.nvram.fd")


def test_bios_boots_by_boot_option_with_the_nics_ipxe_rom(tmp_path: Path) -> None:
    spec = machine_spec(plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0])

    args = qemu_command(spec, QemuSettings(), boot="once=n", mode=BootMode.LEGACY)

    assert args[args.index("-boot") + 1] == "once=n"
    assert f"virtio-net-pci,netdev=net0,mac={spec.mac}" in args
    assert spec.hardware is not None
    assert f"virtio-blk-pci,drive=disk0,serial={spec.hardware.disks[0].serial}" in args
    assert not any("pflash" in arg for arg in args)


def test_uefi_boots_ovmf_with_the_machines_own_nvram(tmp_path: Path) -> None:
    spec = machine_spec(plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0])

    args = qemu_command(spec, QemuSettings(), boot="order=c", mode=BootMode.UEFI)

    assert f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on" in args
    assert f"if=pflash,format=raw,unit=1,file={spec.nvram_file}" in args
    assert spec.hardware is not None
    serial = spec.hardware.disks[0].serial
    assert f"virtio-blk-pci,drive=disk0,bootindex=0,serial={serial}" in args
    assert "-boot" not in args
