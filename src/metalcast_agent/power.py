"""Power off or reboot the machine the agent runs on, after the result is reported.

The agent syncs, then writes ``o`` (power off) or ``b`` (reboot) to
``/proc/sysrq-trigger``: immediate, and needs no init system in the ramdisk. Should
the machine still be running ``grace`` seconds later (or the trigger be missing), it
runs ``poweroff -f`` / ``reboot -f``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from metalcast_agent.environment import Environment
from metalcast_agent.log import get_logger

POWER_ACTIONS = ("power_off", "reboot")
_SYSRQ = {"power_off": b"o", "reboot": b"b"}
_log = get_logger("power")


def perform(
    action: str,
    env: Environment,
    *,
    grace: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Power off or reboot now; returns (``False``) only when every way failed."""
    _log.info(
        "%s: syncing disks, then %s",
        action,
        "powering off" if action == "power_off" else "rebooting",
    )
    os.sync()
    if _sysrq(action, env):
        sleep(grace)
        _log.error("%s: still running %.0f s after sysrq; trying the command", action, grace)
    return _command(action, env)


def _sysrq(action: str, env: Environment) -> bool:
    try:
        fd = os.open(env.proc_root / "sysrq-trigger", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        _log.error("%s: cannot open sysrq-trigger: %s", action, exc.strerror)
        return False
    try:
        os.write(fd, _SYSRQ[action])
    except OSError as exc:
        _log.error("%s: sysrq-trigger refused: %s", action, exc.strerror)
        return False
    finally:
        os.close(fd)
    return True


def _command(action: str, env: Environment) -> bool:
    import subprocess  # only here: the usual path never needs it

    argv = env.power_commands.get(action)
    if not argv:
        return False
    try:
        completed = subprocess.run(argv, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        _log.error("%s: %s failed: %s", action, " ".join(argv), exc)
        return False
    if completed.returncode != 0:
        _log.error("%s: %s exited with %s", action, " ".join(argv), completed.returncode)
        return False
    return True
