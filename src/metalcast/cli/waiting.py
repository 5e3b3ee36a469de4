"""``--wait``: follow a node until its provision or power request has finished.

The verdicts are pure functions of the node as the API shows it, so that they can be
tested without a server.  A request is judged against a :class:`Mark` of the node
taken before it was sent, so that a poll which still sees the old state is not taken
for the end of the request.  ``node show --wait`` sent no request: it follows a busy
node until it rests (:func:`judge_rest`).

Progress goes to stderr: a live status line, updated every poll, and printed lines
that record the way (:class:`ProgressLine`).  While the deploy agent writes an image
its last report (``driver_internal_info.agent_progress``) joins both; a line is
printed when the node's state or the agent's command changes, and for new numbers
alone at most every :data:`PRINT_INTERVAL` seconds.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from metalcast.cli.client import JSON, ApiClient, ApiError, CliError, node_path
from metalcast.cli.events import ChangeWatch
from metalcast.cli.output import stderr
from metalcast.reports import AgentProgress, progress_of, size_text  # noqa: F401 (re-exported)
from metalcast.states import FAILURE, HOLD, WAIT, WORK

#: the stable state each provision verb (as the API spells it) ends in
EXPECTED_STATES: Mapping[str, str] = {
    "manage": "manageable",
    "provide": "available",
    "inspect": "manageable",
    "clean": "manageable",
    "active": "active",
    "rebuild": "active",
    "deleted": "available",
    "adopt": "active",
    "rescue": "rescue",
    "unrescue": "active",
    "service": "active",
}

#: the power state each power target ends in
EXPECTED_POWER: Mapping[str, str] = {
    "power on": "power on",
    "power off": "power off",
    "rebooting": "power on",
    "soft power off": "power off",
    "soft rebooting": "power on",
}

POLL_INTERVAL = 1.0
#: seconds between printed lines that differ only in the agent's numbers
PRINT_INTERVAL = 5.0
_BUSY = frozenset(s.value for s in WORK | WAIT)
_FAILED = frozenset(s.value for s in FAILURE)
#: held by a hold step: the request has gone as far as it goes until an unhold
_HELD = frozenset(s.value for s in HOLD)


class Verdict(enum.Enum):
    WAITING = "waiting"
    REACHED = "reached"
    FAILED = "failed"


class WaitTimeout(CliError):
    """The node did not finish within the time the operator allowed."""


@dataclass(frozen=True, slots=True)
class Mark:
    """What a node looked like before a request, to tell when it has moved."""

    provision_state: str | None
    provision_updated_at: str | None
    power_state: str | None
    last_error: str | None
    updated_at: str | None

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> Mark:
        """Take the mark of ``node`` (a node as the API returns it)."""
        return cls(
            node.get("provision_state"),
            node.get("provision_updated_at"),
            node.get("power_state"),
            node.get("last_error"),
            node.get("updated_at"),
        )


def judge_provision(node: Mapping[str, Any], *, expected: str | None, before: Mark) -> Verdict:
    """Whether a provision request has finished: reached ``expected``, failed, or
    still going.  ``expected`` None (abort, unhold) accepts any state the node rests
    in; a hold state (``clean hold``) ends the wait too: the operator's turn."""
    state = node.get("provision_state")
    now = Mark.of(node)
    moved = (now.provision_state, now.provision_updated_at, now.last_error) != (
        before.provision_state,
        before.provision_updated_at,
        before.last_error,
    )
    if not moved or state in _BUSY:
        return Verdict.WAITING
    if node.get("target_provision_state") and state not in _HELD:
        return Verdict.WAITING
    if expected is None or state in _HELD:
        return Verdict.REACHED
    if state == expected:
        return Verdict.REACHED
    return Verdict.FAILED


def judge_power(node: Mapping[str, Any], *, expected: str, before: Mark) -> Verdict:
    """Whether a power request has finished: the BMC reports ``expected``, the
    request failed (``last_error``), or it is still going."""
    if node.get("target_power_state"):
        return Verdict.WAITING
    state = node.get("power_state")
    if state == expected:
        return Verdict.REACHED
    if state == "error" or node.get("last_error") != before.last_error:
        return Verdict.FAILED
    return Verdict.WAITING


def judge_rest(node: Mapping[str, Any], *, before: Mark) -> Verdict:
    """Whether a node followed without a request (``node show --wait``) has come to
    rest: failed when it rests in a failure state or with a ``last_error`` it did not
    have at ``before``, reached in any other state it rests in."""
    if is_busy(node):
        return Verdict.WAITING
    error = node.get("last_error")
    if node.get("provision_state") in _FAILED or (error and error != before.last_error):
        return Verdict.FAILED
    return Verdict.REACHED


