"""A fake ``mdadm`` for the machine made of files (``agent_machine.FakeMachine``).

It answers the calls the agent makes (``--create``, ``--assemble --scan``, ``--detail
--export``, ``--stop``, ``--zero-superblock``) as mdadm does, and keeps the kernel's
side in the fake ``/sys/block/mdN`` (``size``, ``md/level``, ``slaves/``) with a sparse
file as ``/dev/mdN``.  It does not mirror: the array's device is a file of its own.
What is "on the disks" (the superblocks) outlives :meth:`FakeMdadm.reboot`, which
stops every array as a reboot into the ramdisk does.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent_machine import MIB, FakeMachine, write

from metalcast_agent.errors import RaidError

_LEVELS = {"0": "raid0", "1": "raid1", "10": "raid10"}


@dataclass
class Superblock:
    """What mdadm --create wrote at the end of the members."""

    uuid: str
    name: str
    level: str
    members: list[str]
    size: int  # bytes of the array


@dataclass
class FakeMdadm:
    machine: FakeMachine
    calls: list[list[str]] = field(default_factory=list)
    superblocks: list[Superblock] = field(default_factory=list)
    #: device name -> the superblock it runs
    running: dict[str, Superblock] = field(default_factory=dict)

    def __call__(self, args: Sequence[str]) -> str:
        argv = list(args)
        self.calls.append([self._short(a) for a in argv])
        verb = argv[0]
        if verb == "--create":
            return self._create(argv)
        if verb == "--assemble":
            assert argv == ["--assemble", "--scan", "--homehost=any"], argv
            return self._assemble()
        if verb == "--detail":
            return self._detail(Path(argv[-1]).name)
        if verb == "--stop":
            return self._stop(Path(argv[-1]).name)
        if verb == "--zero-superblock":
            return self._zero(Path(argv[-1]).name)
        raise RaidError(f"fake mdadm: unexpected {argv}")

    def _short(self, arg: str) -> str:
        """Device paths as /dev/NAME, whatever the fake /dev is."""
        root = str(self.machine.env.dev_root)
        return "/dev" + arg[len(root) :] if arg.startswith(root) else arg

    def reboot(self) -> None:
        """Every array stopped, as after a reboot; the superblocks stay."""
        for name in list(self.running):
            self._remove(name)

    def _create(self, argv: list[str]) -> str:
        device = Path(argv[1]).name
        options = dict(a.removeprefix("--").split("=", 1) for a in argv if "=" in a)
        members = [Path(a).name for a in argv[2:] if not a.startswith("--")]
        assert "--run" in argv and options["metadata"] == "1.0", argv
        assert options["homehost"] == "any" and int(options["raid-devices"]) == len(members)
        sizes = [(self.machine.env.dev_root / m).stat().st_size for m in members]
        per_member = int(options["size"]) * 1024 if "size" in options else min(sizes) - MIB
        if per_member > min(sizes) - 8192:
            raise RaidError(f"mdadm: {members[0]} is not large enough for --size")
        copies = {"0": 1, "1": len(members), "10": 2}[options["level"]]
        size = per_member * len(members) // copies
        index = len(self.superblocks) + 1
        block = Superblock(
            uuid=f"{index:08x}:0000beef:0000cafe:{len(members):08x}",
            name=options["name"],
            level=options["level"],
            members=members,
            size=size,
        )
        self.superblocks.append(block)
        self._run(device, block)
        return ""

    def _run(self, device: str, block: Superblock) -> None:
        sys_md = self.machine.env.sys_root / "block" / device
        write(sys_md / "size", f"{block.size // 512}\n")
        write(sys_md / "md" / "level", _LEVELS[block.level] + "\n")
        for member in block.members:
            write(sys_md / "slaves" / member / "dev", "9:0\n")
        with (self.machine.env.dev_root / device).open("wb") as handle:
            handle.truncate(block.size)
        self.running[device] = block

    def _assemble(self) -> str:
        waiting = [b for b in self.superblocks if b not in self.running.values()]
        if not waiting:
            raise RaidError("mdadm: No arrays found in config file or automatically")
        for block in waiting:
            self._run(f"md{127 - len(self.running)}", block)
        return ""

    def _detail(self, device: str) -> str:
        block = self.running.get(device)
        if block is None:
            raise RaidError(f"mdadm: cannot open /dev/{device}: No such file or directory")
        return (
            f"MD_LEVEL={_LEVELS[block.level]}\nMD_DEVICES={len(block.members)}\n"
            f"MD_METADATA=1.0\nMD_UUID={block.uuid}\nMD_NAME={block.name}\n"
        )

    def _stop(self, device: str) -> str:
        if device not in self.running:
            raise RaidError(f"mdadm: error opening /dev/{device}: No such file or directory")
        self._remove(device)
        return ""

    def _remove(self, device: str) -> None:
        shutil.rmtree(self.machine.env.sys_root / "block" / device)
        (self.machine.env.dev_root / device).unlink()
        del self.running[device]

    def _zero(self, member: str) -> str:
        if any(member in b.members for b in self.running.values()):
            raise RaidError(f"mdadm: Couldn't open /dev/{member} for write - not zeroing")
        for block in self.superblocks:
            if member in block.members:
                block.members.remove(member)
        self.superblocks = [b for b in self.superblocks if b.members]
        return ""
