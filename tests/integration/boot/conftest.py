"""A provisioning network of its own for each boot test, and real clients on it.

``boot_lab``
    two fresh, uniquely named network namespaces: the *server* one with a bridge
    ``br0`` (192.168.77.1/24, fd77::1/64) and the *client* one, joined by a veth
    pair (``vs0`` on the bridge, ``vc0`` with MAC :data:`CLIENT_MAC` in the client
    namespace).  Both are deleted on teardown, whatever happened.
``stub_api``
    a stand-in for metalcast's API on 127.0.0.1 in the test's own namespace; it
    records what reaches it.
``boot_services``
    :class:`BootServices` on ``br0`` of the lab, relaying to ``stub_api``, started;
    stopped on teardown (dnsmasq is stopped by its PID).

Everything here needs root (namespaces, dnsmasq on port 67) and busybox.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from boot_netlab import (
    CLIENT_MAC,
    SERVER_ADDRESS,
    SIGNER,
    TOOLS,
    BootLab,
    StartServices,
    StubApi,
    boot_settings,
    stub_handler,
)

from metalcast.boot import netns
from metalcast.boot.service import BootServices


@pytest.fixture
def boot_lab(tmp_path: Path) -> Iterator[BootLab]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(TOOLS)} (missing: {', '.join(missing)})")
    suffix = uuid.uuid4().hex[:8]
    lab = BootLab(f"mcboot-s-{suffix}", f"mcboot-c-{suffix}", tmp_path)
    try:
        netns.create_netns(lab.server_ns)
        netns.create_netns(lab.client_ns)
        netns.add_bridge(lab.server_ns, "br0", cidrs=(f"{SERVER_ADDRESS}/24", "fd77::1/64"))
        netns.add_veth(
            lab.server_ns, "vs0",
            peer_netns=lab.client_ns, peer_name="vc0", bridge="br0", peer_mac=CLIENT_MAC,
        )  # fmt: skip
        yield lab
    finally:
        netns.delete_netns(lab.client_ns)
        netns.delete_netns(lab.server_ns)


@pytest.fixture
def stub_api() -> Iterator[StubApi]:
    requests: list[dict[str, object]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(requests))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StubApi(f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory with a (fake) deploy kernel and ramdisk."""
    state = tmp_path / "state"
    ramdisk = state / "ramdisk"
    ramdisk.mkdir(parents=True)
    (ramdisk / "deploy.kernel").write_bytes(os.urandom(200_000))
    (ramdisk / "deploy.initramfs").write_bytes(os.urandom(300_000))
    return state


@pytest.fixture
def start_services(
    boot_lab: BootLab, stub_api: StubApi, state_dir: Path
) -> Iterator[StartServices]:
    """``start_services(**settings)``: started BootServices on the lab, all stopped
    on teardown."""
    started: list[BootServices] = []

    def start(**changes: object) -> BootServices:
        services = BootServices(
            boot_settings(boot_lab, **changes),
            state_dir=state_dir,
            api_url=stub_api.url,
            signer=SIGNER,
        )
        started.append(services)
        services.start()
        return services

    try:
        yield start
    finally:
        for services in reversed(started):
            services.stop()


@pytest.fixture
def boot_services(start_services: StartServices) -> BootServices:
    return start_services(ignore_unknown=True)
