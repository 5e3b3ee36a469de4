"""``--wait``: follow a node until its provision or power request has finished.

The verdicts are pure functions of the node as the API shows it, so that they can be
tested without a server.  A request is judged against a :class:`Mark` of the node
taken before it was sent, so that a poll which still sees the old state is not taken
for the end of the request.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from metalcast.cli.client import JSON, ApiClient, ApiError, CliError, node_path
from metalcast.cli.output import stderr
from metalcast.states import FAILURE, WAIT, WORK

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
_BUSY = frozenset(s.value for s in WORK | WAIT)
_FAILED = frozenset(s.value for s in FAILURE)


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
    still going.  ``expected`` None (abort) accepts any state the node rests in."""
    state = node.get("provision_state")
    now = Mark.of(node)
    moved = (now.provision_state, now.provision_updated_at, now.last_error) != (
        before.provision_state,
        before.provision_updated_at,
        before.last_error,
    )
    if not moved or state in _BUSY or node.get("target_provision_state"):
        return Verdict.WAITING
    if expected is None:
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


def describe(node: Mapping[str, Any]) -> str:
    """``deploying → active`` or ``power on → power off``: where the node is going."""
    state = node.get("provision_state")
    target = node.get("target_provision_state")
    power, power_target = node.get("power_state"), node.get("target_power_state")
    text = f"{state} → {target}" if target else f"{state}"
    if power_target:
        text += f", {power} → {power_target}"
    return text


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
) -> tuple[Verdict, JSON]:
    """Poll ``node`` until ``judge`` says it finished; show progress on stderr.

    Returns the verdict and the node as last seen.  ``timeout`` 0 waits forever.

    Raises:
        WaitTimeout: ``timeout`` seconds passed first.  ApiError, Unreachable.
    """
    console = stderr()
    deadline = time.monotonic() + timeout if timeout > 0 else None
    shown = ""
    with console.status(f"waiting for {node}") as status:
        while True:
            current: JSON = client.get(node_path(node))
            verdict = judge(current)
            progress = describe(current)
            if progress != shown:
                console.print(Text(f"{node}: {progress}", style="dim"))
                shown = progress
            if verdict is not Verdict.WAITING:
                return verdict, current
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(_timeout_message(node, current, timeout))
            event = latest_event(client, node)
            status.update(f"{node}: {progress}" + (f" · {event}" if event else ""))
            time.sleep(POLL_INTERVAL)


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
