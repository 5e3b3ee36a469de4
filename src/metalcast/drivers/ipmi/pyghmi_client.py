"""The IPMI client over pyghmi: login, chassis control, boot flags, sensors.

pyghmi reports login failures only as message text, drawn from its own tables of
RMCP+ status codes; :func:`classify` is the one place that reads that text, and it
matches it against those same tables.

These pyghmi habits are worked around here:

* pyghmi shares sessions process-wide by (address, user, password, port), and
  never forgets a session it once started logging in with: after that session
  breaks, every later ``Command`` for the same BMC gets the broken one back.
  :func:`connect` drops that leftover before logging in again.
* a login that outlived its deadline leaves a half-open session pyghmi would
  wait on again: :func:`_forget_leftovers` marks it broken.
* a session whose call outlived its deadline is still "valid" to pyghmi, which
  would hand it to the next ``Command`` and make that one wait too:
  :meth:`PyghmiClient.abandon` marks it broken.
* packets are processed by whichever thread turns pyghmi's event loop, so a
  dedicated thread must keep turning it (:func:`ensure_event_pump`).
* pyghmi asks the BMC who made it (Get Device ID) before every power read, until
  it knows an OEM handler for the manufacturer: for one it has none for (the lab's
  BMCs, many white-box ones) every read took two commands.  :func:`connect` asks
  once per session (:func:`_identify_once`).

The cipher suite a login proposes, and the Open Session answer checked against it,
are :mod:`.negotiation`'s.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as pyghmi_command
from pyghmi.ipmi.private import constants
from pyghmi.ipmi.private import session as pyghmi_session
from pyghmi.ipmi.private import util as pyghmi_util

from metalcast.drivers.bmc_sessions import BmcFailure, FailureKind
from metalcast.drivers.ipmi.client import BootFlags, ChassisCommand, IpmiTarget, SensorReading
from metalcast.drivers.ipmi.eventloop import ensure_event_pump
from metalcast.drivers.ipmi.negotiation import negotiating

P = ParamSpec("P")
R = TypeVar("R")

#: Ironic's boot device names and pyghmi's
_TO_PYGHMI = {"pxe": "network", "disk": "hd", "cdrom": "optical", "bios": "setup", "safe": "safe"}
_FROM_PYGHMI = {v: k for k, v in _TO_PYGHMI.items()}

_AUTH_STATUS = (0x09, 0x0A, 0x0C, 0x0D, 0x0E, 0x0F)
_AUTH_TEXTS = (
    *(constants.rmcp_codes[c] for c in _AUTH_STATUS),
    "Incorrect password provided",
    "wrong Kg",
)
_BUSY_TEXTS = tuple(constants.rmcp_codes[c] for c in (0x01, 0x0B))
_CIPHER_TEXTS = tuple(constants.rmcp_codes[c] for c in (0x04, 0x05, 0x06, 0x10, 0x11))
#: completion codes worth trying again: node busy, timeout, out of space, unspecified
_TRANSIENT_CODES = frozenset({0xC0, 0xC3, 0xC4, 0xCE, 0xFF})
_NO_CODE = frozenset({0, 0xFFFF})


def classify(exc: Exception) -> BmcFailure:
    """What a pyghmi error means for the operator."""
    text = str(exc)
    if text in ("", "None"):
        text = type(exc).__name__
    code = getattr(exc, "ipmicode", 0) or 0
    if any(t in text for t in _AUTH_TEXTS):
        return BmcFailure(
            FailureKind.AUTH,
            f"authentication rejected (check ipmi_username/ipmi_password and "
            f"ipmi_priv_level): {text}",
        )
    if any(t in text for t in _BUSY_TEXTS):
        return BmcFailure(FailureKind.BUSY, f"the BMC has no free session: {text}")
    if any(t in text for t in _CIPHER_TEXTS):
        return BmcFailure(FailureKind.SETTINGS, f"no cipher suite in common: {text}")
    if code not in _NO_CODE:
        kind = FailureKind.BUSY if code in _TRANSIENT_CODES else FailureKind.REJECTED
        return BmcFailure(kind, f"the BMC refused the command: {text} (code 0x{code:02X})")
    detail = "" if text == type(exc).__name__ else f" ({text})"
    return BmcFailure(
        FailureKind.NO_ANSWER,
        f"no answer from the BMC{detail}; check ipmi_address/ipmi_port and that "
        "the BMC is reachable",
    )


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """Turn whatever pyghmi raises into BmcFailure."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except BmcFailure:
            raise
        except pyghmi_exc.PyghmiException as exc:
            raise classify(exc) from exc
        except Exception as exc:
            # The library boundary: pyghmi indexes into answers without checking
            # them and has races between its event loop and its callers.
            raise BmcFailure(FailureKind.CLIENT, f"the IPMI client failed: {exc!r}") from exc

    return wrapper


@_translated
def connect(target: IpmiTarget) -> PyghmiClient:
    """Log in to ``target``.  Raises BmcFailure."""
    ensure_event_pump()
    _forget_leftovers(target)
    command = _login(target)
    _identify_once(command)
    return PyghmiClient(command)


def _login(target: IpmiTarget) -> Any:
    """A logged-in pyghmi Command, proposing ``target.cipher_suite`` if set.

    Raises BmcFailure for what :mod:`.negotiation` caught, else what pyghmi raises.
    """
    return login(target)


