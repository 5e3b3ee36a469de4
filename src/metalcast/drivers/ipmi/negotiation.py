"""The RMCP+ login of pyghmi's client sessions: the cipher suite proposed, the answer checked.

pyghmi's client has no parameter for the cipher suite: it proposes suite 17, then
suite 3 if the BMC refuses 17, and takes the algorithms of the BMC's Open Session
Response on trust.  So ``ipmi_cipher_suite`` had no way in, and a BMC that answers a
suite-17 proposal with the algorithms of suite 3 (pyghmi's own BMC server does, so
do some old BMCs) sent a RAKP 2 message whose 20-byte HMAC pyghmi read as a 32-byte
one: its parser raised inside the event loop, the login heard nothing more, and the
caller was told "no answer" at its deadline.

Inside :func:`negotiating`, a login:

* proposes the pinned suite from its first Open Session Request (pyghmi proposes
  what its ``attemptedhash`` attribute says, 256 for suite 17 and 1 for suite 3;
  :func:`install` sets it each time a session starts a login), and never falls back
  from a pinned suite;
* fails at once, with a :class:`~metalcast.drivers.bmc_sessions.BmcFailure` left in
  :attr:`Negotiation.failure` for the caller to raise, when the BMC refuses the
  suite with no other left to propose, answers with other algorithms than proposed,
  or sends a login message pyghmi cannot read.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pyghmi.ipmi.private import constants
from pyghmi.ipmi.private import session as pyghmi_session

from metalcast.drivers.bmc_sessions import BmcFailure, FailureKind
from metalcast.drivers.ipmi.cipher_suites import (
    SUITE_NUMBERS,
    SUPPORTED_TEXT,
    describe,
    suite_numbered,
    suite_with,
)

#: pyghmi's ``attemptedhash`` that makes a session propose each suite
_PYGHMI_HASH = {17: 256, 3: 1}
_SUITE_OF_HASH = {code: suite for suite, code in _PYGHMI_HASH.items()}
#: Open Session Response status codes refusing the proposed algorithms (IPMI v2.0
#: table 13-15): invalid authentication or integrity algorithm, no matching
#: authentication or integrity payload, invalid confidentiality algorithm, no match
_REFUSALS = frozenset({0x04, 0x05, 0x06, 0x07, 0x10, 0x11})
#: offsets of the chosen authentication, integrity and confidentiality algorithms in
#: an Open Session Response (IPMI v2.0 table 13-10); the top two bits are reserved
_ALGORITHMS_AT = (16, 24, 32)


@dataclass(slots=True)
class Negotiation:
    """One login: the suite ``ipmi_cipher_suite`` pins, and why the login failed."""

    #: the only suite to propose; None: 17, then 3 if the BMC refuses 17
    pinned: int | None = None
    #: set by the event-loop thread before it ends the login with an error
    failure: BmcFailure | None = None


_current: ContextVar[Negotiation | None] = ContextVar("ipmi_negotiation", default=None)
_install_lock = threading.Lock()
_installed = False


@contextlib.contextmanager
def negotiating(suite: int | None) -> Iterator[Negotiation]:
    """Make pyghmi sessions created in this thread within the block negotiate ``suite``.

    ``suite`` is one of :data:`~metalcast.drivers.ipmi.cipher_suites.SUITE_NUMBERS`,
    or None.  Raises ValueError for any other suite.
    """
    if suite is not None and suite not in SUITE_NUMBERS:
        raise ValueError(f"cipher suite {suite} is not supported")
    install()
    negotiation = Negotiation(pinned=suite)
    token = _current.set(negotiation)
    try:
        yield negotiation
    finally:
        _current.reset(token)


def install() -> None:
    """Teach pyghmi's client sessions the above, once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        session_class: Any = pyghmi_session.Session
        _propose_pinned_suite(session_class)
        _check_open_session_responses(session_class)
        _fail_logins_on_unreadable_answers(session_class)


def _negotiation_of(session: Any) -> Negotiation:
    """The negotiation ``session`` was created in; pyghmi's defaults outside one.

    A client session starts its first login in the thread that creates it, so that
    is where it is first asked; later logins (pyghmi's recoveries) keep the answer.
    """
    found = session.__dict__.get("metalcast_negotiation")
    if not isinstance(found, Negotiation):
        found = _current.get() or Negotiation()
        session.metalcast_negotiation = found
    return found


def _propose_pinned_suite(session_class: Any) -> None:
    initsession = session_class._initsession

    def _initsession(self: Any) -> Any:
        result = initsession(self)
        pinned = _negotiation_of(self).pinned
        if pinned is not None:
            self.attemptedhash = _PYGHMI_HASH[pinned]
        return result

    session_class._initsession = _initsession


