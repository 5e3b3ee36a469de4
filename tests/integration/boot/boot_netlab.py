"""Helpers of the boot integration tests: the lab's names, real clients, a stub API.

The fixtures that build and tear these down are in this directory's conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from metalcast.agent_downloads import UrlSigner
from metalcast.boot import netns
from metalcast.boot.service import BootServices
from metalcast.boot.settings import BootSettings

CLIENT_MAC = "52:54:00:b0:07:01"
SERVER_ADDRESS = "192.168.77.1"
CLIENT_ADDRESS = "192.168.77.60"
HTTP_PORT = 8080
#: the key the boot services check agents' download URLs with
SIGNER = UrlSigner(b"boot-test-signing-key-0123456789")

#: what the boot tests run; they are skipped without it
TOOLS = ("ip", "dnsmasq", "busybox", "curl")


@dataclass(frozen=True)
class BootLab:
    server_ns: str
    client_ns: str
    work: Path

    def run_client(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the client namespace (killed after ``timeout``)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.client_ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def udhcpc(self, *, tries: int = 2) -> str | None:
        """Ask for a lease on ``vc0`` with busybox udhcpc; the address offered or None."""
        script = self.work / "udhcpc.sh"
        if not script.exists():
            script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip"\nexit 0\n')
            script.chmod(0o755)
        done = self.run_client(
            "busybox", "udhcpc", "-i", "vc0", "-f", "-q", "-n",
            "-t", str(tries), "-T", "1", "-s", str(script),
        )  # fmt: skip
        for line in done.stdout.splitlines():
            if line.startswith("LEASE "):
                return line.split()[1]
        return None

    def give_client_an_address(self) -> None:
        netns.add_address(self.client_ns, "vc0", cidr=f"{CLIENT_ADDRESS}/24")


def boot_settings(lab: BootLab, **changes: object) -> BootSettings:
    values: dict[str, object] = {
        "enabled": True,
        "interface": "br0",
        "netns": lab.server_ns,
        "address": SERVER_ADDRESS,
        "http_port": HTTP_PORT,
        "lease_time": 600,
    }
    values.update(changes)
    return BootSettings.model_validate(values)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@dataclass
class StubApi:
    """What reached the stand-in API."""

    url: str
    requests: list[dict[str, object]] = field(default_factory=list)


def stub_handler(record: list[dict[str, object]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            record.append({"method": "GET", "path": self.path, "headers": headers})
            self._answer(200, {"node": {"uuid": "stub"}, "config": {"heartbeat_timeout": 300}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            record.append({"method": "POST", "path": self.path, "body": body})
            self._answer(202, {"ack": [], "command": None, "heartbeat_interval": 5})

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


StartServices = Callable[..., BootServices]
