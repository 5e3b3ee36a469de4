"""The agent's errors: every message is one line an operator can act on.

::

    AgentError                  a command failed; the message becomes the result's error
    ├── ConfigError             the kernel command line or the flags are incomplete
    ├── InvalidArguments        a command's arguments are missing or of the wrong type
    ├── DownloadError           an image or config drive could not be fetched
    ├── ChecksumMismatch        the bytes written are not the bytes expected
    ├── DiskError               no suitable disk, a disk too small, an I/O error
    ├── PartitionTableError     the config drive partition cannot be added
    ├── RaidError               mdadm failed, or a software RAID cannot be laid out
    ├── RescueFailed            the rescue user or the SSH server could not be set up
    └── ApiError                metalcast answered a lookup or heartbeat with an error
        └── ApiUnreachable      no answer at all: connection refused, timeout, DNS
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AgentError):
    """The agent cannot start: a required setting is missing or malformed."""


class InvalidArguments(AgentError):
    """A command's arguments are missing or of the wrong type."""


class DownloadError(AgentError):
    """An HTTP download failed (status, connection, truncated body)."""


class ChecksumMismatch(AgentError):
    """The streamed bytes do not hash to the expected checksum."""


class DiskError(AgentError):
    """No disk fits, or reading/writing a disk failed."""


class PartitionTableError(AgentError):
    """The disk's partition table cannot take the config drive partition."""


class RaidError(AgentError):
    """mdadm failed, or the disks cannot hold the software RAID asked for."""


class RescueFailed(AgentError):
    """Setting up the rescue system failed; the message says which step."""


class ApiError(AgentError):
    """metalcast answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class ApiUnreachable(ApiError):
    """metalcast did not answer: connection refused, reset or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=None)