def is_busy(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` is on its way somewhere: a working or waiting state (deploying,
    wait call-back, cleaning, clean wait…) or a provision or power target."""
    state = node.get("provision_state")
    return bool(
        state in _BUSY
        or (node.get("target_provision_state") and state not in _HELD)
        or node.get("target_power_state")
    )


def describe(node: Mapping[str, Any]) -> str:
    """``deploying → active`` or ``power on → power off``: where the node is going."""
    state = node.get("provision_state")
    target = node.get("target_provision_state")
    power, power_target = node.get("power_state"), node.get("target_power_state")
    text = f"{state} → {target}" if target else f"{state}"
    if power_target:
        text += f", {power} → {power_target}"
    return text


@dataclass(frozen=True, slots=True)
class ProgressLine:
    """What ``--wait`` shows of one poll: ``deploying → active · write_image 120.0 MiB
    of 256.0 MiB (47%), 12.3 MiB/s``; just :func:`describe` when the agent reports
    nothing or the node rests."""

    text: str
    #: where the node is going and which agent command runs: a change is news
    step: tuple[str, str | None]

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> ProgressLine:
        """The line of ``node`` as the API returns it."""
        state = describe(node)
        # a resting node's report is a leftover: the line says where it came to rest
        agent = progress_of(node) if is_busy(node) else None
        if agent is None:
            return cls(state, (state, None))
        return cls(f"{state} · {agent}", (state, agent.command))


def worth_printing(line: ProgressLine, *, last: ProgressLine | None, elapsed: float) -> bool:
    """Whether ``line`` gets a printed line of its own, ``elapsed`` seconds after
    ``last`` got one: always for a new step (state or agent command), for new numbers
    in the same step only once :data:`PRINT_INTERVAL` seconds have passed."""
    if last is None or line.step != last.step:
        return True
    return line.text != last.text and elapsed >= PRINT_INTERVAL


def latest_event(client: ApiClient, node: str) -> str | None:
    """The newest history event of ``node``, if the server keeps history."""
    try:
        page = client.get(
            node_path(node, "history"), {"detail": "True", "sort_dir": "desc", "limit": 1}
        )
    except ApiError:
        return None
    events = page.get("history") if isinstance(page, dict) else None
    if not events:
        return None
    return str(events[0].get("event") or "") or None


def wait_for(
    client: ApiClient,
    node: str,
    *,
    judge: Callable[[JSON], Verdict],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Verdict, JSON]:
    """Look at ``node`` until ``judge`` says it finished; show progress on stderr:
    the status line every look, a printed line when :func:`worth_printing` says so.
    The node is looked at again when the server's event stream says it changed
    (:class:`~metalcast.cli.events.ChangeWatch`), or every :data:`POLL_INTERVAL`
    seconds from a server without one.

    Returns the verdict and the node as last seen.  ``timeout`` 0 waits forever.

    Raises:
        WaitTimeout: ``timeout`` seconds passed first.  ApiError, Unreachable.
    """
    console = stderr()
    deadline = clock() + timeout if timeout > 0 else None
    printed: ProgressLine | None = None
    printed_at = 0.0
    watch = ChangeWatch(client, node, poll_interval=POLL_INTERVAL)
    with console.status(f"waiting for {node}") as status, watch:
        while True:
            current: JSON = client.get(node_path(node))
            verdict = judge(current)
            line = ProgressLine.of(current)
            if worth_printing(line, last=printed, elapsed=clock() - printed_at):
                console.print(Text(f"{node}: {line.text}", style="dim"), soft_wrap=True)
                printed, printed_at = line, clock()
            if verdict is not Verdict.WAITING:
                return verdict, current
            if deadline is not None and clock() >= deadline:
                raise WaitTimeout(_timeout_message(node, current, timeout))
            event = latest_event(client, node)
            status.update(f"{node}: {line.text}" + (f" · {event}" if event else ""))
            watch.wait(deadline - clock() if deadline is not None else float("inf"))


def _timeout_message(node: str, current: Mapping[str, Any], timeout: float) -> str:
    message = f"timed out after {timeout:g}s waiting for node {node} ({describe(current)})"
    if current.get("last_error"):
        message += f"; last error: {current['last_error']}"
    return message


def failure_message(node: str, current: Mapping[str, Any], *, wanted: str | None) -> str:
    """The one line that says why a waited-for request failed."""
    state = current.get("provision_state")
    text = f"node {node} ended in '{state}'"
    if wanted and state not in _FAILED:
        text += f" instead of '{wanted}'"
    return text + f": {current.get('last_error') or 'no error recorded'}"
