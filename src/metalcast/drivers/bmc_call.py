"""Calling a BMC: a deadline on every call, bounded retries, errors an operator can act on.

Every IPMI and Redfish call runs under :func:`call_with_deadline`, so a BMC that
never answers costs a worker at most :attr:`CallPolicy.timeout` seconds, whatever
the protocol library does.  :func:`call_bounded` retries calls that are safe to
repeat a bounded number of times.  :func:`bmc_error` words every failure the same
way: protocol, operation, BMC, cause::

    IPMI power on of BMC 127.0.0.1:6230 failed: authentication rejected (...)

Errors (from :mod:`metalcast.errors`)::

    RetryableDriverError   a transient failure
    └── NoAnswerInTime     no answer within the deadline (not retried here)
    FatalDriverError       rejected credentials, unsupported request, bad settings
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from metalcast.errors import DriverError, FatalDriverError, RetryableDriverError

T = TypeVar("T")
Sleep = Callable[[float], None]


class Runner(Protocol):
    """Runs a call under a deadline: :func:`call_with_deadline`, or a test's own."""

    def __call__(self, func: Callable[[], T], timeout: float, /) -> T: ...


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How long to wait for a BMC and how often to try again."""

    #: seconds one call may take, the library's own retransmissions included
    timeout: float = 20.0
    #: tries of a call that is safe to repeat (reads, idempotent settings)
    attempts: int = 3
    #: seconds before the second try; doubled before each further one
    backoff: float = 0.5
    #: seconds between power-state reads while confirming a power change
    poll_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class BmcRef:
    """Names a BMC in messages: "IPMI" and "10.0.0.5:623", "Redfish" and a URL."""

    protocol: str
    address: str


class NoAnswerInTime(RetryableDriverError):
    """The BMC did not answer within the call's deadline.

    Retryable by the conductor, but not retried here: the deadline already
    covered the protocol library's own retransmissions.
    """


def bmc_error(
    bmc: BmcRef, operation: str, cause: str, *, retryable: bool, timed_out: bool = False
) -> DriverError:
    """The error to raise when ``operation`` on ``bmc`` failed because of ``cause``."""
    message = f"{bmc.protocol} {operation} of BMC {bmc.address} failed: {cause}"
    if timed_out:
        return NoAnswerInTime(message, operation=operation)
    if retryable:
        return RetryableDriverError(message, operation=operation)
    return FatalDriverError(message, operation=operation)


class CallTimedOut(Exception):
    """The call did not finish within its deadline; it may still finish later."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no answer within {timeout:g} s")
        self.timeout = timeout


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def call_with_deadline(func: Callable[[], T], timeout: float) -> T:
    """``func()``, run in a helper thread the caller stops waiting for after ``timeout``.

    The helper thread is a daemon: a call the library never ends cannot keep the
    process alive, and the caller is free again either way.

    Raises:
        CallTimedOut: no result within ``timeout`` seconds.
        Exception: whatever ``func`` raised.
    """
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = func()
        except BaseException as exc:  # handed over to the caller below
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=run, name="bmc-call", daemon=True).start()
    if not outcome.done.wait(timeout):
        raise CallTimedOut(timeout)
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


def call_directly(func: Callable[[], T], timeout: float) -> T:
    """``func()`` in the caller's thread, no deadline: a runner for tests with fakes."""
    return func()


def call_bounded(
    func: Callable[[], T],
    *,
    policy: CallPolicy,
    repeatable: bool,
    sleep: Sleep = time.sleep,
) -> T:
    """``func()``, tried again on RetryableDriverError when ``repeatable``.

    At most ``policy.attempts`` tries, with an exponential ``policy.backoff``; a
    call that used its whole deadline (NoAnswerInTime) is not tried again.

    Raises:
        DriverError: the last failure, or the first FatalDriverError.
    """
    tries = max(1, policy.attempts) if repeatable else 1
    for attempt in range(tries):
        try:
            return func()
        except NoAnswerInTime:
            raise
        except RetryableDriverError:
            if attempt + 1 >= tries:
                raise
            sleep(policy.backoff * 2**attempt)
    raise AssertionError("unreachable")
