"""erase_metadata: no partition table or filesystem signature survives."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_machine import MIB, FakeMachine, run

from metalcast_agent.commands import CommandContext
from metalcast_agent.errors import DiskError
from metalcast_agent.handlers import erase_disk_metadata


def signatures(disk: Path) -> str:
    """What ``wipefs`` finds on ``disk`` (it only reads without -a)."""
    return run("wipefs", "--noheadings", str(disk)).strip()


def test_a_whole_disk_vfat_filesystem_is_gone(machine: FakeMachine) -> None:
    disk = machine.add_disk("vda", 64 * MIB)
    run("mkfs.vfat", "-n", "OLDFS", str(disk))
    assert "vfat" in signatures(disk)

    result = erase_disk_metadata({"devices": ["/dev/vda"]}, CommandContext(machine.env))

    assert result == {"devices": ["/dev/vda"]}
    assert signatures(disk) == ""


def test_gpt_and_its_backup_are_gone(machine: FakeMachine) -> None:
    disk = machine.add_disk("vda", 64 * MIB)
    run("sfdisk", "-q", str(disk), stdin="label: gpt\nstart=2048, size=20MiB\n")
    run("mkfs.vfat", "--offset=2048", str(disk), str(20 * 1024))
    assert "gpt" in signatures(disk)

    erase_disk_metadata({"devices": ["vda"]}, CommandContext(machine.env))

    assert signatures(disk) == ""
    with disk.open("rb") as handle:
        assert handle.read(MIB) == bytes(MIB)
        handle.seek(-MIB, 2)
        assert handle.read() == bytes(MIB)
        handle.seek(MIB)
        assert handle.read(512) != bytes(512), "data past the first MiB is left alone"


def test_null_devices_erases_every_disk(machine: FakeMachine) -> None:
    disks = [machine.add_disk(name, 8 * MIB) for name in ("vda", "vdb")]
    for disk in disks:
        run("mkfs.vfat", str(disk))

    result = erase_disk_metadata({"devices": None}, CommandContext(machine.env))

    assert result == {"devices": ["/dev/vda", "/dev/vdb"]}
    assert [signatures(disk) for disk in disks] == ["", ""]


def test_a_disk_smaller_than_two_mib_is_zeroed(machine: FakeMachine) -> None:
    disk = machine.add_disk("vda", MIB + 512)
    disk.write_bytes(b"\xff" * (MIB + 512))

    erase_disk_metadata({}, CommandContext(machine.env))

    assert disk.read_bytes() == bytes(MIB + 512)


def test_an_unknown_device_is_refused(machine: FakeMachine) -> None:
    machine.add_disk("vda", 8 * MIB)

    with pytest.raises(DiskError) as caught:
        erase_disk_metadata({"devices": ["/dev/sdz"]}, CommandContext(machine.env))

    assert (
        str(caught.value)
        == "Device /dev/sdz is not a disk of this machine; disks: /dev/vda (8.0 MiB)"
    )
