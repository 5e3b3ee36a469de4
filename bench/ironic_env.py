#!/usr/bin/env python3
"""Install and run real OpenStack Ironic (from PyPI) as a benchmark reference.

Ironic runs as the single all-in-one ``ironic`` process (API + conductor,
``rpc_transport = none``) with noauth, the fake-hardware type, only fake/no-op
interfaces and an SQLite database in a state directory, listening on 127.0.0.1.

Usage:
    python3 bench/ironic_env.py install
    python3 bench/ironic_env.py serve --port 6385 [--state-dir DIR]

Install notes (Debian 12, Python 3.11): ``pip install ironic==39.0.0`` into a
fresh venv needed no extra apt or pip package: every dependency with native
code (cryptography, bcrypt, greenlet, numpy, rpds-py, psutil, ...) comes as a
manylinux wheel. Only pip/setuptools/wheel are upgraded first. No upper
constraints are applied, so the newest releases of the oslo libraries and
SQLAlchemy are installed; Ironic 39.0.0 runs with them.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from proctree import tree_rss_bytes
from server import LOOPBACK, ManagedServer, launch

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".ironic-venv"
IRONIC_VERSION = "39.0.0"

# Every interface family of fake-hardware, restricted to fake / no-op drivers.
INTERFACES: dict[str, tuple[str, ...]] = {
    "bios": ("fake", "no-bios"),
    "boot": ("fake",),
    "console": ("fake", "no-console"),
    "deploy": ("fake",),
    "firmware": ("fake", "no-firmware"),
    "inspect": ("fake", "no-inspect"),
    "management": ("fake",),
    "network": ("noop",),
    "power": ("fake",),
    "raid": ("fake", "no-raid"),
    "rescue": ("fake", "no-rescue"),
    "storage": ("noop", "fake"),
    "vendor": ("fake", "no-vendor"),
}


def venv_bin(name: str, venv: Path = VENV) -> Path:
    return venv / "bin" / name


def is_installed(venv: Path = VENV) -> bool:
    """True if the venv holds the pinned Ironic version and its commands."""
    pattern = f"lib/python*/site-packages/ironic-{IRONIC_VERSION}.dist-info"
    return venv_bin("ironic", venv).exists() and any(venv.glob(pattern))


def install(venv: Path = VENV) -> None:
    """Create the venv and pip-install the pinned Ironic into it (idempotent)."""
    if is_installed(venv):
        return
    if not venv_bin("python", venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_bin("python", venv)), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip", "setuptools", "wheel"], check=True)
    subprocess.run([*pip, f"ironic=={IRONIC_VERSION}"], check=True)


def _interface_lines() -> list[str]:
    lines = []
    for family, names in INTERFACES.items():
        lines.append(f"enabled_{family}_interfaces = {','.join(names)}")
        lines.append(f"default_{family}_interface = {names[0]}")
    return lines


def config_text(state_dir: Path, port: int) -> str:
    """Return the ironic.conf for an all-in-one fake-hardware Ironic."""
    default = [
        "[DEFAULT]",
        "auth_strategy = noauth",
        "rpc_transport = none",
        "host = metalcast-bench",
        f"my_ip = {LOOPBACK}",
        "enabled_hardware_types = fake-hardware",
        *_interface_lines(),
        f"state_path = {state_dir}",
        f"log_dir = {state_dir}",
        "log_file = ironic.log",
        "debug = false",
    ]
    sections = [
        "[api]",
        f"host_ip = {LOOPBACK}",
        f"port = {port}",
        "",
        "[database]",
        f"connection = sqlite:///{state_dir / 'ironic.sqlite'}",
        "",
        "[conductor]",
        # No cleaning: provide goes manageable -> available and undeploy goes
        # deleting -> available; cleaning steps would be no-ops with fake
        # interfaces anyway.
        "automated_clean = false",
        "",
        "[dhcp]",
        "dhcp_provider = none",
        "",
        "[oslo_concurrency]",
        f"lock_path = {state_dir / 'locks'}",
    ]
    return "\n".join([*default, "", *sections, ""])


def prepare(state_dir: Path, port: int, venv: Path = VENV) -> Path:
    """Write the config into ``state_dir`` and create the SQLite schema."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "ironic.conf"
    config.write_text(config_text(state_dir, port))
    subprocess.run(
        [str(venv_bin("ironic-dbsync", venv)), "--config-file", str(config), "create_schema"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return config


def start(
    state_dir: Path, port: int, *, venv: Path = VENV, timeout: float = 120.0
) -> ManagedServer:
    """Install if needed, configure, start Ironic and wait until /v1 answers."""
    install(venv)
    config = prepare(state_dir, port, venv)
    server = launch(
        "ironic",
        [str(venv_bin("ironic", venv)), "--config-file", str(config)],
        base_url=f"http://{LOOPBACK}:{port}",
        log_path=state_dir / "ironic.stdout.log",
    )
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _serve(port: int, state_dir: Path | None) -> None:
    owned = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="ironic-bench-")) if owned else state_dir
    assert directory is not None
    server = start(directory, port)
    print(f"ironic {IRONIC_VERSION} at {server.base_url} pid {server.pid} state {directory}")
    print(f"RSS {tree_rss_bytes(server.pid) / 2**20:.0f} MiB; Ctrl-C to stop", flush=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"create {VENV} with ironic=={IRONIC_VERSION}")
    serve = sub.add_parser("serve", help="run Ironic in the foreground until Ctrl-C")
    serve.add_argument("--port", type=int, default=6385)
    serve.add_argument("--state-dir", type=Path, help="kept; default: a temp dir, removed")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        print(f"ironic {IRONIC_VERSION} installed in {VENV}")
    else:
        _serve(args.port, args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
