"""write_configdrive: a partition at the end of the disk holding the config-2 ISO."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from agent_machine import MIB, FakeMachine, FileServer, make_iso, need, run, sha256

from metalcast_agent.commands import CommandContext
from metalcast_agent.configdrive import partition_size, write_configdrive
from metalcast_agent.errors import ChecksumMismatch, PartitionTableError
from metalcast_agent.partitions import partition_device

DISK = 256 * MIB
SECTORS = DISK // 512


@pytest.fixture
def iso(tmp_path: Path) -> bytes:
    return make_iso(
        tmp_path,
        {"openstack/latest/meta_data.json": json.dumps({"uuid": "n1", "hostname": "node-1"})},
    )


def configdrive_args(files: FileServer, iso: bytes, device: str = "/dev/vda") -> dict[str, object]:
    files.files["/config.iso"] = iso
    return {
        "url": files.url("/config.iso"),
        "checksum_algo": "sha256",
        "checksum": sha256(iso),
        "device": device,
    }


def verify(disk: Path) -> dict[str, object]:
    """sfdisk's view of ``disk``, after checking sfdisk finds nothing wrong."""
    done = subprocess.run(
        [need("sfdisk"), "--verify", str(disk)], capture_output=True, text=True, check=False
    )
    assert "No errors detected" in done.stdout, done.stdout + done.stderr
    assert done.stderr == ""
    table: dict[str, object] = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    return table


def label_at(disk: Path, offset: int) -> str:
    """The filesystem label blkid finds at byte ``offset`` of ``disk``."""
    return run("blkid", "-p", "-O", str(offset), "-s", "LABEL", "-o", "value", str(disk)).strip()


