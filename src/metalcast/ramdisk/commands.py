"""Running the host tools a build needs, with errors that say what to do."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from metalcast.ramdisk.errors import RamdiskError

#: the Debian package that provides each host tool, for "not found" errors
TOOL_PACKAGES: Mapping[str, str] = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg": "dpkg",
    "zstd": "zstd",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "qemu-img": "qemu-utils",
    "genisoimage": "genisoimage",
}

#: how much of a failing tool's stderr goes into the error message
STDERR_TAIL = 600


def stderr_tail(stderr: bytes | str, limit: int = STDERR_TAIL) -> str:
    """The last lines of a tool's stderr on one line, at most ``limit`` characters."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tail = " / ".join(lines[-4:])
    return tail if len(tail) <= limit else "…" + tail[-limit:]


def run_tool(
    argv: Sequence[str | Path],
    *,
    what: str,
    hint: str = "",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run a host tool to completion (``stdin`` fed to it) and return its stdout.

    Raises:
        RamdiskError: the tool is missing (the message names its Debian package) or
            exited non-zero (``<what> failed: <stderr tail>; <hint>``).
    """
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            input=stdin if stdin is not None else b"",
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        package = TOOL_PACKAGES.get(Path(args[0]).name, "that provides it")
        raise RamdiskError(
            f"{what} failed: {args[0]} not found; install the Debian package {package}"
        ) from None
    if done.returncode != 0:
        message = f"{what} failed (exit {done.returncode}): {stderr_tail(done.stderr)}"
        raise RamdiskError(f"{message}; {hint}" if hint else message)
    return done.stdout
