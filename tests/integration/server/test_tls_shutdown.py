"""A server over HTTPS stops promptly on SIGTERM though a client keeps an idle
connection open (uvicorn's polite TLS close waited 30 s for such a client)."""

from __future__ import annotations

import contextlib
import signal
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from server_process import generate_certificates

#: the ``run_server_in`` fixture of tests/integration/conftest.py
RunServerIn = Callable[..., contextlib.AbstractContextManager[Any]]

#: well under the 30 s the event loop waits for a TLS peer's close_notify
STOP_WITHIN = 10.0


def test_an_idle_keep_alive_client_does_not_hold_the_server_up(
    run_server_in: RunServerIn, tmp_path: Path
) -> None:
    pki = generate_certificates(tmp_path / "pki")
    env = {
        "METALCAST_API__TLS_CERT_FILE": str(pki / "server.pem"),
        "METALCAST_API__TLS_KEY_FILE": str(pki / "server.key"),
    }
    trust = ssl.create_default_context(cafile=pki / "ca.pem")
    with (
        run_server_in(tmp_path / "state", env=env, cacert=pki / "ca.pem") as server,
        httpx.Client(base_url=server.url, verify=trust) as client,
    ):
        assert client.get("/v1").status_code == 200  # its connection stays in the pool
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            server.process.kill()
            raise AssertionError(f"the server was still up {STOP_WITHIN} s after SIGTERM") from None
        assert code == 0, server.logs()[-2000:]