def test_mbr_gets_a_primary_partition_at_the_end(
    machine: FakeMachine, files: FileServer, iso: bytes
) -> None:
    disk = machine.add_disk("vda", DISK)
    run("sfdisk", "-q", str(disk), stdin="label: dos\nstart=2048, size=100MiB, type=83\n")

    result = write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    start = SECTORS - 64 * MIB // 512
    assert result == {
        "device": "/dev/vda",
        "partition": "/dev/vda2",
        "offset": start * 512,
        "size": 64 * MIB,
    }
    partitions = verify(disk)["partitions"]
    assert isinstance(partitions, list)
    assert [(p["start"], p["size"], p["type"]) for p in partitions] == [
        (2048, 100 * MIB // 512, "83"),
        (start, 64 * MIB // 512, "83"),
    ]
    with disk.open("rb") as handle:
        handle.seek(start * 512)
        assert handle.read(len(iso)) == iso
    assert label_at(disk, start * 512) == "config-2"


def test_gpt_of_a_smaller_image_is_moved_to_the_end_of_the_disk(
    machine: FakeMachine, files: FileServer, iso: bytes, tmp_path: Path
) -> None:
    image = tmp_path / "image.raw"
    with image.open("wb") as handle:
        handle.truncate(64 * MIB)
    run("sfdisk", "-q", str(image), stdin="label: gpt\nstart=2048, size=20MiB, name=root\n")
    disk = machine.add_disk("vda", DISK)
    with disk.open("r+b") as handle:
        handle.write(image.read_bytes())

    result = write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    table = verify(disk)
    # the backup header sits in the last sector, its 32-sector entry array before it
    assert table["lastlba"] == SECTORS - 34
    end = (SECTORS - 33) // 2048 * 2048
    start = end - 64 * MIB // 512
    partitions = table["partitions"]
    assert isinstance(partitions, list)
    assert [(p["start"], p["size"], p.get("name")) for p in partitions] == [
        (2048, 20 * MIB // 512, "root"),
        (start, 64 * MIB // 512, "config-2"),
    ]
    assert partitions[1]["type"] == "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    assert result["partition"] == "/dev/vda2"
    assert result["offset"] == start * 512
    assert label_at(disk, start * 512) == "config-2"


def test_a_config_drive_without_content_length_is_written(
    machine: FakeMachine, files: FileServer, iso: bytes
) -> None:
    disk = machine.add_disk("vda", DISK)
    run("sfdisk", "-q", str(disk), stdin="label: dos\nstart=2048, size=10MiB\n")
    files.unsized.add("/config.iso")

    result = write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    offset = result["offset"]
    assert isinstance(offset, int)
    assert label_at(disk, offset) == "config-2"


def test_a_disk_without_partition_table_is_refused(
    machine: FakeMachine, files: FileServer, iso: bytes
) -> None:
    machine.add_disk("vda", DISK)

    with pytest.raises(PartitionTableError) as caught:
        write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    assert str(caught.value) == (
        "/dev/vda has no partition table (MBR or GPT): write a partitioned whole-disk image "
        "before the config drive"
    )


def test_a_full_mbr_is_refused(machine: FakeMachine, files: FileServer, iso: bytes) -> None:
    disk = machine.add_disk("vda", DISK)
    layout = "".join("size=10MiB, type=83\n" for _ in range(4))
    run("sfdisk", "-q", str(disk), stdin="label: dos\n" + layout)

    with pytest.raises(PartitionTableError, match="four primary partitions"):
        write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))


def test_a_disk_with_no_room_at_the_end_is_refused(
    machine: FakeMachine, files: FileServer, iso: bytes
) -> None:
    disk = machine.add_disk("vda", DISK)
    run("sfdisk", "-q", str(disk), stdin="label: dos\nstart=2048\n")  # the whole disk

    with pytest.raises(PartitionTableError) as caught:
        write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    assert str(caught.value) == (
        "No room for a 64 MiB partition at the end of /dev/vda: the partitions reach "
        "256 MiB of 256 MiB"
    )


def test_a_wrong_checksum_fails(machine: FakeMachine, files: FileServer, iso: bytes) -> None:
    disk = machine.add_disk("vda", DISK)
    run("sfdisk", "-q", str(disk), stdin="label: dos\nstart=2048, size=10MiB\n")
    arguments = configdrive_args(files, iso) | {"checksum": "0" * 64}

    with pytest.raises(ChecksumMismatch, match=r"^Checksum mismatch for http://127\.0\.0\.1:"):
        write_configdrive(arguments, CommandContext(machine.env))


def test_partition_size_is_64_mib_or_the_iso_rounded_up() -> None:
    assert partition_size(300 * 1024) == 64 * MIB
    assert partition_size(64 * MIB) == 64 * MIB
    assert partition_size(64 * MIB + 1) == 65 * MIB


def test_partition_device_names() -> None:
    assert partition_device("/dev/vda", 2) == "/dev/vda2"
    assert partition_device("/dev/nvme0n1", 2) == "/dev/nvme0n1p2"
    assert partition_device("/dev/mmcblk0", 3) == "/dev/mmcblk0p3"


def test_gpt_headers_and_crcs_are_consistent(
    machine: FakeMachine, files: FileServer, iso: bytes
) -> None:
    """Both headers carry valid CRCs, name each other, and their entry arrays agree."""
    disk = machine.add_disk("vda", DISK)
    run("sfdisk", "-q", str(disk), stdin="label: gpt\nstart=2048, size=20MiB\n")
    write_configdrive(configdrive_args(files, iso), CommandContext(machine.env))

    with disk.open("rb") as handle:
        primary = read_gpt(handle, 1)
        backup = read_gpt(handle, SECTORS - 1)
    assert (primary.my_lba, primary.alternate_lba) == (1, SECTORS - 1)
    assert (backup.my_lba, backup.alternate_lba) == (SECTORS - 1, 1)
    assert primary.entries == backup.entries
    assert os.path.getsize(disk) == DISK


@dataclass
class Gpt:
    my_lba: int
    alternate_lba: int
    entries: bytes


def read_gpt(handle: BinaryIO, lba: int) -> Gpt:
    """The GPT header at ``lba`` and its entry array, after checking both CRCs."""
    handle.seek(lba * 512)
    header = handle.read(512)
    fields = struct.unpack_from("<8sIIIIQQQQ16sQIII", header)
    assert fields[0] == b"EFI PART"
    size, crc = fields[2], fields[3]
    blank = bytearray(header[:size])
    blank[16:20] = bytes(4)
    assert zlib.crc32(blank) == crc
    entries_lba, count, entry_size, entries_crc = fields[10:14]
    handle.seek(entries_lba * 512)
    entries = handle.read(count * entry_size)
    assert zlib.crc32(entries) == entries_crc
    return Gpt(fields[5], fields[6], entries)
