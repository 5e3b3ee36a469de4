"""The protocol loop: look the node up, then heartbeat, run commands, report results.

::

    lookup ──200──▶ heartbeat ──202──▶ heartbeat ...   (interval, or at once when a
      ▲ 404/error: retry        │                        command finishes)
      └── 401/403, 10 x 404 ────┘   409, 5xx, no answer: retry at the interval

Booted for discovery (``metalcast.discovery=1``), a lookup that finds nothing makes
the agent report the machine's inventory once (:mod:`metalcast_agent.discovery`);
once metalcast enrolled it, the agent powers the machine off.

The loop never dies of a conductor error. The token lives in this object only and is
never logged. After a ``power_off``/``reboot`` result has been acknowledged (or three
heartbeats tried), the loop performs the power action and stops; should the power
action fail, the agent logs it and keeps heartbeating.  After a ``rescue`` result has
been acknowledged the loop stops and the agent exits with :data:`EXIT_RESCUE`: the
machine stays up as a rescue system, heartbeating no more (Ironic's agent does the same).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from metalcast_agent import AGENT_VERSION
from metalcast_agent.client import ConductorApi
from metalcast_agent.commands import CommandRunner
from metalcast_agent.config import AgentConfig
from metalcast_agent.discovery import Discovery, Outcome
from metalcast_agent.errors import ApiError
from metalcast_agent.log import LogBuffer, get_logger
from metalcast_agent.power import perform
from metalcast_agent.protocol import HeartbeatAnswer, HeartbeatBody
from metalcast_agent.rescue import RESCUE_MODE

NOT_FOUND_LIMIT = 10  # consecutive heartbeat 404s before looking the node up again
POWER_REPORT_ATTEMPTS = 3  # heartbeats to report a power action's result before acting
LOG_EVERY = 60.0  # seconds between two log lines about the same repeated failure
#: the exit status once ``rescue`` is reported: the ramdisk's /init keeps the machine up
EXIT_RESCUE = 3
_log = get_logger("agent")

PowerFn = Callable[[str], bool]


class _Throttle:
    """Logs a repeated failure at most once per ``LOG_EVERY`` seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: float | None = None
        self._skipped = 0

    def warn(self, message: str) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < LOG_EVERY:
            self._skipped += 1
            return
        suffix = f" ({self._skipped} more since the last report)" if self._skipped else ""
        _log.warning("%s%s", message, suffix)
        self._last, self._skipped = now, 0

    def reset(self) -> None:
        self._last, self._skipped = None, 0


