"""The rescue SSH server in the ramdisk: Debian's dropbear.

``dropbear`` and ``dropbearkey`` come from ``dropbear-bin``, their libraries from its
dependencies (``libcrypt1`` checks the SHA-512 crypt password hash, ``libtomcrypt1``,
``libtommath1``, ``libgmp10``) and from the packages the Python runtime already
brings (``libc6``, ``zlib1g``); which libraries are needed is read from the binaries themselves
(:func:`metalcast.ramdisk.python_runtime.library_closure`), so nothing comes from the
build host.  Host keys are not built in: the agent generates one when ``rescue``
starts the server (``metalcast_agent.environment.DEFAULT_SSH_COMMANDS``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from metalcast.ramdisk import python_runtime
from metalcast.ramdisk.errors import RamdiskError

PACKAGES = ("dropbear-bin", "libcrypt1", "libtomcrypt1", "libtommath1", "libgmp10")
#: the packages of :data:`PACKAGES`' libraries that the Python runtime already brings
SHARED_PACKAGES = ("libc6", "zlib1g")
BINARIES = ("usr/sbin/dropbear", "usr/bin/dropbearkey")
#: what dropbear accepts as login shells (the rescue user's is busybox sh)
SHELLS = "/bin/sh\n"


def stage_dropbear(trees: Mapping[str, Path], stage: Path, scratch: Path) -> tuple[str, ...]:
    """Put dropbear, dropbearkey and the libraries they need into ``stage``; the
    staged paths (relative).

    Raises:
        RamdiskError: a binary or a library is missing from the packages.
    """
    root = scratch / "dropbear"
    for name in (*PACKAGES, *SHARED_PACKAGES):
        shutil.copytree(trees[name], root, symlinks=True, dirs_exist_ok=True)
    for binary in BINARIES:
        if not (root / binary).is_file():
            raise RamdiskError(f"the Debian package dropbear-bin holds no {binary}")
    libraries, missing = python_runtime.library_closure(root, BINARIES)
    if missing:
        raise RamdiskError(
            f"the Debian packages {', '.join(PACKAGES)} lack {', '.join(missing)}, "
            f"which {' or '.join(BINARIES)} need"
        )
    for relative in (*BINARIES, *libraries):
        python_runtime.stage_path(root, stage, relative)
    shells = stage / "etc" / "shells"
    shells.parent.mkdir(parents=True, exist_ok=True)
    shells.write_text(SHELLS)
    return (*BINARIES, *libraries)
