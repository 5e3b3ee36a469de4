"""Several ``metalcast conductor`` and ``metalcast api`` processes on one throwaway
PostgreSQL database and one state directory (one secret key), as the README's
multi-process set-up runs them, which a test starts, kills and restarts one by one.

Conductors heartbeat every :data:`HEARTBEAT` seconds so that a death shows within
seconds; everything else is the defaults.  Every process, once gone, has its logs
searched for the secrets the tests use (:mod:`secret_scan`).

A start is awaited as an event (the process's banner, then its conductor row alive or
its ``GET /v1`` answered), however slow a loaded machine makes it; :data:`HANG` only
bounds a hang, and when it expires the failure says what the process printed, the CPU
time it had and the machine's load, so that a stuck process and a starved one can be
told apart.  :attr:`Process.starts` keeps how long each start took.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from secret_scan import leaks
from server_process import free_port

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
HEARTBEAT = 1.0
HEARTBEAT_TIMEOUT = 1.5
#: how long a process may go without showing it serves, or the conductors without
#: reaching the expected set, before the test calls it hung: a bound on a hang, not
#: on a start (1.4 to 3.2 s at load 7 to 17 on two cores; once past 60 s at load
#: 22), below pytest's 300 s so that the failure says what the process printed
HANG = 180.0
STOP_TIMEOUT = 90.0


@dataclass
class Process:
    """One process of the deployment (running or not)."""

    kind: str  # "api" or "conductor"
    name: str
    args: list[str]
    log_dir: Path
    url: str = ""
    popen: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)
    #: settings of this process only, over the deployment's
    env: dict[str, str] = field(default_factory=dict)
    #: seconds each start took, from the fork to serving
    starts: list[float] = field(default_factory=list)

    @property
    def stdout(self) -> Path:
        return self.log_dir / f"{self.name}.stdout"

    @property
    def stderr(self) -> Path:
        return self.log_dir / f"{self.name}.stderr"

    def logs(self) -> str:
        return (
            f"--- {self.name} stdout ---\n{self.stdout.read_text(errors='replace')}\n"
            f"--- {self.name} stderr ---\n{self.stderr.read_text(errors='replace')[-20000:]}"
        )


class Deployment:
    """API and conductor processes sharing ``database_url`` and ``state_dir``."""

    def __init__(self, database_url: str, state_dir: Path, env: Mapping[str, str] = ()) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        self.env.update(
            {
                "METALCAST_DATABASE__URL": database_url,
                "METALCAST_STATE_DIR": str(state_dir),
                "METALCAST_BOOT__ENABLED": "false",
                "METALCAST_CONDUCTOR__HEARTBEAT_INTERVAL": str(HEARTBEAT),
                "METALCAST_CONDUCTOR__HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "5",
                **dict(env),
            }
        )
        self.processes: dict[str, Process] = {}

    # ------------------------------------------------------------------ starting

    def add_conductor(self, name: str, *, group: str = "", env: Mapping[str, str] = ()) -> Process:
        args = ["conductor", "--hostname", name, "--group", group, "--rpc-host", "127.0.0.1"]
        process = Process("conductor", name, args, self.log_dir, env=dict(env))
        self.processes[name] = process
        self.start(name)
        return process

    def add_api(self, name: str, *, env: Mapping[str, str] = ()) -> Process:
        port = free_port()
        args = ["api", "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        process = Process("api", name, args, self.log_dir, url=url, env=dict(env))
        self.processes[name] = process
        self.start(name)
        return process

    def start(self, name: str) -> None:
        """Start (or start again) process ``name`` and wait until it serves.

        Raises:
            AssertionError: it exited, or showed no sign of serving for :data:`HANG`
                seconds (it is killed; the message has its output).
        """
        process = self.processes[name]
        banners = self._banners(process)
        with process.stdout.open("ab") as out, process.stderr.open("ab") as err:
            process.popen = subprocess.Popen(
                [sys.executable, "-m", "metalcast.cli.main", *process.args],
                stdout=out,
                stderr=err,
                env={**self.env, **process.env},
            )
        started = time.monotonic()
        while not self._ready(process, banners):
            if process.popen.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {process.popen.returncode}\n{process.logs()}"
                )
            if time.monotonic() - started > HANG:
                self._hung(process)
            time.sleep(0.1)
        process.starts.append(time.monotonic() - started)

    def _hung(self, process: Process) -> None:
        assert process.popen is not None
        cpu = _cpu_seconds(process.popen.pid)
        process.popen.kill()
        process.exits.append(process.popen.wait())
        process.popen = None
        raise AssertionError(
            f"{process.name} showed no sign of serving {HANG:.0f} s after it was started "
            f"(it had {cpu} of CPU; load average {_load()}); what it printed:\n"
            f"{process.logs()}"
        )

    @staticmethod
    def _banners(process: Process) -> int:
        """How many times the process's log says it started (the log is appended to)."""
        if not process.stdout.exists():
            return 0
        return process.stdout.read_text().count("taking requests at")

    def _ready(self, process: Process, banners: int) -> bool:
        if process.kind == "conductor":
            # this start's banner: a killed one's row may still look alive
            return self._banners(process) > banners and self.conductor_alive(process.name)
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(process.url + "/v1", timeout=2).status_code == 200
        return False

    # ------------------------------------------------------------------ stopping

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, whatever the process was doing."""
        process = self.processes[name]
        assert process.popen is not None
        process.popen.kill()
        process.exits.append(process.popen.wait())
        process.popen = None

    def stop(self, name: str) -> None:
        """SIGTERM, and the process must exit 0 within :data:`STOP_TIMEOUT`."""
        process = self.processes[name]
        assert process.popen is not None
        process.popen.send_signal(signal.SIGTERM)
        try:
            code = process.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
            raise AssertionError(f"{name} ignored SIGTERM\n{process.logs()}") from None
        process.popen = None
        process.exits.append(code)
        assert code == 0, f"{name} exited with {code} after SIGTERM\n{process.logs()}"

    def close(self) -> None:
        """Stop what still runs (each must exit 0); no secret in any log."""
        errors = []
        for name, process in self.processes.items():
            if process.popen is not None:
                try:
                    self.stop(name)
                except AssertionError as exc:
                    errors.append(str(exc))
        found = leaks(sorted(self.log_dir.iterdir()))
        assert not found, "a secret leaked into a log:\n  " + "\n  ".join(found)
        assert not errors, "\n".join(errors)

    # ------------------------------------------------------------------ looking

    def api(self, name: str | None = None) -> str:
        """The URL of API process ``name`` (default: the first running one)."""
        for process in self.processes.values():
            if process.kind == "api" and process.popen is not None and name in (None, process.name):
                return process.url
        raise AssertionError(f"no API process {name or ''} is running")

    def conductors(self) -> dict[str, dict[str, object]]:
        """GET /v1/conductors, by hostname (at the API's newest version: an older
        metalcast's API, in the mixed-version test, stops below this one's)."""
        latest = {"X-OpenStack-Ironic-API-Version": "latest"}
        response = httpx.get(self.api() + "/v1/conductors", headers=latest, timeout=30)
        assert response.status_code == 200, response.text
        return {c["hostname"]: c for c in response.json()["conductors"]}

    def conductor_alive(self, name: str) -> bool:
        with contextlib.suppress(AssertionError, httpx.HTTPError):
            return bool(self.conductors().get(name, {}).get("alive"))
        return False

    def wait_conductors(self, alive: set[str]) -> None:
        """Block until exactly ``alive`` are the live conductors (AssertionError after
        :data:`HANG` seconds)."""
        deadline = time.monotonic() + HANG
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = {h for h, c in self.conductors().items() if c["alive"]}
            if seen == alive:
                return
            time.sleep(0.1)
        raise AssertionError(
            f"live conductors {sorted(seen)}, expected {sorted(alive)}, after {HANG:.0f} s "
            f"(load average {_load()})"
        )


def _cpu_seconds(pid: int) -> str:
    """The CPU time process ``pid`` has used, from /proc (Linux), as text."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "an unknown amount"
    # utime and stime, fields 14 and 15 of proc(5), counted after the command's ")"
    ticks = int(fields[11]) + int(fields[12])
    return f"{ticks / os.sysconf('SC_CLK_TCK'):.1f} s"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def deployment(
    database_url: str,
    state_dir: Path,
    *,
    conductors: int = 3,
    apis: int = 2,
    env: Mapping[str, str] = (),
) -> Iterator[Deployment]:
    """``conductors`` conductors (c1…) and ``apis`` API processes (api1…), started; all
    stopped at the end (each must exit 0)."""
    deploy = Deployment(database_url, state_dir, env)
    try:
        # the first API process migrates the database before the conductors start
        for index in range(1, apis + 1):
            deploy.add_api(f"api{index}")
        for index in range(1, conductors + 1):
            deploy.add_conductor(f"c{index}")
        yield deploy
    finally:
        deploy.close()
