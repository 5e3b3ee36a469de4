"""Where the agent finds the machine: /sys, /proc, /dev, /etc, the power commands and
the commands that start the rescue SSH server.

Everything the agent reads or writes on the host goes through an :class:`Environment`,
so tests point it at a fake ``/sys`` tree and use regular files as block devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from metalcast_agent.tools import SEARCH_PATH, Tool, run_mdadm

#: what the agent runs when writing to /proc/sysrq-trigger fails
DEFAULT_POWER_COMMANDS: dict[str, tuple[str, ...]] = {
    "power_off": ("poweroff", "-f"),
    "reboot": ("reboot", "-f"),
}
#: where the rescue SSH server's host key is generated at start
RESCUE_HOST_KEY = "/etc/dropbear/dropbear_ed25519_host_key"
#: what ``rescue`` runs, in order, each to its end, once the rescue user has its
#: password: a new host key, then dropbear (it listens before it goes to the
#: background, so the port is open once it returns); /usr/sbin is not on the PATH
DEFAULT_SSH_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("/usr/bin/dropbearkey", "-t", "ed25519", "-f", RESCUE_HOST_KEY),
    ("/usr/sbin/dropbear", "-r", RESCUE_HOST_KEY, "-p", "22", "-E"),
)


@dataclass(frozen=True, slots=True)
class Environment:
    """The filesystem roots, power commands and tools of the machine the agent runs on."""

    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    dev_root: Path = Path("/dev")
    #: where ``rescue`` writes passwd and shadow
    etc_root: Path = Path("/etc")
    power_commands: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_POWER_COMMANDS)
    )
    #: where the agent looks for the tools it runs (``nvme``, ``hdparm``)
    tools_path: str = SEARCH_PATH
    #: runs mdadm (software RAID): arguments in, standard output out
    mdadm: Tool = run_mdadm
    ssh_commands: tuple[tuple[str, ...], ...] = DEFAULT_SSH_COMMANDS

    def device_path(self, name: str) -> Path:
        """The path of device ``name`` (``"vda"`` or ``"/dev/vda"``) under ``dev_root``."""
        return self.dev_root / name.removeprefix("/dev/")
