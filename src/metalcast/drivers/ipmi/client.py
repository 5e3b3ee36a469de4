"""The IPMI seam: what the interfaces ask of a BMC, and the pool of sessions to BMCs.

:class:`IpmiClient` is a logged-in session to one BMC (pyghmi's in
:mod:`.pyghmi_client`, a fake in tests); its methods raise
:class:`~metalcast.drivers.bmc_sessions.BmcFailure`.  :class:`IpmiSessions` is
the :class:`~metalcast.drivers.bmc_sessions.SessionPool` of IPMI clients: one per
(address, port, username), reused across calls and worker threads.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from metalcast.drivers.bmc_call import BmcRef, CallPolicy, Runner, Sleep, call_with_deadline
from metalcast.drivers.bmc_sessions import SessionPool
from metalcast.drivers.ipmi.info import IpmiInfo


class ChassisCommand(enum.IntEnum):
    """Chassis Control directives (IPMI v2.0 section 28.3)."""

    OFF = 0
    ON = 1
    CYCLE = 2
    RESET = 3
    NMI = 4
    SOFT_OFF = 5


@dataclass(frozen=True, slots=True)
class BootFlags:
    """A boot device override; ``device`` None: none set (the firmware's own order)."""

    device: str | None
    persistent: bool = False
    uefi: bool = False


@dataclass(frozen=True, slots=True)
class SensorReading:
    name: str
    kind: str
    value: float | None
    unit: str
    health: str
    states: tuple[str, ...] = ()


class IpmiClient(Protocol):
    """A logged-in session to one BMC.  Every method raises BmcFailure."""

    def power_is_on(self) -> bool: ...

    def chassis(self, command: ChassisCommand) -> None: ...

    def boot_flags(self) -> BootFlags: ...

    def set_boot_flags(self, flags: BootFlags) -> None: ...

    def sensors(self) -> list[SensorReading]: ...

    def close(self) -> None:
        """Log out."""

    def abandon(self) -> None:
        """Forget the session without talking to the BMC; never raises."""


@dataclass(frozen=True, slots=True)
class IpmiTarget:
    """One BMC and the credentials to log in with."""

    address: str
    port: int
    username: str
    password: str = field(repr=False)
    priv_level: int = 4
    cipher_suite: int | None = None

    @classmethod
    def from_info(cls, info: IpmiInfo) -> IpmiTarget:
        return cls(
            address=info.ipmi_address,
            port=info.ipmi_port,
            username=info.ipmi_username,
            password=info.ipmi_password.get_secret_value(),
            priv_level=info.ipmi_priv_level.code,
            cipher_suite=info.ipmi_cipher_suite,
        )

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.address, self.port, self.username)

    @property
    def login(self) -> IpmiTarget:
        return self

    @property
    def ref(self) -> BmcRef:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return BmcRef("IPMI", f"{host}:{self.port}")


Connect = Callable[[IpmiTarget], IpmiClient]


class IpmiSessions(SessionPool[IpmiTarget, IpmiClient]):
    """Logged-in IPMI clients, one per (address, port, username)."""

    def __init__(
        self,
        connect: Connect | None = None,
        *,
        policy: CallPolicy | None = None,
        runner: Runner = call_with_deadline,
        sleep: Sleep = time.sleep,
    ) -> None:
        """``connect`` logs in (pyghmi by default); ``runner`` enforces deadlines."""
        super().__init__(
            connect or _pyghmi_connect,
            unreachable_hint="is ipmi_address/ipmi_port right and the BMC reachable?",
            policy=policy,
            runner=runner,
            sleep=sleep,
        )


def _pyghmi_connect(target: IpmiTarget) -> IpmiClient:
    from metalcast.drivers.ipmi.pyghmi_client import connect  # pyghmi loads on first use

    return connect(target)
