"""What a ramdisk agent reports in a heartbeat (``docs/agent-protocol.md``), as the
API hands it to the conductor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One heartbeat's content."""

    #: where an Ironic agent listens; metalcast's agents listen nowhere (None)
    callback_url: str | None = None
    agent_version: str | None = None
    #: the token the lookup gave; never logged
    token: str | None = field(default=None, repr=False)
    #: finished commands: {"id", "name", "status", "result", "error"}
    results: tuple[Mapping[str, Any], ...] = ()
    #: the running command's progress: {"id", "name", "done", "total", "rate"}
    progress: Mapping[str, Any] | None = None
    #: log lines since the last accepted heartbeat
    log: tuple[str, ...] = ()
