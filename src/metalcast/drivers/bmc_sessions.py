"""Sessions to BMCs, reused across calls and worker threads, one call at a time per BMC.

:class:`SessionPool` keeps one logged-in client per BMC and user (an IPMI session,
a Redfish connection), hands it to one call at a time, runs every call under the
policy's deadline, retries repeatable calls, and turns :class:`BmcFailure` into
the errors the conductor handles::

    BmcFailure (raised by a client)     → RetryableDriverError / FatalDriverError
      FailureKind.NO_ANSWER, BUSY,        retryable
      CLIENT
      FailureKind.AUTH, REJECTED,         fatal
      SETTINGS
    no result within the deadline       → NoAnswerInTime (retryable, not retried here)

A client that failed is dropped (the next call logs in again); one whose call
outlived its deadline is also told to :meth:`~BmcClient.abandon` its session,
since a thread may still be inside the protocol library with it.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from metalcast import metrics
from metalcast.drivers.bmc_call import (
    BmcRef,
    CallPolicy,
    CallTimedOut,
    Runner,
    Sleep,
    bmc_error,
    call_bounded,
    call_with_deadline,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class FailureKind(enum.Enum):
    NO_ANSWER = "no answer"  # timeouts, unreachable, lost session
    BUSY = "busy"  # the BMC is out of sessions or overloaded
    CLIENT = "client"  # the client library tripped (a malformed answer, a race)
    AUTH = "auth"  # credentials or privilege rejected
    REJECTED = "rejected"  # the BMC refused or does not support the request
    SETTINGS = "settings"  # driver_info cannot work (address, TLS, cipher suite)


_RETRYABLE = frozenset({FailureKind.NO_ANSWER, FailureKind.BUSY, FailureKind.CLIENT})


class BmcFailure(Exception):
    """A client's failure, with the cause an operator should read."""

    def __init__(self, kind: FailureKind, cause: str) -> None:
        super().__init__(cause)
        self.kind = kind
        self.cause = cause

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE


class BmcClient(Protocol):
    """A logged-in session to one BMC."""

    def close(self) -> None:
        """Log out.  Raises BmcFailure."""

    def abandon(self) -> None:
        """Forget the session without talking to the BMC; never raises."""


class BmcTarget(Protocol):
    """One BMC and the credentials to reach it."""

    @property
    def key(self) -> Hashable:
        """What identifies the session: address and user, never the password."""

    @property
    def login(self) -> Hashable:
        """Everything a session was opened with; a change means a new session."""

    @property
    def ref(self) -> BmcRef:
        """How messages name the BMC."""


TargetT = TypeVar("TargetT", bound=BmcTarget)
ClientT = TypeVar("ClientT", bound=BmcClient)


@dataclass(slots=True)
class _Slot(Generic[ClientT]):
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: ClientT | None = None
    login: Hashable = None


class SessionPool(Generic[TargetT, ClientT]):
    """Logged-in clients, one per target key, reused across calls."""

    def __init__(
        self,
        connect: Callable[[TargetT], ClientT],
        *,
        unreachable_hint: str,
        policy: CallPolicy | None = None,
        runner: Runner = call_with_deadline,
        sleep: Sleep = time.sleep,
    ) -> None:
        """``connect`` logs in; ``unreachable_hint`` ends the no-answer message."""
        self.policy = policy or CallPolicy()
        self._connect = connect
        self._hint = unreachable_hint
        self._runner = runner
        self._sleep = sleep
        self._slots: dict[Hashable, _Slot[ClientT]] = {}
        self._lock = threading.Lock()

    def call(
        self,
        target: TargetT,
        operation: str,
        action: Callable[[ClientT], T],
        *,
        repeatable: bool,
    ) -> T:
        """``action`` on a logged-in client of ``target``, under the call policy.

        ``repeatable`` calls (reads, idempotent settings) are retried on transient
        failures; the others are tried once.

        Raises:
            RetryableDriverError: no answer in time, the BMC is busy.
            FatalDriverError: credentials rejected, request refused, bad settings.
        """
        return call_bounded(
            lambda: self._attempt(target, operation, action),
            policy=self.policy,
            repeatable=repeatable,
            sleep=self._sleep,
        )

    def close(self) -> None:
        """Log out of every BMC."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            with slot.lock:
                self._discard(slot, logout=True)

    def _slot(self, target: TargetT) -> _Slot[ClientT]:
        with self._lock:
            return self._slots.setdefault(target.key, _Slot())

    def _attempt(self, target: TargetT, operation: str, action: Callable[[ClientT], T]) -> T:
        slot = self._slot(target)
        if not slot.lock.acquire(timeout=self.policy.timeout):
            raise bmc_error(
                target.ref, operation, "another call to this BMC is still waiting", retryable=True
            )
        try:
            return self._run(slot, target, operation, action)
        finally:
            slot.lock.release()

    def _run(
        self,
        slot: _Slot[ClientT],
        target: TargetT,
        operation: str,
        action: Callable[[ClientT], T],
    ) -> T:
        if slot.client is not None and slot.login != target.login:
            self._discard(slot, logout=True)  # new credentials or settings
        used: list[ClientT] = []  # the client the helper thread works with

        def work() -> T:
            used.append(slot.client or self._connect(target))
            return action(used[0])

        driver = target.ref.protocol.lower()  # "ipmi", "redfish"
        started = time.perf_counter()
        try:
            result = self._runner(work, self.policy.timeout)
        except CallTimedOut as exc:
            metrics.BMC_ERRORS.labels(driver, operation, "timeout").inc()
            self._discard(slot, logout=False)
            for client in used:
                client.abandon()
            cause = f"no answer from the BMC within {exc.timeout:g} s ({self._hint})"
            raise bmc_error(target.ref, operation, cause, retryable=True, timed_out=True) from None
        except BmcFailure as exc:
            metrics.BMC_ERRORS.labels(driver, operation, exc.kind.value).inc()
            self._discard(slot, logout=False)
            # no answer: the library already retransmitted, so not retried here either
            silent = exc.kind is FailureKind.NO_ANSWER
            raise bmc_error(
                target.ref, operation, exc.cause, retryable=exc.retryable, timed_out=silent
            ) from exc
        finally:
            metrics.BMC_CALLS.labels(driver, operation).observe(time.perf_counter() - started)
        slot.client, slot.login = used[0], target.login
        return result

    def _discard(self, slot: _Slot[ClientT], *, logout: bool) -> None:
        client, slot.client, slot.login = slot.client, None, None
        if client is None:
            return
        if not logout:
            client.abandon()
            return
        try:
            self._runner(client.close, self.policy.timeout)
        except (CallTimedOut, BmcFailure):
            LOG.debug("Logging out of a BMC session failed", exc_info=True)
