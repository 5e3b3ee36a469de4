"""The boot services' errors (the tree is drawn in :mod:`metalcast.boot`)."""

from __future__ import annotations

from metalcast.errors import MetalcastError


class BootError(MetalcastError):
    """The boot services cannot do what was asked."""


class BootSetupError(BootError):
    """A file or a setting the boot services need is missing or invalid."""


class DnsmasqError(BootError):
    """dnsmasq could not be started (or exited while starting)."""


class BootHttpError(BootError):
    """The boot HTTP server could not start listening."""


class NetnsError(BootError):
    """An ``ip`` command on a network namespace, link or address failed."""

    def __init__(self, command: list[str], detail: str) -> None:
        super().__init__(f"{' '.join(command)} failed: {detail}")
        self.command = command
        self.detail = detail
