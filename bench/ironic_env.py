#!/usr/bin/env python3
"""Install and run real OpenStack Ironic (from PyPI) as a benchmark reference.

Ironic runs as the single all-in-one ``ironic`` process (API + conductor,
``rpc_transport = none``) with noauth, the fake-hardware type, only fake/no-op
interfaces and an SQLite database in a state directory, listening on 127.0.0.1.

With :class:`PowerSyncOptions` (``serve --bmc``) it runs the real ``ipmi``
(ipmitool) and ``redfish`` (sushy) hardware types instead, for the power-sync
benchmark (bench/power_sync.py): see :func:`config_text`.

Usage:
    python3 bench/ironic_env.py install
    python3 bench/ironic_env.py serve --port 6385 [--state-dir DIR] [--bmc]

Install notes (Debian 12, Python 3.11): ``pip install ironic==39.0.0`` into a
fresh venv needed no extra apt or pip package: every dependency with native
code (cryptography, bcrypt, greenlet, numpy, rpds-py, psutil, ...) comes as a
manylinux wheel. Only pip/setuptools/wheel are upgraded first. No upper
constraints are applied, so the newest releases of the oslo libraries and
SQLAlchemy are installed; Ironic 39.0.0 runs with them.
"""

from __future__ import annotations

import argparse
import dataclasses
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

# The power-sync benchmark's Ironic: the ipmi and redfish hardware types with their
# real power and management interfaces; every other family gets an implementation
# both types support that needs no service (no-op ones, pxe boot, direct deploy).
# Power and management have no default: Ironic picks each hardware type's own.
BMC_HARDWARE_TYPES = ("ipmi", "redfish")
BMC_INTERFACES: dict[str, tuple[str, ...]] = {
    "bios": ("no-bios",),
    "boot": ("pxe",),
    "console": ("no-console",),
    "deploy": ("direct",),
    "firmware": ("no-firmware",),
    "inspect": ("no-inspect",),
    "management": ("ipmitool", "redfish"),
    "network": ("noop",),
    "power": ("ipmitool", "redfish"),
    "raid": ("no-raid",),
    "rescue": ("no-rescue",),
    "storage": ("noop",),
    "vendor": ("no-vendor",),
}
# Ironic's own default_log_levels (ironic/conf/opts.py, 39.0.0), plus DEBUG for the
# conductor manager alone: its "Completed power state sync operation ... in N
# seconds" line is the only record of a sync pass's duration.
LOG_LEVELS = (
    "amqp=WARNING",
    "amqplib=WARNING",
    "qpid.messaging=INFO",
    "oslo.messaging=INFO",
    "oslo_messaging=INFO",
    "stevedore=INFO",
    "iso8601=WARNING",
    "requests=WARNING",
    "urllib3.connectionpool=WARNING",
    "keystonemiddleware.auth_token=INFO",
    "keystoneauth.session=INFO",
    "openstack=WARNING",
    "oslo_policy=WARNING",
    "oslo_concurrency.lockutils=WARNING",
    "ironic.conductor.manager=DEBUG",
)


@dataclasses.dataclass(frozen=True)
class PowerSyncOptions:
    """Run the ipmi and redfish hardware types, with these power-sync settings."""

    #: [conductor]sync_power_state_interval, seconds; 0 turns the sync off
    interval: int = 0
    #: [conductor]sync_power_state_workers and periodic_max_workers (both 8 by
    #: default; a pass uses the smaller of the two)
    workers: int = 8


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


def _interface_lines(interfaces: dict[str, tuple[str, ...]]) -> list[str]:
    lines = []
    for family, names in interfaces.items():
        lines.append(f"enabled_{family}_interfaces = {','.join(names)}")
        if len(names) == 1 or interfaces is INTERFACES:
            lines.append(f"default_{family}_interface = {names[0]}")
    return lines


