"""Test doubles for the agent: a fake machine (/sys, /proc, /dev) and a file server.

``FakeMachine`` builds a /sys tree the agent reads and sparse regular files it uses as
block devices. ``FileServer`` serves bytes over HTTP on 127.0.0.1, with or without a
Content-Length, and answers 404 for anything else.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from metalcast_agent.environment import Environment
from metalcast_agent.protocol import TOKEN_HEADER

MIB = 1024**2


@dataclass
class FakeMachine:
    """A machine made of files under ``root``."""

    root: Path
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            sys_root=self.root / "sys",
            proc_root=self.root / "proc",
            dev_root=self.root / "dev",
            power_commands={"power_off": ("false",), "reboot": ("false",)},
        )
        for path in (self.env.sys_root / "block", self.env.sys_root / "class" / "net"):
            path.mkdir(parents=True)
        self.env.proc_root.mkdir()
        self.env.dev_root.mkdir()

    def add_disk(self, name: str, size: int, **attrs: str) -> Path:
        """A disk ``name`` of ``size`` bytes: sysfs attributes and a sparse device file.

        ``attrs`` maps sysfs paths relative to /sys/block/NAME (``device/model``) to text.
        """
        block = self.env.sys_root / "block" / name
        write(block / "size", f"{size // 512}\n")
        write(block / "queue" / "rotational", "0\n")
        for relative, text in attrs.items():
            write(block / relative, text + "\n")
        device = self.env.dev_root / name
        with device.open("wb") as handle:
            handle.truncate(size)
        return device

    def add_nic(self, name: str, mac: str, *, carrier: bool = True, kind: str = "1") -> None:
        """A network interface in /sys/class/net."""
        net = self.env.sys_root / "class" / "net" / name
        write(net / "address", mac + "\n")
        write(net / "type", kind + "\n")
        if carrier:
            write(net / "carrier", "1\n")

    def disk_bytes(self, name: str) -> bytes:
        """The whole content of disk ``name``."""
        return (self.env.dev_root / name).read_bytes()


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; ``url(path)`` gives the address.

    It records every request (``requests``: path with query, headers); with ``token``
    set it answers 403 in Ironic's shape, as the boot server does, to requests that do
    not carry it in the agent token header; a path in ``redirects`` is answered 302 to
    the URL given there.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.unsized: set[str] = set()  # served without Content-Length (closed at the end)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.token: str | None = None
        self.redirects: dict[str, str] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.token and self.headers.get(TOKEN_HEADER) != server.token:
                    self._refuse()
                    return
                body = server.files.get(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if self.path not in server.unsized:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def _refuse(self) -> None:
                fault = {"faultstring": "needs the agent token", "faultcode": "Client"}
                body = json.dumps({"error_message": json.dumps(fault)}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    @contextmanager
    def running(self) -> Iterator[FileServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()


def need(tool: str) -> str:
    """The path of ``tool``; fails the test (not skips) when it is missing."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    assert path, f"{tool} is needed by this test (package fdisk/dosfstools/genisoimage)"
    return path


def run(*argv: str, stdin: str | None = None) -> str:
    """Run a tool, fail with its stderr if it fails; its stdout."""
    done = subprocess.run(
        [need(argv[0]), *argv[1:]], input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed: {done.stderr}"
    return done.stdout


def make_iso(directory: Path, files: dict[str, str]) -> bytes:
    """An ISO 9660 image labelled ``config-2`` holding ``files``."""
    content = directory / "iso-content"
    for name, text in files.items():
        write(content / name, text)
    iso = directory / "config.iso"
    run("genisoimage", "-quiet", "-V", "config-2", "-r", "-J", "-o", str(iso), str(content))
    return iso.read_bytes()
