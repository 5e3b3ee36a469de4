"""A lab machine looks like a small server: two disks of different sizes, two NICs
with MACs the lab chose, SMBIOS identity; and ``--unenrolled`` machines.  Checked on
the plan and the QEMU command lines, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.lab.lifecycle import LabOptions, plan
from metalcast.lab.machine import BootMode
from metalcast.lab.network import mac_address, tap_name
from metalcast.lab.qemu import QemuSettings, qemu_command
from metalcast.lab.state import MANUFACTURER, PRODUCT, LabState, machine_spec
from metalcast_agent.hints import GIB, select_root_device
from metalcast_agent.protocol import Disk as AgentDisk


def _option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == option]


def test_every_machine_has_two_disks_the_boot_disk_smaller(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=2, disk_size_gb=2))
    for node in state.nodes:
        assert node.disk_sizes_gb == (2, 3)
        assert node.disks == (node.disk, tmp_path.absolute() / f"{node.name}-1.qcow2")
    custom = plan(LabOptions(lab_dir=tmp_path, nodes=1, disk_size_gb=4, second_disk_size_gb=8))
    assert custom.nodes[0].disk_sizes_gb == (4, 8)


def test_the_agent_deploys_onto_the_first_disk_without_hints(tmp_path: Path) -> None:
    """The agent picks the smallest disk that holds the image: the boot disk, vda."""
    node = plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0]
    disks = [
        AgentDisk(name=f"/dev/vd{letter}", size=size * GIB)
        for letter, size in zip("ab", node.disk_sizes_gb, strict=True)
    ]
    assert select_root_device(disks, None, image_size=40 * 1024**2).name == "/dev/vda"


def test_macs_and_serials_are_unique_and_recorded(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=3, unenrolled=2))
    macs = [mac for node in state.nodes for mac in node.macs]
    assert len(macs) == 10 and len(set(macs)) == 10
    assert state.nodes[1].macs == (mac_address(1), "52:54:00:6d:63:81")
    serials = [node.serial for node in state.nodes]
    assert len(set(serials)) == 5
    assert all(serial and len(serial) <= 16 for serial in serials)
    reloaded = LabState.model_validate_json(state.model_dump_json())
    assert reloaded.nodes[4].serial == serials[4]
    assert reloaded.nodes[4].second_mac == state.nodes[4].second_mac


def test_unenrolled_machines_follow_the_enrolled_ones(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=2, unenrolled=1))
    assert [node.name for node in state.nodes] == ["lab-0", "lab-1", "lab-2"]
    assert [node.enrolled for node in state.nodes] == [True, True, False]
    assert [node.name for node in state.enrolled_nodes] == ["lab-0", "lab-1"]


@pytest.mark.parametrize("mode", [BootMode.LEGACY, BootMode.UEFI])
def test_qemu_gets_the_second_nic_without_a_boot_rom(tmp_path: Path, mode: BootMode) -> None:
    node = plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0]
    args = qemu_command(machine_spec(node), QemuSettings(), boot="once=n", mode=mode)

    netdevs = _option_values(args, "-netdev")
    assert netdevs == [
        f"tap,id=net0,ifname={tap_name(0)},script=no,downscript=no",
        f"tap,id=net1,ifname={tap_name(0, nic=1)},script=no,downscript=no",
    ]
    nics = [d for d in _option_values(args, "-device") if d.startswith("virtio-net-pci")]
    assert nics[0].startswith(f"virtio-net-pci,netdev=net0,mac={node.mac}")
    assert nics[1] == f"virtio-net-pci,netdev=net1,mac={node.second_mac},romfile="


@pytest.mark.parametrize("mode", [BootMode.LEGACY, BootMode.UEFI])
def test_qemu_gets_both_disks_with_serials(tmp_path: Path, mode: BootMode) -> None:
    node = plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0]
    args = qemu_command(machine_spec(node), QemuSettings(), boot="order=c", mode=mode)

    drives = [d for d in _option_values(args, "-drive") if not d.startswith("if=pflash")]
    assert drives == [
        f"file={node.disk},if=none,id=disk0,format=qcow2",
        f"file={node.second_disk},if=none,id=disk1,format=qcow2",
    ]
    blocks = [d for d in _option_values(args, "-device") if d.startswith("virtio-blk-pci")]
    boot = ",bootindex=0" if mode is BootMode.UEFI else ""
    assert blocks[0] == f"virtio-blk-pci,drive=disk0{boot},serial={node.serial}-D0"
    assert blocks[1] == f"virtio-blk-pci,drive=disk1,serial={node.serial}-D1"


def test_qemu_gets_smbios_type_1(tmp_path: Path) -> None:
    node = plan(LabOptions(lab_dir=tmp_path, nodes=1)).nodes[0]
    args = qemu_command(machine_spec(node), QemuSettings(), boot="order=c")

    assert _option_values(args, "-smbios") == [
        f"type=1,manufacturer={MANUFACTURER},product={PRODUCT},serial={node.serial}"
    ]


def test_a_lab_state_from_before_has_one_disk_one_nic_no_smbios(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=1))
    old = state.model_dump(mode="json")
    for key in ("enrolled", "serial", "disk_sizes_gb", "second_disk", "second_mac", "second_tap"):
        old["nodes"][0].pop(key)
    node = LabState.model_validate(old).nodes[0]

    args = qemu_command(machine_spec(node), QemuSettings(), boot="order=c")

    assert node.enrolled and node.macs == (node.mac,) and node.disks == (node.disk,)
    assert "-smbios" not in args
    assert len(_option_values(args, "-netdev")) == 1
    assert "virtio-blk-pci,drive=disk0" in args
