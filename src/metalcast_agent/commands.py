"""The command runner: one command at a time, in a thread, results kept until acked.

A command handed out twice (heartbeats are retried) runs once: an id the agent is
running, has finished or has had acknowledged is ignored. Every error becomes a
``failed`` result whose ``error`` is one line for an operator; an unexpected exception
is also logged with its traceback. ``power_off`` and ``reboot`` only *request* the
power action: the protocol loop performs it after the result has been reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from metalcast_agent.client import DownloadAccess
from metalcast_agent.environment import Environment
from metalcast_agent.errors import AgentError, InvalidArguments
from metalcast_agent.log import get_logger
from metalcast_agent.protocol import CommandResult, CommandSpec, ProgressReport

_log = get_logger("commands")
#: how many finished command ids the runner remembers to ignore repeats
_REMEMBERED_IDS = 1000


@dataclass(slots=True)
class CommandContext:
    """What a command handler gets besides its arguments."""

    env: Environment
    report_progress: Callable[[int, int | None], None] = lambda done, total: None
    #: how the command downloads what its arguments name (with the agent token; HTTPS
    #: only, verified, once the API is HTTPS)
    downloads: DownloadAccess = field(default_factory=DownloadAccess)
    #: set by power_off/reboot (and rescue): the action to perform once the result is
    #: reported
    power_request: list[str] = field(default_factory=list)


Handler = Callable[[Mapping[str, object], CommandContext], dict[str, object]]


@dataclass(slots=True)
class _Running:
    spec: CommandSpec
    started: float
    done: int = 0
    total: int | None = None


class CommandRunner:
    """Runs the conductor's commands one at a time and keeps their results until acked."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        env: Environment,
        *,
        downloads: DownloadAccess | None = None,
        on_finish: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handlers = dict(handlers)
        self._env = env
        #: shared by every command; the protocol loop gives it the token
        self.downloads = downloads if downloads is not None else DownloadAccess()
        self._on_finish = on_finish
        self._clock = clock
        self._lock = threading.Lock()
        self._running: _Running | None = None
        self._thread: threading.Thread | None = None
        self._results: dict[str, CommandResult] = {}
        self._seen: dict[str, None] = {}  # insertion-ordered set of every id taken
        self._power: str | None = None

    def submit(self, spec: CommandSpec) -> bool:
        """Start ``spec`` in a thread; ``False`` when it was seen before or refused."""
        with self._lock:
            if spec["id"] in self._seen:
                return False
            self._remember(spec["id"])
            busy = self._running
            if busy is None:
                self._running = _Running(spec, self._clock())
        if busy is not None:
            message = (
                f"Command {spec['name']} ({spec['id']}) refused: {busy.spec['name']} "
                f"({busy.spec['id']}) is still running; send one command at a time"
            )
            self._finish(spec, None, message)
            return False
        _log.info("%s: started (id %s)", spec["name"], spec["id"])
        self._thread = threading.Thread(
            target=self._run, args=(spec,), name=f"command-{spec['name']}", daemon=True
        )
        self._thread.start()
        return True

    def _remember(self, command_id: str) -> None:
        self._seen[command_id] = None
        while len(self._seen) > _REMEMBERED_IDS:
            del self._seen[next(iter(self._seen))]

    def _run(self, spec: CommandSpec) -> None:
        context = CommandContext(
            self._env, report_progress=self._progress, downloads=self.downloads
        )
        try:
            result = self._handler(spec["name"])(spec["args"], context)
        except AgentError as exc:
            _log.error("%s failed: %s", spec["name"], exc.message)
            self._finish(spec, None, exc.message, power=None)
        except Exception as exc:  # the command loop is a boundary: never die, report
            _log.exception("%s failed unexpectedly", spec["name"])
            message = f"{spec['name']} failed unexpectedly: {type(exc).__name__}: {exc}"
            self._finish(spec, None, message.splitlines()[0], power=None)
        else:
            _log.info("%s: succeeded", spec["name"])
            power = context.power_request[0] if context.power_request else None
            self._finish(spec, result, None, power=power)

    def _handler(self, name: str) -> Handler:
        handler = self._handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            raise InvalidArguments(f"Unknown command {name!r}; this agent knows: {known}")
        return handler

    def _progress(self, done: int, total: int | None) -> None:
        with self._lock:
            if self._running is not None:
                self._running.done, self._running.total = done, total

    def _finish(
        self,
        spec: CommandSpec,
        result: dict[str, object] | None,
        error: str | None,
        *,
        power: str | None = None,
    ) -> None:
        outcome = CommandResult(
            id=spec["id"],
            name=spec["name"],
            status="failed" if error is not None else "succeeded",
            result=result if result is not None else {},
            error=error,
        )
        with self._lock:
            self._results[spec["id"]] = outcome
            if self._running is not None and self._running.spec["id"] == spec["id"]:
                self._running = None
                self._power = power or self._power
        self._on_finish()

    def results(self) -> list[CommandResult]:
        """Every finished command the conductor has not acknowledged, oldest first."""
        with self._lock:
            return list(self._results.values())

    def fail_results(self, error: str) -> None:
        """Replace every unacknowledged result by a failure saying ``error`` (for results
        the conductor refused to take)."""
        with self._lock:
            for command_id, outcome in list(self._results.items()):
                self._results[command_id] = CommandResult(
                    id=outcome["id"],
                    name=outcome["name"],
                    status="failed",
                    result={},
                    error=f"{outcome['name']}: {error}",
                )

    def acknowledge(self, ids: Sequence[str]) -> None:
        """Forget the results the conductor stored."""
        with self._lock:
            for command_id in ids:
                self._results.pop(command_id, None)

    def progress(self) -> ProgressReport | None:
        """The running command's progress, or ``None`` when idle."""
        with self._lock:
            running = self._running
            if running is None:
                return None
            elapsed = max(self._clock() - running.started, 1e-9)
            return ProgressReport(
                id=running.spec["id"],
                name=running.spec["name"],
                done=running.done,
                total=running.total,
                rate=round(running.done / elapsed, 1),
            )

    def power_pending(self) -> str | None:
        """``power_off``, ``reboot`` or ``rescue`` once such a command succeeded, else
        ``None``."""
        with self._lock:
            return self._power

    def pending_ids(self) -> set[str]:
        """The ids of the results not yet acknowledged."""
        with self._lock:
            return set(self._results)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running command's thread (tests and shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


# ---------------------------------------------------------------- argument helpers


def arg_str(args: Mapping[str, object], key: str, *, command: str) -> str:
    """The required non-empty string argument ``key``."""
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidArguments(f"{command} needs a non-empty string argument {key!r}")
    return value


def arg_int(args: Mapping[str, object], key: str, *, command: str) -> int | None:
    """The optional non-negative integer argument ``key``."""
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArguments(f"{command} argument {key!r} must be a byte count or null")
    return value


def arg_mapping(args: Mapping[str, object], key: str, *, command: str) -> dict[str, object] | None:
    """The optional object argument ``key``."""
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArguments(f"{command} argument {key!r} must be an object or null")
    return value


def arg_str_list(args: Mapping[str, object], key: str, *, command: str) -> list[str] | None:
    """The optional list-of-strings argument ``key``."""
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArguments(f"{command} argument {key!r} must be a list of device names or null")
    return list(value)
