"""Out-of-band power control of a fleet's machines, over HTTP on loopback.

What a person pressing power buttons in the data center does, for a thousand
machines at once: the power-sync benchmark flips every machine with one request,
then waits for the conductors to notice, and reads every machine's real power state
to check what they recorded::

    GET  /power                          {"node-0": "off", "node-1": "on", …}
    POST /power/toggle                   toggle every machine; answers GET /power
    POST /power/toggle?every=K&offset=R  only the machines whose index i has i % K == R

A :class:`PowerControl` serves these from a background thread; it is not a BMC and
knows no credentials, so it only ever listens where it is told (the CLI: 127.0.0.1).

Errors::

    OSError     the port is taken
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from metalcast.lab.machine import Machine, Power, PowerAction


def power_states(machines: Sequence[Machine]) -> dict[str, str]:
    """Every machine's power state now, by name."""
    return {m.name: m.power().value for m in machines}


def toggle_power(machines: Sequence[Machine], *, every: int = 1, offset: int = 0) -> int:
    """Power off the machines that are on and on those that are off, for every
    ``every``-th machine from ``offset``; returns how many were toggled.

    Raises:
        ValueError: ``every`` is below 1.
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    chosen = [m for i, m in enumerate(machines) if i % every == offset]
    for machine in chosen:
        action = PowerAction.OFF if machine.power() is Power.ON else PowerAction.ON
        machine.act(action)
    return len(chosen)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/power":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "no such resource"})
            return
        self._reply(HTTPStatus.OK, power_states(self.server.machines))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/power/toggle":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "no such resource"})
            return
        query = parse_qs(url.query)
        try:
            every = int(query.get("every", ["1"])[0])
            offset = int(query.get("offset", ["0"])[0])
            toggle_power(self.server.machines, every=every, offset=offset)
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._reply(HTTPStatus.OK, power_states(self.server.machines))

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark calls this many times."""

    def _reply(self, status: HTTPStatus, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], machines: Sequence[Machine]) -> None:
        super().__init__(address, _Handler)
        self.machines = list(machines)


class PowerControl:
    """The power-control endpoint of ``machines`` on ``address``:``port`` (0: any)."""

    def __init__(
        self, machines: Sequence[Machine], *, port: int = 0, address: str = "127.0.0.1"
    ) -> None:
        self._server = _Server((address, port), machines)
        self.address = address
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lab-power-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
