"""The machine tools the agent runs, staged into the ramdisk from Debian packages.

Each :class:`RamdiskTool` names the packages a program and its libraries come from
and where the program sits in its package; :func:`stage_tool` copies the program and
exactly the shared libraries its ELF ``DT_NEEDED`` entries need, transitively
(:func:`metalcast.ramdisk.python_runtime.library_closure`), so nothing comes from the
build host.  The tools:

- ``mdadm``: software RAID (docs/raid.md); the md modules are in ``build.MODULES``.
- ``dropbear``: the rescue SSH server; host keys are not built in, the agent makes one
  when ``rescue`` starts it (``metalcast_agent.environment.DEFAULT_SSH_COMMANDS``).
- ``nvme`` (nvme-cli) and ``hdparm``: ``erase_devices``' NVMe format and ATA Secure
  Erase (``metalcast_agent.erase``), for the disks that support them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from metalcast.ramdisk import python_runtime
from metalcast.ramdisk.errors import RamdiskError

#: packages the Python runtime brings already, whose libraries tools may need too
SHARED_PACKAGES = python_runtime.PACKAGES


@dataclass(frozen=True)
class RamdiskTool:
    """A program for the ramdisk: ``packages`` are its own and its libraries' Debian
    packages (besides :data:`SHARED_PACKAGES`); each entry of ``programs`` is one
    program, as the paths it may have in its package (merged-``/usr`` or not)."""

    name: str
    packages: tuple[str, ...]
    programs: tuple[tuple[str, ...], ...]


MDADM = RamdiskTool("mdadm", ("mdadm", "libudev1"), (("sbin/mdadm", "usr/sbin/mdadm"),))
DROPBEAR = RamdiskTool(
    "dropbear",
    ("dropbear-bin", "libcrypt1", "libtomcrypt1", "libtommath1", "libgmp10"),
    (("usr/sbin/dropbear",), ("usr/bin/dropbearkey",)),
)
#: nvme-cli's libnvme-mi links D-Bus, which links libsystemd and its compressors
NVME = RamdiskTool(
    "nvme-cli",
    ("nvme-cli", "libnvme1", "libjson-c5", "libdbus-1-3", "libsystemd0", "libcap2",
     "libgcrypt20", "libgpg-error0", "liblzma5", "libzstd1", "liblz4-1"),
    (("usr/sbin/nvme", "sbin/nvme"),),
)  # fmt: skip
HDPARM = RamdiskTool("hdparm", ("hdparm",), (("sbin/hdparm", "usr/sbin/hdparm"),))
#: every tool a ramdisk carries, in the order they are staged
TOOLS = (MDADM, DROPBEAR, NVME, HDPARM)
#: what dropbear accepts as login shells (the rescue user's is busybox sh)
SHELLS = "/bin/sh\n"


def packages() -> list[str]:
    """The Debian packages every tool needs, besides :data:`SHARED_PACKAGES`."""
    return [name for tool in TOOLS for name in tool.packages]


def stage_tool(
    tool: RamdiskTool, trees: Mapping[str, Path], stage: Path, scratch: Path
) -> list[str]:
    """Put ``tool``'s programs and the libraries they need into ``stage``; the staged
    programs (paths relative to the stage).

    ``trees`` maps package names to their unpacked trees (the tool's packages and
    :data:`SHARED_PACKAGES`, as many as are there).

    Raises:
        RamdiskError: a program is in none of its paths, or a library in no package.
    """
    root = scratch / tool.name
    for name in (*tool.packages, *SHARED_PACKAGES):
        if name in trees:
            shutil.copytree(trees[name], root, symlinks=True, dirs_exist_ok=True)
    programs = []
    for paths in tool.programs:
        found = next((p for p in paths if (root / p).is_file()), None)
        if found is None:
            raise RamdiskError(
                f"the Debian package {tool.packages[0]} holds none of {', '.join(paths)}"
            )
        programs.append(found)
    libraries, missing = python_runtime.library_closure(root, programs)
    if missing:
        raise RamdiskError(
            f"the Debian packages {', '.join(tool.packages)} and the Python runtime's "
            f"lack {', '.join(missing)}, which {' or '.join(programs)} need"
        )
    for relative in (*programs, *libraries):
        python_runtime.stage_path(root, stage, relative)
    if tool is DROPBEAR:
        shells = stage / "etc" / "shells"
        shells.parent.mkdir(parents=True, exist_ok=True)
        shells.write_text(SHELLS)
    return programs
