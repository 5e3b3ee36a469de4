"""A loopback HTTP server of firmware images behind basic auth, for the firmware
tests (imported as ``firmware_images``)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER = "fwuser"
PASSWORD = "fw-Secret-77"


def image(version: str | None, *, size: int = 4096) -> bytes:
    """A firmware image: filler around the lab BMC's version mark (none: no mark)."""
    mark = b"" if version is None else f"METALCAST_FIRMWARE_VERSION={version}\n".encode()
    return b"\x7fFW" + mark + b"\0" * max(0, size - len(mark))


@dataclass
class ImageServer:
    """What is served (path -> bytes), and the paths asked for, in order."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str, *, credentials: bool = True) -> str:
        auth = f"{USER}:{PASSWORD}@" if credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}{path}"


@contextmanager
def serving() -> Iterator[ImageServer]:
    """An :class:`ImageServer` on a free loopback port, for the block."""
    state = ImageServer()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="firmware"')
                self.end_headers()
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
