"""How tests start a ``metalcast server`` process: a free port and the command line.

Shared by tests/integration/conftest.py (its fixtures) and by tests that start a
server themselves; a module of its own because ``from conftest import ...`` finds
whichever conftest was imported first.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(*, port: int, state_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """The command line that starts ``metalcast server`` with this interpreter."""
    return [
        sys.executable, "-m", "metalcast.cli.main", "server",
        "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(state_dir), *extra,
    ]  # fmt: skip
