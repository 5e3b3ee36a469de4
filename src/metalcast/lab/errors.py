"""The virtual lab's errors (``metalcast lab up``/``down``/``serve``)::

    MetalcastError
    └── LabError               the lab cannot be brought up, served or torn down
        ├── LabAlreadyUp       ``lab up`` found a lab running in its directory
        ├── ServerUnreachable  no metalcast server answers at the API URL
        └── ServerRefused      the metalcast API refused a request (``status``)

A machine that cannot carry out a power action raises
:class:`~metalcast.lab.machine.MachineError` (its BMC answers with an IPMI error).
"""

from __future__ import annotations

from metalcast.errors import MetalcastError


class LabError(MetalcastError):
    """The lab cannot do what was asked; the message says what to do about it."""


class LabAlreadyUp(LabError):
    """A lab is up in this lab directory already."""


class ServerUnreachable(LabError):
    """No metalcast server answers at ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no metalcast server answers at {url}: start one with `metalcast server`")
        self.url = url


class ServerRefused(LabError):
    """The metalcast API answered a request with an error ``status``."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