def _check_open_session_responses(session_class: Any) -> None:
    got_response = session_class._got_rmcp_response

    def _got_rmcp_response(self: Any, data: bytearray) -> Any:
        awaited = (
            not getattr(self, "servermode", False)
            and self.sessioncontext == "OPENSESSION"
            and len(data) >= 2
            and data[0] == self.rmcptag
        )
        if awaited:
            failure = _judge_open_response(self, data)
            if failure is not None:
                _fail_login(self, failure)
                return -9
            if data[1] != 0 and _negotiation_of(self).pinned is not None:
                # not a refusal of the suite (a busy BMC, say): end the login as pyghmi
                # does when it has no suite left to try, instead of proposing suite 3
                text = constants.rmcp_codes.get(data[1], f"Unrecognized RMCP code {data[1]}")
                self.onlogon({"error": text})
                return -9
        return got_response(self, data)

    session_class._got_rmcp_response = _got_rmcp_response


def _judge_open_response(session: Any, data: bytearray) -> BmcFailure | None:
    """Why the login must end now, or None to let pyghmi go on."""
    negotiation = _negotiation_of(session)
    proposed = _SUITE_OF_HASH[session.attemptedhash]
    status = data[1]
    if status != 0:
        if status not in _REFUSALS or (negotiation.pinned is None and proposed == 17):
            return None  # not about the suite, or pyghmi proposes suite 3 next
        return _refused(negotiation, proposed, status)
    if len(data) < max(_ALGORITHMS_AT) + 1:
        return None  # no algorithms to check: as pyghmi, take the proposal as agreed
    answered = (
        data[_ALGORITHMS_AT[0]] & 0x3F,
        data[_ALGORITHMS_AT[1]] & 0x3F,
        data[_ALGORITHMS_AT[2]] & 0x3F,
    )
    if answered == suite_numbered(proposed).algorithms:
        return None
    chosen = suite_with(answered)
    hint = (
        f"set ipmi_cipher_suite={chosen.number} to log in with it"
        if chosen is not None
        else f"metalcast speaks cipher suites {SUPPORTED_TEXT}"
    )
    return BmcFailure(
        FailureKind.SETTINGS,
        f"the BMC answered a proposal of cipher suite {proposed} with {describe(answered)}; {hint}",
    )


def _refused(negotiation: Negotiation, proposed: int, status: int) -> BmcFailure:
    reason = constants.rmcp_codes.get(status, f"status 0x{status:02X}")
    if negotiation.pinned is None:
        return BmcFailure(
            FailureKind.SETTINGS,
            f"the BMC refused cipher suites 17 and 3 ({reason}); metalcast speaks only these",
        )
    return BmcFailure(
        FailureKind.SETTINGS,
        f"the BMC refused cipher suite {proposed} ({reason}); set ipmi_cipher_suite to a "
        f"suite the BMC offers (metalcast speaks {SUPPORTED_TEXT}), or leave it unset",
    )


def _fail_logins_on_unreadable_answers(session_class: Any) -> None:
    handle = session_class._handle_ipmi_packet

    def _handle_ipmi_packet(
        self: Any, data: bytearray, sockaddr: Any = None, qent: Any = None
    ) -> Any:
        try:
            return handle(self, data, sockaddr=sockaddr, qent=qent)
        except Exception as exc:
            if getattr(self, "servermode", True) or not getattr(self, "logging", False):
                raise
            _fail_login(self, _unreadable(self, exc))
            return -9

    session_class._handle_ipmi_packet = _handle_ipmi_packet


def _unreadable(session: Any, exc: Exception) -> BmcFailure:
    # pyghmi indexes into login messages without checking their length; a BMC that
    # signs with another digest than agreed (a 20-byte SHA-1 HMAC where SHA-256's 32
    # bytes were due) is the usual cause
    proposed = _SUITE_OF_HASH.get(getattr(session, "attemptedhash", 0), "?")
    return BmcFailure(
        FailureKind.CLIENT,
        f"the BMC's answer during login with cipher suite {proposed} could not be read "
        f"({exc!r}); a BMC that uses other algorithms than it agreed to does this: set "
        "ipmi_cipher_suite to the suite it uses",
    )


def _fail_login(session: Any, failure: BmcFailure) -> None:
    """End ``session``'s login with ``failure``, as pyghmi ends one it gives up on."""
    _negotiation_of(session).failure = failure
    session.onlogon({"error": failure.cause})
