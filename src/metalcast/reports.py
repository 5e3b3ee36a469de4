"""What a ramdisk agent reports in a heartbeat (``docs/agent-protocol.md``), as the
API hands it to the conductor; and how its progress reads to a person
(:class:`AgentProgress`: the CLI's ``--wait`` and the dashboard show it alike)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metalcast_agent.protocol import CommandResult, ProgressReport


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One heartbeat's content."""

    #: where an Ironic agent listens; metalcast's agents listen nowhere (None)
    callback_url: str | None = None
    agent_version: str | None = None
    #: the token the lookup gave; never logged
    token: str | None = field(default=None, repr=False)
    #: finished commands (the API checked only that each is an object with an id)
    results: tuple[CommandResult, ...] = ()
    #: the running command's progress (an object; its fields unchecked)
    progress: ProgressReport | None = None
    #: log lines since the last accepted heartbeat
    log: tuple[str, ...] = ()


#: ``driver_internal_info`` keys of progress: the deploy agent's last report, and that
#: of a step the BMC carries out (a firmware update)
AGENT_PROGRESS_KEY = "agent_progress"
STEP_PROGRESS_KEY = "step_progress"

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(count: float) -> str:
    """``512 B``, ``1.5 KiB``, ``120.0 MiB``: a byte count in binary units."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


@dataclass(frozen=True, slots=True)
class AgentProgress:
    """The deploy agent's last report on its running command, as the conductor keeps
    it in ``driver_internal_info.agent_progress`` (``name``, ``done`` and ``total``
    bytes, ``rate`` in bytes per second); None where a value is missing or unusable."""

    command: str | None
    done: int | None
    total: int | None
    rate: float | None

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> AgentProgress | None:
        """The progress ``node`` (as the API returns it) carries, or None: no report,
        or one that names neither a command nor a byte count."""
        info = node.get("driver_internal_info")
        report = info.get(AGENT_PROGRESS_KEY) if isinstance(info, Mapping) else None
        if not isinstance(report, Mapping):
            return None
        name = report.get("name")
        done, total = _amount(report.get("done")), _amount(report.get("total"))
        rate = _amount(report.get("rate"))
        progress = cls(str(name) if name else None, _whole(done), _whole(total), rate)
        return progress if progress.command or progress.done is not None else None

    def __str__(self) -> str:
        """``write_image 120.0 MiB of 256.0 MiB (47%), 12.3 MiB/s``, or as much of it
        as is known: no total (or 0) leaves out "of …", no rate (or 0) the rate."""
        parts = [self.command] if self.command else []
        if self.done is not None:
            amount = size_text(self.done)
            if self.total:
                amount += f" of {size_text(self.total)} ({self.percent}%)"
            parts.append(amount)
        text = " ".join(parts)
        return f"{text}, {size_text(self.rate)}/s" if self.rate else text

    @property
    def percent(self) -> int | None:
        """How much of ``total`` is done, rounded, but 100 only once all of it is."""
        if self.done is None or not self.total:
            return None
        if self.done >= self.total:
            return 100
        return min(round(self.done * 100 / self.total), 99)


@dataclass(frozen=True, slots=True)
class StepReport:
    """A running step's progress, as the conductor keeps it in
    ``driver_internal_info.step_progress`` while the BMC carries the step out (a
    firmware update): the step, what it works on, a percentage, the BMC's word for
    its state; None where missing or unusable."""

    command: str | None
    percent: int | None
    state: str | None

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> StepReport | None:
        """The step progress ``node`` carries, or None (no report, or one naming no
        step)."""
        info = node.get("driver_internal_info")
        report = info.get(STEP_PROGRESS_KEY) if isinstance(info, Mapping) else None
        if not isinstance(report, Mapping) or not report.get("step"):
            return None
        target = report.get("target")
        command = f"{report['step']} {target}" if target else str(report["step"])
        percent = _amount(report.get("percent"))
        state = report.get("state")
        return cls(
            command,
            None if percent is None else min(int(percent), 100),
            str(state) if state else None,
        )

    def __str__(self) -> str:
        """``firmware.update bmc 40% (Running)``, or as much of it as is known."""
        text = self.command or ""
        if self.percent is not None:
            text += f" {self.percent}%"
        return f"{text} ({self.state})" if self.state else text


def progress_of(node: Mapping[str, Any]) -> AgentProgress | StepReport | None:
    """What ``node`` (as the API returns it) reports of its running work: the deploy
    agent's progress, else that of a step the BMC carries out; None: neither."""
    return AgentProgress.of(node) or StepReport.of(node)


def _amount(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)
