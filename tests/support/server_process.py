"""How tests start a ``metalcast server`` process: a free port and the command line.

Shared by tests/integration/conftest.py (its fixtures) and by tests that start a
server themselves; a module of its own because ``from conftest import ...`` finds
whichever conftest was imported first.
"""

from __future__ import annotations

import os
import socket
import subprocess
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


def generate_certificates(directory: Path) -> Path:
    """``metalcast tls generate`` into ``directory`` (its ``ca.pem``, ``server.pem``
    and ``server.key``), with no METALCAST_ variable of the caller's; ``directory``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    done = subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", "tls", "generate",
         "--state-dir", str(directory), "--dir", str(directory)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return directory
