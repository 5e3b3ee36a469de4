"""The ``ipmi-sol`` console: a node's serial console over IPMI Serial-over-LAN.

Enabling it opens an SOL session from the conductor that owns the node (pyghmi,
:mod:`.sol`); everything the node prints goes into its bounded console log
(:mod:`metalcast.drivers.console_log`), which metalcast's websocket proxy and
``GET /v1/nodes/{node}/console/log`` read, and keystrokes from the proxy are sent
to the BMC.  The session belongs to this process: after a restart or a takeover
:meth:`IPMISolConsole.console_alive` says False and the conductor opens it again.

Errors::

    MissingDriverInfo      driver_info lacks ipmi_address or holds a bad value
    InvalidInput           input for a console that is not open here
    RetryableDriverError   no answer from the BMC
    FatalDriverError       login or SOL activation refused
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from metalcast.drivers.base import ConsoleInterface, DriverContext
from metalcast.drivers.bmc_sessions import BmcFailure
from metalcast.drivers.console_log import ConsoleOutput
from metalcast.drivers.ipmi.client import IpmiTarget
from metalcast.drivers.ipmi.info import IpmiInfo
from metalcast.drivers.ipmi.sol import SolConsoles
from metalcast.errors import FatalDriverError, InvalidInput, RetryableDriverError


class IPMISolConsole(ConsoleInterface):
    """A node's serial console over IPMI SOL, proxied by metalcast."""

    name = "ipmi-sol"
    info_model: ClassVar[type[BaseModel]] = IpmiInfo

    def __init__(self, consoles: SolConsoles | None = None) -> None:
        self.consoles = consoles or SolConsoles()

    def start_console(self, ctx: DriverContext) -> None:
        """Open the SOL session.  Raises MissingDriverInfo, DriverError."""
        target = IpmiTarget.from_info(ctx.info(IpmiInfo))
        try:
            self.consoles.start(ctx.node.uuid, target)
        except BmcFailure as exc:
            raise _driver_error(exc, "start_console") from exc

    def stop_console(self, ctx: DriverContext) -> None:
        """Close the SOL session (its log stays)."""
        self.consoles.stop(ctx.node.uuid)

    def get_console(self, ctx: DriverContext) -> dict[str, Any]:
        """Reached through metalcast's websocket proxy."""
        return {"type": "websocket"}

    def console_output(
        self, ctx: DriverContext, *, offset: int | None, wait: float
    ) -> ConsoleOutput:
        return self.consoles.log(ctx.node.uuid).read(offset, wait=wait)

    def console_input(self, ctx: DriverContext, data: bytes) -> None:
        """Raises InvalidInput (not open here), DriverError (the BMC refused it)."""
        if not self.consoles.alive(ctx.node.uuid):
            raise InvalidInput(f"the console of node {ctx.node.uuid} is not open")
        try:
            self.consoles.send(ctx.node.uuid, data)
        except BmcFailure as exc:
            raise _driver_error(exc, "console_input") from exc

    def console_alive(self, ctx: DriverContext) -> bool:
        return self.consoles.alive(ctx.node.uuid)


def _driver_error(exc: BmcFailure, operation: str) -> Exception:
    cls = RetryableDriverError if exc.retryable else FatalDriverError
    return cls(f"IPMI SOL: {exc.cause}", operation=operation)