def login(target: IpmiTarget, *, kg: str | None = None) -> Any:
    """A logged-in pyghmi Command, proposing ``target.cipher_suite`` if set; ``kg``
    (pyghmi's key for session integrity, the password when not given) also keeps
    sessions apart, as pyghmi shares one per address, user, password, port and kg.

    Raises BmcFailure for what :mod:`.negotiation` caught, else what pyghmi raises.
    """
    options = {} if kg is None else {"kg": kg}
    with negotiating(target.cipher_suite) as negotiation:
        try:
            return pyghmi_command.Command(
                bmc=target.address,
                userid=target.username,
                password=target.password,
                port=target.port,
                privlevel=target.priv_level,
                **options,
            )
        except socket.gaierror as exc:
            raise BmcFailure(FailureKind.SETTINGS, f"cannot resolve the address: {exc}") from exc
        except pyghmi_exc.PyghmiException as exc:
            if negotiation.failure is not None:
                raise negotiation.failure from exc
            raise


def _identify_once(command: Any) -> None:
    """Pick pyghmi's OEM handler for this session now, and keep it.

    pyghmi marks the handler final only for manufacturers it has a plugin for, and
    otherwise sends Get Device ID again before the next power read, sensor read or
    boot-device change.  The manufacturer does not change while a session is logged
    in, so the generic handler is as final as any.  Raises what pyghmi raises.
    """
    command.oem_init()
    command._oemknown = True


def _forget_leftovers(target: IpmiTarget) -> None:
    """Keep pyghmi from handing out a session an abandoned login left behind.

    Logins to one BMC are serialized by the caller, so a session to ``target`` that
    is not logged in yet belongs to a login whose caller gave up.
    """
    key = (target.address, target.username, target.password, target.port, None)
    pyghmi_session.Session.initting_sessions.pop(key, None)
    username = target.username.encode("utf-8")
    for by_port in list(pyghmi_session.Session.bmc_handlers.values()):
        if not isinstance(by_port, dict):
            continue
        for session in list(by_port.values()):
            if (
                not getattr(session, "servermode", True)
                and not session.logged
                and (session.bmc, session.port, session.userid)
                == (target.address, target.port, username)
            ):
                silence(session)


def silence(session: Any) -> None:
    """Stop a pyghmi session for good, without a packet to the BMC.

    Marked broken, pyghmi hands it to no later ``Command``; with nothing to resend
    and no login in progress, its retry timers stop and a thread still waiting on
    it gives up; unrouted, it no longer steals the answers meant for the session
    that replaces it (both share the local socket and the BMC's address).
    """
    session.broken = True
    session.logged = 0
    session.logging = False
    session.onlogpayload = None
    session.lastpayload = None
    with pyghmi_util.protect(pyghmi_session.KEEPALIVE_SESSIONS):
        pyghmi_session.Session.keepalive_sessions.pop(session, None)
    with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
        pyghmi_session.Session.waiting_sessions.pop(session, None)
    for by_port in list(pyghmi_session.Session.bmc_handlers.values()):
        if isinstance(by_port, dict):
            for port, routed in list(by_port.items()):
                if routed is session:
                    by_port.pop(port, None)


class PyghmiClient:
    """An :class:`~metalcast.drivers.ipmi.client.IpmiClient` over one pyghmi Command."""

    def __init__(self, command: Any) -> None:
        self._command = command

    @_translated
    def power_is_on(self) -> bool:
        return bool(self._command.get_power()["powerstate"] == "on")

    @_translated
    def chassis(self, command: ChassisCommand) -> None:
        self._command.xraw_command(netfn=0x00, command=0x02, data=(int(command),))

    @_translated
    def boot_flags(self) -> BootFlags:
        answer = self._command.get_bootdev()
        device = answer.get("bootdev")
        if device in (None, "default"):
            return BootFlags(device=None)
        return BootFlags(
            device=_FROM_PYGHMI.get(str(device), str(device)),
            persistent=bool(answer.get("persistent")),
            uefi=bool(answer.get("uefimode")),
        )

    @_translated
    def set_boot_flags(self, flags: BootFlags) -> None:
        device = "default" if flags.device is None else _TO_PYGHMI[flags.device]
        answer = self._command.set_bootdev(device, persist=flags.persistent, uefiboot=flags.uefi)
        if isinstance(answer, dict) and "error" in answer:
            raise BmcFailure(FailureKind.REJECTED, str(answer["error"]))

    @_translated
    def sensors(self) -> list[SensorReading]:
        return [_reading(r) for r in self._command.get_sensor_data()]

    @_translated
    def close(self) -> None:
        self._command.ipmi_session.logout()

    def abandon(self) -> None:
        """Make pyghmi forget this session without a word to the BMC.

        Another thread may still be waiting on it (a call that outlived its
        deadline); marked broken, pyghmi hands it to no later ``Command``.
        """
        silence(self._command.ipmi_session)


def _reading(raw: Any) -> SensorReading:
    value = getattr(raw, "value", None)
    return SensorReading(
        name=str(raw.name),
        kind=str(getattr(raw, "type", "")),
        value=None if value is None else float(value),
        unit=str(getattr(raw, "units", "") or ""),
        health=_health(getattr(raw, "health", 0)),
        states=tuple(str(s) for s in getattr(raw, "states", ()) or ()),
    )


def _health(code: int) -> str:
    if code & 0b110:  # pyghmi's Health.Critical | Health.Failed
        return "critical"
    return "warning" if code & 0b1 else "ok"
