"""Software RAID in the agent: the plan (which disks, how much of each), the
create/delete commands through an injected mdadm, write_image onto the RAID root
volume, and the real mdadm runner's errors."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from agent_machine import MIB, FakeMachine, FileServer, make_iso, sha256
from fake_mdadm import FakeMdadm

from metalcast_agent import tools
from metalcast_agent.commands import CommandContext
from metalcast_agent.errors import InvalidArguments, RaidError
from metalcast_agent.handlers import default_handlers
from metalcast_agent.imagewrite import write_image
from metalcast_agent.protocol import Disk
from metalcast_agent.raid import plan_arrays

GIB = 1024**3
ROOT: dict[str, Any] = {
    "size_gb": "MAX",
    "raid_level": "1",
    "is_root_volume": True,
    "controller": "software",
}


def disks(*sizes_gib: float) -> list[Disk]:
    return [
        Disk(name=f"/dev/vd{chr(ord('a') + i)}", size=int(s * GIB), serial=f"S{i}")
        for i, s in enumerate(sizes_gib)
    ]


# ------------------------------------------------------------------------- the plan


def test_a_max_mirror_takes_the_two_smallest_disks_whole() -> None:
    [plan] = plan_arrays([ROOT], disks(3, 2, 4))
    assert [d.name for d in plan.members] == ["/dev/vdb", "/dev/vda"]
    assert (plan.device, plan.name, plan.level, plan.member_kib) == ("/dev/md0", "root", "1", None)


@pytest.mark.parametrize(
    ("level", "size_gb", "count", "member_gib"),
    [("1", 1, 2, 1.0), ("0", 3, 2, 1.5), ("1+0", 4, 4, 2.0), ("0", 1, 3, 1 / 3)],
)
def test_each_member_gives_its_share_of_the_size_in_whole_mib(
    level: str, size_gb: int, count: int, member_gib: float
) -> None:
    logical = {"size_gb": size_gb, "raid_level": level, "number_of_physical_disks": count}
    [plan] = plan_arrays([{**logical, "controller": "software"}], disks(*[4] * count))
    assert plan.member_kib is not None
    assert plan.member_kib % 1024 == 0
    assert 0 <= plan.member_kib * 1024 - member_gib * GIB < MIB


def test_a_size_the_smallest_member_cannot_give_is_refused() -> None:
    with pytest.raises(RaidError) as caught:
        plan_arrays([{**ROOT, "size_gb": 2}], disks(2, 3))
    assert caught.value.message == (
        "Logical disk 0 (RAID 1, 2 GiB) needs 2048 MiB of each disk; /dev/vda has 2047 MiB "
        "for it (1 MiB of each disk holds the md superblock)"
    )
    [plan] = plan_arrays([{**ROOT, "size_gb": 2}], disks(2.001, 3))
    assert plan.member_kib == 2 * 1024 * 1024


def test_not_enough_disks_left_names_them() -> None:
    data = {"size_gb": "MAX", "raid_level": "0", "controller": "software"}
    with pytest.raises(
        RaidError, match=r"Logical disk 1 \(RAID 0\) needs 2 disks of its own; 1 left"
    ):
        plan_arrays([ROOT, data], disks(2, 3, 4))


def test_physical_disks_choose_first_by_name_or_hints() -> None:
    data = {"size_gb": "MAX", "raid_level": "1", "controller": "software"}
    pinned = {**ROOT, "physical_disks": ["/dev/vdd", {"serial": "S2"}], "volume_name": "sys"}
    data_plan, root_plan = plan_arrays([data, pinned], disks(1, 1, 5, 5))
    assert [d.name for d in root_plan.members] == ["/dev/vdd", "/dev/vdc"]
    assert [d.name for d in data_plan.members] == ["/dev/vda", "/dev/vdb"]
    assert (root_plan.device, root_plan.name) == ("/dev/md1", "sys")
    assert (data_plan.device, data_plan.name) == ("/dev/md0", "md0")


def test_a_physical_disk_nobody_has_is_an_error() -> None:
    with pytest.raises(
        RaidError, match=r"no free disk matches physical disk \{'name': '/dev/sdz'\}"
    ):
        plan_arrays([{**ROOT, "physical_disks": ["/dev/sdz", "/dev/vda"]}], disks(2, 2))
    with pytest.raises(InvalidArguments, match="Unknown root device hint"):
        plan_arrays([{**ROOT, "physical_disks": [{"colour": "red"}, "/dev/vda"]}], disks(2, 2))


# ------------------------------------------------------------------- the commands


@pytest.fixture
def mdadm(machine: FakeMachine) -> FakeMdadm:
    return FakeMdadm(machine)


@pytest.fixture
def ctx(machine: FakeMachine, mdadm: FakeMdadm) -> CommandContext:
    return CommandContext(dataclasses.replace(machine.env, mdadm=mdadm))


def two_disks(machine: FakeMachine) -> None:
    for name, size in (("vda", 32 * MIB), ("vdb", 48 * MIB)):
        device = machine.add_disk(name, size)
        device.write_bytes(os.urandom(MIB) + bytes(size - 2 * MIB) + os.urandom(MIB))


def create(ctx: CommandContext, *logical: dict[str, Any]) -> dict[str, object]:
    handler = default_handlers()["create_raid_configuration"]
    return handler({"logical_disks": list(logical)}, ctx)


def test_create_builds_a_mirror_with_metadata_1_0_over_whole_disks(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext
) -> None:
    two_disks(machine)
    result = create(ctx, ROOT)
    assert mdadm.calls[0] == ["--assemble", "--scan", "--homehost=any"]
    assert mdadm.calls[1] == [
        "--create", "/dev/md0", "--run", "--metadata=1.0", "--level=1", "--raid-devices=2",
        "--name=root", "--homehost=any", "/dev/vda", "/dev/vdb",
    ]  # fmt: skip
    block = mdadm.superblocks[0]
    assert result == {
        "logical_disks": [
            {
                **ROOT,
                "volume_name": "root",
                "size_gb": 0,  # 31 MiB: under a GiB
                "physical_disks": ["/dev/vda", "/dev/vdb"],
                "md_uuid": block.uuid,
            }
        ]
    }
    # what was on the members before (partition tables, old superblocks) is wiped
    for name in ("vda", "vdb"):
        content = machine.disk_bytes(name)
        assert content[:MIB] == bytes(MIB) and content[-MIB:] == bytes(MIB)


def test_a_sized_raid_0_passes_each_members_share(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext
) -> None:
    for name in ("vda", "vdb"):
        machine.add_disk(name, 2 * GIB)
    create(ctx, {"size_gb": 1, "raid_level": "0", "controller": "software", "volume_name": "d"})
    assert "--size=524288" in mdadm.calls[1] and "--level=0" in mdadm.calls[1]


def test_create_refuses_disks_of_a_running_array(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext
) -> None:
    two_disks(machine)
    create(ctx, ROOT)
    with pytest.raises(RaidError, match="/dev/vda is part of /dev/md0: delete the RAID"):
        create(ctx, ROOT)


def test_create_needs_software_logical_disks(ctx: CommandContext) -> None:
    with pytest.raises(InvalidArguments, match="controller must be 'software'"):
        create(ctx, {**ROOT, "controller": "RAID.1"})
    with pytest.raises(InvalidArguments, match="needs 'logical_disks'"):
        default_handlers()["create_raid_configuration"]({}, ctx)


def test_delete_stops_the_arrays_and_wipes_their_members(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext
) -> None:
    two_disks(machine)
    create(ctx, ROOT)
    mdadm.reboot()  # a new boot of the ramdisk: nothing assembled
    result = default_handlers()["delete_raid_configuration"]({}, ctx)
    assert result == {"deleted": ["/dev/md127"], "members": ["/dev/vda", "/dev/vdb"]}
    assert mdadm.calls[-4:] == [
        ["--detail", "--export", "/dev/md127"],
        ["--stop", "/dev/md127"],
        ["--zero-superblock", "/dev/vda"],
        ["--zero-superblock", "/dev/vdb"],
    ]
    assert mdadm.superblocks == [] and mdadm.running == {}
    assert default_handlers()["delete_raid_configuration"]({}, ctx) == {
        "deleted": [],
        "members": [],
    }


# ------------------------------------------------------------ the RAID root volume


def image_args(files: FileServer, data: bytes, **extra: object) -> dict[str, object]:
    files.files["/image.raw"] = data
    return {
        "url": files.url("/image.raw"),
        "checksum_algo": "sha256",
        "checksum": sha256(data),
        "size": len(data),
        "root_device": {"name": "/dev/vdb"},  # hints give way to the RAID root
    } | extra


def test_the_image_goes_onto_the_root_array_assembled_after_a_reboot(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext, files: FileServer
) -> None:
    two_disks(machine)
    uuid = create(ctx, ROOT)["logical_disks"][0]["md_uuid"]  # type: ignore[index]
    mdadm.reboot()
    image = os.urandom(MIB) + bytes(3 * MIB) + os.urandom(4096)

    result = write_image(image_args(files, image, raid_root=uuid), ctx)

    assert result["device"] == "/dev/md127"
    assert machine.disk_bytes("md127")[: len(image)] == image
    assert machine.disk_bytes("vdb")[:MIB] == bytes(MIB)  # not written past the array


def test_the_config_drive_goes_onto_the_root_array_too(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext, files: FileServer, tmp_path: Path
) -> None:
    machine.add_disk("vda", 128 * MIB)
    machine.add_disk("vdb", 160 * MIB)
    uuid = create(ctx, ROOT)["logical_disks"][0]["md_uuid"]  # type: ignore[index]
    mbr = bytearray(4 * MIB)
    mbr[510:512] = b"\x55\xaa"  # an MBR with no partition yet
    image = bytes(mbr)
    written = write_image(image_args(files, image, raid_root=uuid), ctx)
    iso = make_iso(tmp_path, {"openstack/latest/meta_data.json": "{}"})
    files.files["/drive.iso"] = iso
    drive = {
        "url": files.url("/drive.iso"),
        "checksum_algo": "sha256",
        "checksum": sha256(iso),
        "device": written["device"],
    }
    result = default_handlers()["write_configdrive"](drive, ctx)
    assert (result["device"], result["partition"]) == ("/dev/md0", "/dev/md0p1")
    assert iso in machine.disk_bytes("md0")


def test_a_missing_root_array_is_a_clear_failure(
    machine: FakeMachine, ctx: CommandContext, files: FileServer
) -> None:
    two_disks(machine)
    uuid = "00000009:0000beef:0000cafe:00000002"
    with pytest.raises(RaidError) as caught:
        write_image(image_args(files, b"x" * 4096, raid_root=uuid), ctx)
    assert caught.value.message == (
        f"The node's RAID root volume (md UUID {uuid}) is not on this machine; arrays: none. "
        "Build it again (clean steps raid.delete_configuration, raid.create_configuration)"
    )


def test_an_image_larger_than_the_root_array_is_refused(
    machine: FakeMachine, mdadm: FakeMdadm, ctx: CommandContext, files: FileServer
) -> None:
    two_disks(machine)
    uuid = create(ctx, ROOT)["logical_disks"][0]["md_uuid"]  # type: ignore[index]
    with pytest.raises(Exception, match=r"Disk /dev/md0 \(31.0 MiB\) is too small"):
        write_image(image_args(files, bytes(40 * MIB), raid_root=uuid), ctx)


# ------------------------------------------------------------- the real mdadm runner


def fake_program(directory: Path, script: str) -> None:
    program = directory / "mdadm"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)


def test_the_runner_gives_mdadms_last_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_program(tmp_path, 'echo "mdadm: first" >&2; echo "mdadm: /dev/vda is busy" >&2; exit 1')
    monkeypatch.setattr(tools, "SEARCH_PATH", str(tmp_path))
    with pytest.raises(RaidError) as caught:
        tools.run_mdadm(["--stop", "/dev/md0"])
    assert caught.value.message == "mdadm --stop /dev/md0 failed: mdadm: /dev/vda is busy"


def test_the_runner_returns_stdout_and_never_waits_at_a_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_program(tmp_path, 'read answer; echo "MD_UUID=x:$answer:$1"')
    monkeypatch.setattr(tools, "SEARCH_PATH", str(tmp_path))
    assert tools.run_mdadm(["--detail"]) == "MD_UUID=x::--detail\n"


def test_without_mdadm_the_ramdisk_needs_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "SEARCH_PATH", str(tmp_path))
    with pytest.raises(RaidError, match="mdadm is not installed in this ramdisk"):
        tools.run_mdadm(["--assemble", "--scan"])
