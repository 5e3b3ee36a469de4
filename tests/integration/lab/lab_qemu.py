"""QEMU runs and a stand-in lookup server for the lab's boot tests."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

#: TCG speed depends on host load: be generous
BOOT_TIMEOUT = 180.0
POLL_INTERVAL = 0.05
#: QEMU user networking: the guest's DHCP address and its view of the host's loopback
GUEST_ADDRESS = "10.0.2.15"
HOST_FROM_GUEST = "10.0.2.2"


@dataclass
class QemuRun:
    """One QEMU process and its serial log."""

    process: subprocess.Popen[bytes]
    serial: Path
    qmp_socket: Path
    started: float = field(default_factory=time.monotonic)

    def qmp(self, command: str) -> dict[str, object]:
        """Run one QMP command (after the capabilities handshake); its reply."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(str(self.qmp_socket))
            stream = sock.makefile("rw")
            json.loads(stream.readline())  # the greeting
            for name in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": name}) + "\n")
                stream.flush()
                reply: dict[str, object] = {}
                while "return" not in reply and "error" not in reply:  # skip events
                    reply = json.loads(stream.readline())
            return reply

    def press_power_button(self) -> None:
        """ACPI power button: what IPMI "power soft" and Redfish GracefulShutdown do."""
        assert "return" in self.qmp("system_powerdown")

    def log(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def wait_for(self, pattern: str, timeout: float = BOOT_TIMEOUT) -> re.Match[str]:
        """The first match of ``pattern`` in the serial log, waiting up to ``timeout``."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self.log())
            if match:
                return match
            if self.process.poll() is not None:
                pytest.fail(
                    f"QEMU exited ({self.process.returncode}) before {pattern!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no {pattern!r} on the serial console in {timeout:.0f} s:\n{self.tail()}"
                )
            time.sleep(POLL_INTERVAL)

    def wait_exit(self, timeout: float = BOOT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"QEMU still running after {timeout:.0f} s:\n{self.tail()}")

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


class LookupServer:
    """Records every request; answers 404 like metalcast with no node waiting."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.record(SeenRequest("GET", self.path, dict(self.headers)))
                body = b'{"error_message": "no node waiting for an agent has these MACs"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def record(self, request: SeenRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def wait_for_request(self, timeout: float = BOOT_TIMEOUT) -> SeenRequest:
        with self._arrived:
            if not self._arrived.wait_for(lambda: bool(self.requests), timeout):
                pytest.fail(f"no request reached the lookup server in {timeout:.0f} s")
            return self.requests[0]
