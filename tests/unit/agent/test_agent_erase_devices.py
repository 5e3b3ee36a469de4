"""erase_devices: every disk erased whole, the strongest way it supports, with progress."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_machine import MIB, FakeMachine, write

from metalcast_agent.commands import CommandContext
from metalcast_agent.erase import AtaSecurity, ata_security, erase_devices
from metalcast_agent.errors import DiskError, InvalidArguments

HDPARM_SECURITY = """
/dev/sda:

ATA device, with non-removable media
\tModel Number:       WDC WD10EZEX-08WN4A0
Security:\x20
\tMaster password revision code = 65534
\t\tsupported
\tnot\tenabled
\tnot\tlocked
\tnot\tfrozen
\tnot\texpired: security count
\t\tsupported: enhanced erase
\t106min for SECURITY ERASE UNIT. 106min for ENHANCED SECURITY ERASE UNIT.
Logical Unit WWN Device Identifier: 50014ee2b5c3a1f0
"""


def context(machine: FakeMachine, seen: list[tuple[int, int | None]]) -> CommandContext:
    return CommandContext(
        machine.env, report_progress=lambda done, total: seen.append((done, total))
    )


def filled(machine: FakeMachine, name: str, size: int) -> Path:
    disk = machine.add_disk(name, size)
    disk.write_bytes(os.urandom(size))
    return disk


def test_every_disk_is_zeroed_with_progress_up_to_the_total(machine: FakeMachine) -> None:
    first, second = filled(machine, "vda", 3 * MIB + 512), filled(machine, "vdb", 2 * MIB)
    seen: list[tuple[int, int | None]] = []

    result = erase_devices({"devices": None}, context(machine, seen))

    assert first.read_bytes() == bytes(3 * MIB + 512)
    assert second.read_bytes() == bytes(2 * MIB)
    devices = result["devices"]
    assert isinstance(devices, list)
    assert [(d["device"], d["method"], d["bytes"]) for d in devices] == [
        ("/dev/vda", "overwrite", 3 * MIB + 512),
        ("/dev/vdb", "overwrite", 2 * MIB),
    ]
    total = 5 * MIB + 512
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) > 4, "progress is reported while a disk is written, not only between"


def test_without_zeros_a_disk_only_loses_its_metadata(machine: FakeMachine) -> None:
    disk = filled(machine, "vda", 4 * MIB)
    before = disk.read_bytes()

    result = erase_devices({"zeros": False}, context(machine, []))

    after = disk.read_bytes()
    assert result["devices"][0]["method"] == "metadata"  # type: ignore[index]
    assert after[:MIB] == bytes(MIB) and after[-MIB:] == bytes(MIB)
    assert after[MIB : 3 * MIB] == before[MIB : 3 * MIB]


def test_a_disk_that_cannot_be_written_fails_with_where_and_why(machine: FakeMachine) -> None:
    filled(machine, "vda", MIB)
    write(machine.env.sys_root / "block" / "vdb" / "size", f"{4 * MIB // 512}\n")
    os.symlink("/dev/full", machine.env.dev_root / "vdb")  # every write: ENOSPC

    with pytest.raises(DiskError) as caught:
        erase_devices({}, context(machine, []))

    assert caught.value.message == (
        "Overwriting /dev/vdb failed after 0.0 MiB of 4.0 MiB: No space left on device"
    )


def test_an_option_of_the_wrong_type_is_refused(machine: FakeMachine) -> None:
    machine.add_disk("vda", MIB)
    with pytest.raises(InvalidArguments, match="'zeros' must be true or false"):
        erase_devices({"zeros": "yes"}, context(machine, []))


# ------------------------------------------------------------- a real block device


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "backing.raw"
    backing.write_bytes(os.urandom(8 * MIB))
    if os.geteuid() != 0:
        pytest.skip("a loop device needs root")
    made = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"no loop device: {made.stderr.strip()}")
    device = made.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_a_block_device_is_zeroed_by_the_kernel_blkzeroout(
    machine: FakeMachine, loop_device: str
) -> None:
    write(machine.env.sys_root / "block" / "vda" / "size", f"{8 * MIB // 512}\n")
    os.symlink(loop_device, machine.env.dev_root / "vda")

    result = erase_devices({}, context(machine, []))

    assert result["devices"][0]["method"] == "zeroout"  # type: ignore[index]
    with open(loop_device, "rb") as handle:
        assert handle.read() == bytes(8 * MIB)


# --------------------------------------------------------------- secure erase tools


def tool(directory: Path, name: str, body: str) -> Path:
    """A fake ``name`` on a PATH of its own that logs its arguments."""
    directory.mkdir(exist_ok=True)
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "$@" >> "{directory}/calls"\n{body}\n')
    script.chmod(0o755)
    return directory


def nvme_machine(machine: FakeMachine, tools: Path) -> FakeMachine:
    filled(machine, "nvme0n1", 2 * MIB)
    machine.env = dataclasses.replace(machine.env, tools_path=str(tools))
    return machine


def test_an_nvme_namespace_is_formatted_with_cryptographic_erase(
    machine: FakeMachine, tmp_path: Path
) -> None:
    tools = tool(
        tmp_path / "bin",
        "nvme",
        """case "$1" in
  id-ctrl) echo '{"vid": 6900, "fna": 4}' ;;
  format) truncate -s 0 "$2"; truncate -s 2M "$2" ;;