def _power_sync_lines(state_dir: Path, options: PowerSyncOptions) -> tuple[list[str], list[str]]:
    """The [DEFAULT] and [conductor] lines of the power-sync benchmark's Ironic.

    The sync records what the BMC reports (``force_power_state_during_sync =
    false``, metalcast's default) instead of Ironic's default of powering the
    machine back; everything about IPMI and Redfish ([ipmi] min_command_interval,
    command_retry_timeout, cipher suites; [redfish]) keeps Ironic's defaults.
    """
    default = [
        f"tempdir = {state_dir / 'tmp'}",  # ipmitool password files
        f"default_log_levels = {','.join(LOG_LEVELS)}",
    ]
    conductor = [
        f"sync_power_state_interval = {options.interval}",
        f"sync_power_state_workers = {options.workers}",
        f"periodic_max_workers = {options.workers}",
        "force_power_state_during_sync = false",
    ]
    return default, conductor


def config_text(state_dir: Path, port: int, power_sync: PowerSyncOptions | None = None) -> str:
    """Return the ironic.conf for an all-in-one fake-hardware Ironic, or with
    ``power_sync`` one with the ipmi and redfish hardware types."""
    default_extra, conductor_extra = (
        _power_sync_lines(state_dir, power_sync) if power_sync else ([], [])
    )
    hardware = ",".join(BMC_HARDWARE_TYPES) if power_sync else "fake-hardware"
    default = [
        "[DEFAULT]",
        "auth_strategy = noauth",
        "rpc_transport = none",
        "host = metalcast-bench",
        f"my_ip = {LOOPBACK}",
        f"enabled_hardware_types = {hardware}",
        *_interface_lines(BMC_INTERFACES if power_sync else INTERFACES),
        f"state_path = {state_dir}",
        f"log_dir = {state_dir}",
        "log_file = ironic.log",
        "debug = false",
        *default_extra,
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
        *conductor_extra,
        "",
        "[dhcp]",
        "dhcp_provider = none",
        "",
        "[oslo_concurrency]",
        f"lock_path = {state_dir / 'locks'}",
    ]
    return "\n".join([*default, "", *sections, ""])


def prepare(
    state_dir: Path,
    port: int,
    venv: Path = VENV,
    *,
    power_sync: PowerSyncOptions | None = None,
) -> Path:
    """Write the config into ``state_dir`` and create the SQLite schema, unless the
    database exists already (a restart with another config keeps the nodes)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "tmp").mkdir(exist_ok=True)
    config = state_dir / "ironic.conf"
    config.write_text(config_text(state_dir, port, power_sync))
    if (state_dir / "ironic.sqlite").exists():
        return config
    subprocess.run(
        [str(venv_bin("ironic-dbsync", venv)), "--config-file", str(config), "create_schema"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return config


def start(
    state_dir: Path,
    port: int,
    *,
    venv: Path = VENV,
    timeout: float = 120.0,
    power_sync: PowerSyncOptions | None = None,
) -> ManagedServer:
    """Install if needed, configure, start Ironic and wait until /v1 answers."""
    install(venv)
    config = prepare(state_dir, port, venv, power_sync=power_sync)
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


def _serve(port: int, state_dir: Path | None, power_sync: PowerSyncOptions | None) -> None:
    owned = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="ironic-bench-")) if owned else state_dir
    assert directory is not None
    server = start(directory, port, power_sync=power_sync)
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
    serve.add_argument(
        "--bmc", action="store_true", help="the ipmi and redfish hardware types, not fake-hardware"
    )
    serve.add_argument(
        "--sync-interval", type=int, default=60, help="with --bmc: sync_power_state_interval"
    )
    serve.add_argument("--sync-workers", type=int, default=8, help="with --bmc: sync workers")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        print(f"ironic {IRONIC_VERSION} installed in {VENV}")
    else:
        power_sync = PowerSyncOptions(args.sync_interval, args.sync_workers) if args.bmc else None
        _serve(args.port, args.state_dir, power_sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
