"""A real ``metalcast server`` on loopback for integration tests.

Fixtures:

``metalcast_server``
    a fresh all-in-one server (its own state directory and SQLite database) on a
    free 127.0.0.1 port, for one test; a :class:`MetalcastServer`.  On teardown it
    gets SIGTERM and the test fails unless the server exits 0.
``metalcast_url``
    that server's base URL (``http://127.0.0.1:PORT``).
``start_metalcast_server``
    a factory for more servers or other settings:
    ``with start_metalcast_server(env={"METALCAST_CONDUCTOR__...": "1"}) as server:``;
    with ``cacert=`` the server is reached over HTTPS, verified with that CA (the
    caller sets ``METALCAST_API__TLS_*`` in ``env``).

Every test under ``tests/integration`` is marked ``integration``.  Every server, once
stopped, has its logs and database files searched for the secrets the tests use
(:mod:`secret_scan`; the PostgreSQL role's password, in every PostgreSQL URL the
tests hand to servers, among them); a secret found there fails the test that ran the
server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from postgres import PASSWORD as POSTGRES_PASSWORD
from secret_scan import leaks, register
from server_process import free_port, server_command

register(POSTGRES_PASSWORD)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class MetalcastServer:
    """A running ``metalcast server`` subprocess."""

    url: str
    port: int
    state_dir: Path
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def files(self) -> list[Path]:
        """What must never hold a secret: its logs and its database files."""
        return [
            self.stdout_path,
            self.stderr_path,
            *sorted(self.state_dir.glob("metalcast.sqlite*")),
        ]

    def logs(self) -> str:
        """What the server wrote so far (for failure messages)."""
        out = self.stdout_path.read_text(errors="replace")
        err = self.stderr_path.read_text(errors="replace")
        return f"--- stdout ---\n{out}\n--- stderr ---\n{err}"


def _clean_env(overrides: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    # no boot services unless a test asks: they would serve a developer's own lab
    env["METALCAST_BOOT__ENABLED"] = "false"
    env.update(overrides or {})
    return env


def _wait_until_ready(server: MetalcastServer, *, cacert: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cacert) if cacert else True
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"metalcast server exited with {server.process.returncode}\n{server.logs()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/v1", timeout=2, verify=verify).status_code == 200:
                return
        time.sleep(0.1)
    server.process.kill()
    server.process.wait()
    pytest.fail(f"metalcast server did not answer within {START_TIMEOUT}s\n{server.logs()}")


def _stop(server: MetalcastServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        pytest.fail(f"metalcast server ignored SIGTERM for {STOP_TIMEOUT}s\n{server.logs()}")
    assert code == 0, f"metalcast server exited with {code} after SIGTERM\n{server.logs()}"


@contextlib.contextmanager
def running_server(
    state_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    cacert: Path | None = None,
) -> Iterator[MetalcastServer]:
    """Start ``metalcast server`` in ``state_dir``, yield it once ``GET /v1``
    answers (over HTTPS verified with ``cacert``, if given), then SIGTERM it, assert it
    exits 0 and that no registered secret is in its logs or database files."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    stdout_path, stderr_path = state_dir / "server.stdout", state_dir / "server.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            server_command(port=port, state_dir=state_dir, extra=args),
            stdout=out,
            stderr=err,
            env=_clean_env(env),
        )
    scheme = "https" if cacert else "http"
    server = MetalcastServer(
        f"{scheme}://127.0.0.1:{port}", port, state_dir, process, stdout_path, stderr_path
    )
    try:
        _wait_until_ready(server, cacert=cacert)
        yield server
    finally:
        if process.poll() is None:
            _stop(server)
    _check_no_secret_leaked(server)


def _check_no_secret_leaked(server: MetalcastServer) -> None:
    found = leaks(server.files())
    if found:
        pytest.fail(
            f"a secret leaked into the server's logs or database files "
            f"({server.state_dir}):\n  " + "\n  ".join(found),
            pytrace=False,
        )


StartServer = Callable[..., contextlib.AbstractContextManager[MetalcastServer]]


@pytest.fixture(scope="session")
def start_metalcast_server(tmp_path_factory: pytest.TempPathFactory) -> StartServer:
    """``start_metalcast_server(env=..., args=...)``: a context manager that runs a
    server in a new temporary state directory."""

    def start(
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        cacert: Path | None = None,
    ) -> contextlib.AbstractContextManager[MetalcastServer]:
        return running_server(
            tmp_path_factory.mktemp("metalcast"), env=env, args=args, cacert=cacert
        )

    return start


@pytest.fixture
def metalcast_server(start_metalcast_server: StartServer) -> Iterator[MetalcastServer]:
    """A fresh all-in-one server for one test."""
    with start_metalcast_server() as server:
        yield server


@pytest.fixture
def metalcast_url(metalcast_server: MetalcastServer) -> str:
    """The base URL of :func:`metalcast_server`."""
    return metalcast_server.url


RunServerIn = Callable[..., contextlib.AbstractContextManager[MetalcastServer]]


@pytest.fixture(scope="session")
def run_server_in() -> RunServerIn:
    """``run_server_in(state_dir, env=..., args=...)``: like ``start_metalcast_server``
    but in a state directory the test chooses, so a test can restart a server on the
    same database."""
    return running_server
