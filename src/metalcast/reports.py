"""What a ramdisk agent reports in a heartbeat (``docs/agent-protocol.md``), as the
API hands it to the conductor."""

from __future__ import annotations

from dataclasses import dataclass, field

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
