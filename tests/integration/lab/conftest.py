"""Fixtures for booting the deploy ramdisk and the test disk image in QEMU (TCG only).

``lab_cache``
    the Debian package cache for the whole session: ``$LAB_DEB_CACHE`` when set
    (kept between runs: the kernel package alone is 70 MB), else a temporary directory.
``start_qemu``
    starts ``qemu-system-x86_64 -accel tcg`` with the serial console in a file;
    every QEMU it started is killed by PID on teardown.
``agent_ramdisk``, ``fake_agent_ramdisk``, ``lab_disk_image``
    built once per session (into temporary directories) from ``lab_cache``.
``lookup_server``
    a stand-in metalcast API on 127.0.0.1 that records requests and answers 404
    (QEMU user networking shows it to the guest as 10.0.2.2).
``lab_env``
    a metalcast server whose boot services (with the real agent's deploy ramdisk)
    follow a lab namespace of the test's own, and a :class:`lablib.Lab` for it, not
    yet up; on teardown the lab, what runs in its namespace and the namespace go.
``lab_env_tls``
    the same with the API and the boot HTTP server on HTTPS, their certificate and CA
    from ``metalcast tls generate``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from lab_qemu import LookupServer, QemuRun
from lab_ramdisk import FAKE_AGENT, BuiltRamdisk, build
from lablib import Lab, free_udp_base, remove_lab
from server_process import generate_certificates

from metalcast.lab.diskimage import build_test_image
from metalcast.ramdisk import RamdiskError
from metalcast.ramdisk.build import default_agent_source

QEMU = "qemu-system-x86_64"


@pytest.fixture(scope="session")
def lab_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("LAB_DEB_CACHE")
    return Path(given) if given else tmp_path_factory.mktemp("debs")


@pytest.fixture
def start_qemu(tmp_path: Path) -> Iterator[Callable[[Sequence[str]], QemuRun]]:
    """Start QEMU (TCG, q35, 1 GiB, no display, QMP on a socket) with extra arguments."""
    runs: list[QemuRun] = []
    sockets = Path(tempfile.mkdtemp(prefix="qmp-"))  # short: AF_UNIX paths are limited

    def start(args: Sequence[str]) -> QemuRun:
        serial = tmp_path / f"serial-{len(runs)}.log"
        qmp = sockets / f"{len(runs)}.sock"
        command = [
            QEMU, "-accel", "tcg", "-machine", "q35", "-m", "1024", "-smp", "1",
            "-nodefaults", "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial}", "-qmp", f"unix:{qmp},server=on,wait=off",
            "-no-reboot", *args,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        runs.append(QemuRun(process, serial, qmp))
        return runs[-1]

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
        run.process.wait(30)
        if run.process.stderr is not None:
            run.process.stderr.close()
    shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def lookup_server() -> Iterator[LookupServer]:
    server = LookupServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        with contextlib.suppress(RuntimeError):
            thread.join(10)


@pytest.fixture(scope="session")
def agent_ramdisk(tmp_path_factory: pytest.TempPathFactory, lab_cache: Path) -> BuiltRamdisk:
    """The deploy ramdisk with the real metalcast-agent (skips if it is not there)."""
    try:
        source = default_agent_source()
    except RamdiskError as exc:
        pytest.skip(str(exc))
    return build(tmp_path_factory.mktemp("ramdisk"), lab_cache, source)


@pytest.fixture(scope="session")
def fake_agent_ramdisk(tmp_path_factory: pytest.TempPathFactory, lab_cache: Path) -> BuiltRamdisk:
    """The deploy ramdisk with a stand-in agent that looks up once and exits 3."""
    return build(tmp_path_factory.mktemp("fake-ramdisk"), lab_cache, FAKE_AGENT)


@pytest.fixture(scope="session")
def lab_disk_image(tmp_path_factory: pytest.TempPathFactory, lab_cache: Path) -> Path:
    """The lab's bootable raw test disk image."""
    return build_test_image(tmp_path_factory.mktemp("disk") / "test.raw", cache_dir=lab_cache)


def _lab_env(
    start: Callable[..., Any],
    ramdisk: BuiltRamdisk,
    tmp_path: Path,
    *,
    tls: dict[str, str],
    cacert: Path | None,
    extra: dict[str, str] | None = None,
) -> Iterator[Lab]:
    netns = f"mce2e{os.getpid() % 100000}"
    images = tmp_path / "images"  # deploys read local images from here only
    images.mkdir()
    env = {
        "METALCAST_IMAGES__FILE_ROOTS": str(images),
        "METALCAST_BOOT__ENABLED": "true",
        "METALCAST_BOOT__NETNS": netns,
        "METALCAST_BOOT__KERNEL": str(ramdisk.kernel),
        "METALCAST_BOOT__RAMDISK": str(ramdisk.initramfs),
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
        # the machines' sensors reach /metrics within seconds (test_lab_deploy_e2e)
        "METALCAST_SENSORS__INTERVAL": "2",
        **tls,
        **(extra or {}),
    }
    with start(env=env, cacert=cacert) as server:
        lab = Lab(
            server.url, tmp_path / "lab", netns, free_udp_base(1),
            state_dir=server.state_dir, images_dir=images, server_logs=server.logs,
            cacert=cacert,
        )  # fmt: skip
        try:
            yield lab
        finally:
            remove_lab(lab.lab_dir, netns, cacert=cacert)


@pytest.fixture
def lab_env(
    start_metalcast_server: Callable[..., Any], agent_ramdisk: BuiltRamdisk, tmp_path: Path
) -> Iterator[Lab]:
    """A server whose boot services follow a lab namespace of this test's own."""
    yield from _lab_env(start_metalcast_server, agent_ramdisk, tmp_path, tls={}, cacert=None)


@pytest.fixture
def lab_env_discovery(
    start_metalcast_server: Callable[..., Any], agent_ramdisk: BuiltRamdisk, tmp_path: Path
) -> Iterator[Lab]:
    """Like ``lab_env``, with auto-discovery on (``boot.discovery``): discovered
    machines end ``manageable`` with the lab BMCs' user name (the password: a rule)."""
    extra = {
        "METALCAST_BOOT__DISCOVERY": "true",
        "METALCAST_DISCOVERY__STATE": "manageable",
        "METALCAST_DISCOVERY__BMC_USERNAME": "admin",
    }
    yield from _lab_env(
        start_metalcast_server, agent_ramdisk, tmp_path, tls={}, cacert=None, extra=extra
    )


@pytest.fixture
def lab_env_tls(
    start_metalcast_server: Callable[..., Any], agent_ramdisk: BuiltRamdisk, tmp_path: Path
) -> Iterator[Lab]:
    """Like ``lab_env``, with HTTPS from ``metalcast tls generate``."""
    pki = generate_certificates(tmp_path / "pki")
    tls = {
        "METALCAST_API__TLS_CERT_FILE": str(pki / "server.pem"),
        "METALCAST_API__TLS_KEY_FILE": str(pki / "server.key"),
        "METALCAST_BOOT__TLS_CA_FILE": str(pki / "ca.pem"),
    }
    yield from _lab_env(
        start_metalcast_server, agent_ramdisk, tmp_path, tls=tls, cacert=pki / "ca.pem"
    )