esac""",
    )
    nvme_machine(machine, tools)

    result = erase_devices({}, context(machine, []))

    assert result["devices"][0]["method"] == "nvme_format"  # type: ignore[index]
    device = machine.env.dev_root / "nvme0n1"
    calls = (tools / "calls").read_text().splitlines()
    assert calls == [f"id-ctrl {device} -o json", f"format {device} -s 2 -f"]
    assert device.read_bytes() == bytes(2 * MIB)


def test_a_failed_nvme_format_fails_unless_told_to_overwrite(
    machine: FakeMachine, tmp_path: Path
) -> None:
    tools = tool(
        tmp_path / "bin",
        "nvme",
        """case "$1" in
  id-ctrl) echo '{"fna": 0}' ;;
  format) echo "NVMe status: INVALID_FORMAT: The LBA Format specified is not supported" >&2
    exit 1 ;;
esac""",
    )
    nvme_machine(machine, tools)

    with pytest.raises(DiskError) as caught:
        erase_devices({}, context(machine, []))
    assert caught.value.message == (
        "nvme format /dev/nvme0n1 failed: NVMe status: INVALID_FORMAT: "
        "The LBA Format specified is not supported"
    )
    assert f"format {machine.env.dev_root / 'nvme0n1'} -s 1 -f" in (tools / "calls").read_text()

    result = erase_devices({"continue_if_secure_erase_fails": True}, context(machine, []))
    assert result["devices"][0]["method"] == "overwrite"  # type: ignore[index]
    assert (machine.env.dev_root / "nvme0n1").read_bytes() == bytes(2 * MIB)


def test_nvme_secure_erase_off_overwrites(machine: FakeMachine, tmp_path: Path) -> None:
    tools = tool(tmp_path / "bin", "nvme", "exit 1")
    nvme_machine(machine, tools)

    result = erase_devices({"nvme_secure_erase": False}, context(machine, []))

    assert result["devices"][0]["method"] == "overwrite"  # type: ignore[index]
    assert not (tools / "calls").exists()


def test_hdparm_security_section_is_read() -> None:
    assert ata_security(HDPARM_SECURITY) == AtaSecurity(supported=True, enhanced=True)
    assert ata_security(HDPARM_SECURITY).usable
    frozen = HDPARM_SECURITY.replace("\tnot\tfrozen", "\t\tfrozen")
    assert not ata_security(frozen).usable
    assert not ata_security("/dev/vda:\n").usable


def test_an_ata_disk_is_secure_erased_with_a_temporary_password(
    machine: FakeMachine, tmp_path: Path
) -> None:
    filled(machine, "sda", 2 * MIB)
    listing = tmp_path / "identify.txt"
    listing.write_text(HDPARM_SECURITY)
    tools = tool(
        tmp_path / "bin",
        "hdparm",
        f"""case "$*" in
  "-I "*) cat "{listing}" ;;
  *--security-erase-enhanced*) truncate -s 0 "$5"; truncate -s 2M "$5" ;;
esac""",
    )
    machine.env = dataclasses.replace(machine.env, tools_path=str(tools))

    result = erase_devices({}, context(machine, []))

    assert result["devices"][0]["method"] == "ata_secure_erase"  # type: ignore[index]
    device = machine.env.dev_root / "sda"
    assert (tools / "calls").read_text().splitlines() == [
        f"-I {device}",
        f"--user-master u --security-set-pass metalcast {device}",
        f"--user-master u --security-erase-enhanced metalcast {device}",
        f"-I {device}",
    ]
    assert device.read_bytes() == bytes(2 * MIB)
