"""A stdlib HTTP(S) server on 127.0.0.1 that serves images and counts requests.

Paths can be gated (the server answers only when the test says so, to make clients
overlap) or truncated (the body ends before its Content-Length).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GATE_TIMEOUT = 60.0


@dataclass
class Gate:
    """Holds a path's answer: ``arrived`` is set when a request for it came in;
    the answer is sent once ``release`` is set."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class ImageServer:
    """Serves ``files`` (path → bytes) and counts the GET requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.gates: dict[str, Gate] = {}
        self.truncated: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.scheme = "http"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; its URL."""
        self.files[path] = data
        return self.url + path

    def gate(self, path: str) -> Gate:
        self.gates[path] = Gate()
        return self.gates[path]

    def use_tls(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https"

    @contextmanager
    def running(self) -> Iterator[ImageServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            for gate in self.gates.values():
                gate.release.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join()


def _handler_for(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with server.lock:
                server.requests[path] += 1
            if path in server.redirects:
                self.send_response(302)
                self.send_header("Location", server.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path not in server.files:
                self.send_error(404)
                return
            gate = server.gates.get(path)
            if gate is not None:
                gate.arrived.set()
                gate.release.wait(GATE_TIMEOUT)
            self._send(server.files[path], truncated=path in server.truncated)

        def _send(self, data: bytes, *, truncated: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) + (4096 if truncated else 0)))
            self.end_headers()
            for start in range(0, len(data), 256 * 1024):
                self.wfile.write(data[start : start + 256 * 1024])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def handle(self) -> None:
            # clients that refuse the certificate or drop a truncated body
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                super().handle()

    return Handler


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def blocked_lock_waiters(lock_file: Path) -> int:
    """How many flock() calls wait on ``lock_file`` now (from /proc/locks)."""
    try:
        inode = os.stat(lock_file).st_ino
    except FileNotFoundError:
        return 0
    pattern = re.compile(rf"->\s+FLOCK\s.*:{inode}\s")
    with open("/proc/locks") as fh:
        return sum(1 for line in fh if pattern.search(line))


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.01)
