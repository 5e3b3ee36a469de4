"""Software RAID in the ramdisk: Debian's ``mdadm`` and the md kernel modules.

The agent builds and assembles md arrays with ``mdadm`` (docs/raid.md).  The binary
comes from Debian's ``mdadm`` package with the shared libraries it needs, found from
its ELF ``DT_NEEDED`` entries (:func:`metalcast.ramdisk.python_runtime.library_closure`)
in ``libudev1`` and ``libc6``, never from the build host.  The kernel side is
:data:`MODULES` (``md_mod`` comes with them as their dependency).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from metalcast.ramdisk import python_runtime
from metalcast.ramdisk.errors import RamdiskError

#: what mdadm is unpacked from (libc6 comes with the Python runtime's packages)
PACKAGES = ("mdadm", "libudev1")
#: the RAID levels the agent builds: 0, 1 and 1+0
MODULES = ("raid0", "raid1", "raid10")
#: where Debian's package puts the binary (merged-/usr releases: usr/sbin)
BINARIES = ("sbin/mdadm", "usr/sbin/mdadm")


def stage_mdadm(trees: Sequence[Path], stage: Path, scratch: Path) -> str:
    """Put ``mdadm`` and the libraries it needs into ``stage``; its staged path.

    ``trees`` are the unpacked ``mdadm``, ``libudev1`` and ``libc6`` packages.

    Raises:
        RamdiskError: the package has no mdadm, or a library is in none of the trees.
    """
    for tree in trees:
        shutil.copytree(tree, scratch, symlinks=True, dirs_exist_ok=True)
    binary = next((b for b in BINARIES if (scratch / b).is_file()), None)
    if binary is None:
        raise RamdiskError(f"the mdadm package holds none of {', '.join(BINARIES)}")
    libraries, missing = python_runtime.library_closure(scratch, [binary])
    if missing:
        raise RamdiskError(
            f"the Debian packages {', '.join(PACKAGES)} and libc6 lack {', '.join(missing)}, "
            f"which {binary} needs"
        )
    for relative in [binary, *libraries]:
        python_runtime.stage_path(scratch, stage, relative)
    return binary
