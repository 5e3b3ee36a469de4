"""Serve Keystone's public WSGI app with waitress, writing one line per request.

Run by the interpreter of ``.venv-keystone`` (not metalcast's):

    python serve_keystone.py PORT ACCESS_LOG

Keystone reads its configuration from ``OS_KEYSTONE_CONFIG_FILES``.  The access log
lets tests see what Keystone was asked: ``METHOD PATH STATUS SUBJECT``, SUBJECT being
the first 16 hex digits of the SHA-256 of the ``X-Subject-Token`` header (the token
being validated), or ``-``.  Standard library and Keystone's own packages only.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


def token_digest(token: str) -> str:
    """How the access log names a token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class AccessLog:
    """WSGI middleware appending one line per request to a file."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str) -> None:
        self._app = app
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        subject = environ.get("HTTP_X_SUBJECT_TOKEN")
        digest = token_digest(subject) if subject else "-"

        def record(status: str, headers: Any, exc_info: Any = None) -> Any:
            method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
            line = f"{method} {path} {status.split()[0]} {digest}\n"
            with self._lock:
                self._file.write(line)
            return start_response(status, headers, exc_info)

        return self._app(environ, record)


def main() -> None:
    port, access_log = int(sys.argv[1]), sys.argv[2]
    # Keystone parses sys.argv as its own command line
    sys.argv = sys.argv[:1]
    import waitress
    from keystone.server import wsgi

    app = wsgi.initialize_public_application()
    waitress.serve(AccessLog(app, access_log), host="127.0.0.1", port=port, threads=8)


if __name__ == "__main__":
    main()
