"""The machine's own tools the agent runs: ``mdadm`` (argv in, stdout out).

A tool is a callable of its arguments so that tests give the agent's
:class:`~metalcast_agent.environment.Environment` a fake one; the real one runs the
program found on ``PATH`` (``/sbin`` and ``/usr/sbin`` too) with no stdin, so that it
never waits for an answer at a prompt. Raises
:class:`~metalcast_agent.errors.RaidError` with the tool's own last line of error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from metalcast_agent.errors import RaidError

#: a tool: its arguments -> its standard output
Tool = Callable[[Sequence[str]], str]
#: seconds a tool may take (mdadm returns at once: resync runs in the kernel)
TIMEOUT = 600
#: where the tools are looked for: $PATH, and the sbin directories the ramdisk's
#: /init leaves out of it (Debian puts mdadm, nvme and hdparm there)
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/sbin", "/usr/sbin"])


def run_mdadm(args: Sequence[str]) -> str:
    """Run ``mdadm`` with ``args``; its standard output.

    Raises:
        RaidError: mdadm is missing, timed out or exited non-zero.
    """
    program = shutil.which("mdadm", path=SEARCH_PATH)
    if program is None:
        raise RaidError(
            "mdadm is not installed in this ramdisk: rebuild it (metalcast ramdisk build)"
        )
    try:
        done = subprocess.run(
            [program, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RaidError(f"mdadm {' '.join(args)} failed: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise RaidError(f"mdadm {' '.join(args)} failed: {reason}")
    return done.stdout