class Agent:
    """One deployment's worth of protocol state: node, token, interval, counters."""

    def __init__(
        self,
        config: AgentConfig,
        api: ConductorApi,
        runner: CommandRunner,
        buffer: LogBuffer,
        *,
        macs: Callable[[], list[str]],
        power: PowerFn | None = None,
        wake: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.api = api
        self.runner = runner
        self.buffer = buffer
        self.macs = macs
        self.power = power if power is not None else self._power
        self.interval = config.heartbeat_interval
        self.node_uuid: str | None = None
        self._token: str | None = None
        self._not_found = 0
        self._power_attempts = 0
        self._power_failed = False
        self._lookup_throttle = _Throttle(clock)
        self._heartbeat_throttle = _Throttle(clock)
        self.wake = wake if wake is not None else threading.Event()
        #: set when the ramdisk was booted for discovery (``metalcast.discovery=1``)
        self.discovery: Discovery | None = None
        #: what :meth:`run` returns once the loop stops
        self.exit_status = 0

    @property
    def has_token(self) -> bool:
        """Whether the agent holds an agent token (it never shows it)."""
        return self._token is not None

    def run(self) -> int:
        """Loop until a power action ends the agent; the exit status."""
        while True:
            self.wake.clear()
            try:
                delay = self.step()
            except Exception:  # the loop is a boundary: a bug must not end the deployment
                _log.exception("protocol loop error; retrying in %.1f s", self.interval)
                delay = self.interval
            if delay is None:
                return self.exit_status
            self.wake.wait(delay)

    def step(self) -> float | None:
        """One lookup or heartbeat; seconds until the next, or ``None`` to stop."""
        if self.node_uuid is None:
            return self._lookup()
        return self._heartbeat(self.node_uuid)

    # ------------------------------------------------------------------------ lookup

    def _lookup(self) -> float | None:
        macs = self.macs()
        if not macs:
            self._lookup_throttle.warn("lookup: no network interface with a MAC address")
            return self.interval
        try:
            answer = self.api.lookup(macs)
        except ApiError as exc:
            if exc.status == 404 and self._discovered():
                return self._after_discovery()
            self._lookup_throttle.warn(f"{exc.message} (MACs {', '.join(macs)}); retrying")
            return self.interval
        self._lookup_throttle.reset()
        self.node_uuid, self._not_found = answer.node_uuid, 0
        if answer.token is not None:
            self._token = answer.token
            self.runner.downloads.token = answer.token  # downloads prove who asks with it
        if answer.heartbeat_interval is not None:
            self.interval = answer.heartbeat_interval
        _log.info("lookup: this is node %s (MACs %s)", answer.node_uuid, ", ".join(macs))
        if self._token is None:
            _log.warning("lookup: no agent token given (it is given once per deployment)")
        return 0.0

    def _discovered(self) -> bool:
        return self.discovery is not None and self.discovery.report() is Outcome.ENROLLED

    def _after_discovery(self) -> float | None:
        """The machine was enrolled: power it off (its node is told by metalcast)."""
        if self.power("power_off"):
            return None
        _log.error("power_off failed after discovery: power the machine off through its BMC")
        return self.interval

    # --------------------------------------------------------------------- heartbeat

    def heartbeat_body(self) -> tuple[HeartbeatBody, int]:
        """The next heartbeat's body and the log mark to commit once it is accepted."""
        lines, mark = self.buffer.pending()
        body = HeartbeatBody(agent_version=AGENT_VERSION, results=self.runner.results(), log=lines)
        if self._token is not None:
            body["agent_token"] = self._token
        progress = self.runner.progress()
        if progress is not None:
            body["progress"] = progress
        return body, mark

    def _heartbeat(self, node_uuid: str) -> float | None:
        power = self.runner.power_pending()  # read first: the body then carries its result
        body, mark = self.heartbeat_body()
        try:
            answer = self.api.heartbeat(node_uuid, body)
        except ApiError as exc:
            self._heartbeat_failed(exc)
            return self._after_heartbeat(power)
        self._heartbeat_throttle.reset()
        self._not_found = 0
        self.buffer.commit(mark)
        self._accept(answer)
        return self._after_heartbeat(power)

    def _accept(self, answer: HeartbeatAnswer) -> None:
        self.runner.acknowledge(answer.ack)
        if answer.heartbeat_interval is not None:
            self.interval = answer.heartbeat_interval
        if answer.command is not None:
            self.runner.submit(answer.command)

    def _heartbeat_failed(self, exc: ApiError) -> None:
        self._not_found = self._not_found + 1 if exc.status == 404 else 0
        if exc.status == 413:
            # a result the server will never take: report the failure instead, so that
            # the node learns why rather than waiting for a heartbeat that never fits
            _log.error("%s: reporting the results as failed instead", exc.message)
            self.runner.fail_results(
                "the result is larger than metalcast accepts in a heartbeat (HTTP 413)"
            )
        elif exc.status in (401, 403):
            _log.warning("%s: the agent token was refused; looking the node up again", exc.message)
            self.node_uuid = None
        elif self._not_found >= NOT_FOUND_LIMIT:
            _log.warning(
                "%s %d times in a row; looking the node up again", exc.message, self._not_found
            )
            self.node_uuid, self._not_found = None, 0
        else:
            self._heartbeat_throttle.warn(f"{exc.message}; retrying")

    def _after_heartbeat(self, action: str | None) -> float | None:
        """Perform a pending power action once its result is reported (or tried enough)."""
        if action is None or self._power_failed:
            return self.interval
        self._power_attempts += 1
        reported = not self.runner.pending_ids()
        if action == RESCUE_MODE:  # no hurry: until the conductor has the result
            if not reported:
                return self.interval
            _log.info("rescue: reported; heartbeats stop, the machine stays up for the rescue user")
            self.exit_status = EXIT_RESCUE
            return None
        if not reported and self._power_attempts < POWER_REPORT_ATTEMPTS:
            return self.interval
        if self.power(action):
            return None
        _log.error("%s failed: the machine is still running; power it off through its BMC", action)
        self._power_failed = True
        return self.interval

    def _power(self, action: str) -> bool:
        if self.config.power_action == "exit":
            _log.info("%s: exiting instead (power action 'exit')", action)
            return True
        return perform(action, self.config.env)
