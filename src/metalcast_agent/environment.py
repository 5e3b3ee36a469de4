"""Where the agent finds the machine: /sys, /proc, /dev and the power commands.

Everything the agent reads or writes on the host goes through an :class:`Environment`,
so tests point it at a fake ``/sys`` tree and use regular files as block devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from metalcast_agent.tools import Tool, run_mdadm

#: what the agent runs when writing to /proc/sysrq-trigger fails
DEFAULT_POWER_COMMANDS: dict[str, tuple[str, ...]] = {
    "power_off": ("poweroff", "-f"),
    "reboot": ("reboot", "-f"),
}


@dataclass(frozen=True, slots=True)
class Environment:
    """The filesystem roots, power commands and tools of the machine the agent runs on."""

    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    dev_root: Path = Path("/dev")
    power_commands: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_POWER_COMMANDS)
    )
    #: where the agent looks for the tools it runs (``nvme``, ``hdparm``); None: $PATH
    tools_path: str | None = None
    #: runs mdadm (software RAID): arguments in, standard output out
    mdadm: Tool = run_mdadm

    def device_path(self, name: str) -> Path:
        """The path of device ``name`` (``"vda"`` or ``"/dev/vda"``) under ``dev_root``."""
        return self.dev_root / name.removeprefix("/dev/")
