"""The boot services on a real (namespaced) network, with real clients.

busybox ``udhcpc``, ``tftp`` and ``wget`` and ``curl`` run in the client namespace
against the real dnsmasq and boot HTTP server in the server namespace; the relay
reaches a stand-in API on 127.0.0.1 in the test's own namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from boot_netlab import (
    CLIENT_ADDRESS,
    CLIENT_MAC,
    HTTP_PORT,
    SERVER_ADDRESS,
    SIGNER,
    BootLab,
    StartServices,
    StubApi,
    boot_settings,
    wait_for,
)

from metalcast.agent_downloads import TOKEN_HEADER, token_hash
from metalcast.boot import netns
from metalcast.boot.dnsmasq import command, render_config
from metalcast.boot.errors import BootHttpError, DnsmasqError
from metalcast.boot.ipxe import BootProtocol, NodeBoot, NodePort
from metalcast.boot.layout import BootLayout
from metalcast.boot.service import BootServices

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
FIXED = "192.168.77.50"
BASE = f"http://{SERVER_ADDRESS}:{HTTP_PORT}"


def client_node(**changes: object) -> NodeBoot:
    ports = (NodePort(CLIENT_MAC, IPv4Address(FIXED)),)
    return NodeBoot(NODE, ports, **changes)  # type: ignore[arg-type]


def dnsmasq_log(services: BootServices) -> str:
    return services.layout.dnsmasq_log.read_text(errors="replace")


def test_dhcp_follows_host_files_without_a_restart(
    boot_lab: BootLab, boot_services: BootServices
) -> None:
    pid = boot_services.dnsmasq.pid
    assert pid is not None

    # ignore_unknown: a MAC without host entries gets no answer at all
    assert boot_lab.udhcpc() is None
    assert f"DHCPDISCOVER(br0) {CLIENT_MAC} ignored" in dnsmasq_log(boot_services)

    boot_services.prepare_node(client_node())
    assert boot_lab.udhcpc(tries=5) == FIXED
    assert f"inotify: {boot_services.layout.hosts_dir / NODE} new or modified" in dnsmasq_log(
        boot_services
    )
    assert boot_services.dnsmasq.pid == pid

    # after the deploy the entries go: dnsmasq forgets them only by a restart
    # (SIGHUP would crash dnsmasq 2.90 now that a tagged entry served a lease)
    boot_services.clean_node(NODE)
    assert boot_lab.udhcpc() is None
    assert boot_services.dnsmasq.pid not in (None, pid)
    health = boot_services.health().dnsmasq
    assert (health.restarts, health.last_exit) == (0, None)  # asked for, not a crash


def test_tftp_serves_ipxe_pxelinux_and_a_tftp_node_its_files(
    boot_lab: BootLab, boot_services: BootServices, state_dir: Path
) -> None:
    boot_lab.give_client_an_address()
    boot_services.prepare_node(client_node(protocol=BootProtocol.TFTP))

    def fetch(name: str) -> bytes:
        local = boot_lab.work / name.replace("/", "_")
        done = boot_lab.run_client(
            "busybox", "tftp", "-g", "-b", "1468", "-r", name, "-l", str(local), SERVER_ADDRESS
        )
        assert done.returncode == 0, done.stderr
        return local.read_bytes()

    assert fetch("undionly.kpxe") == Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    script = fetch("nodes/52-54-00-b0-07-01.ipxe").decode()
    assert f"kernel tftp://{SERVER_ADDRESS}/deploy.kernel initrd=deploy.initramfs" in script
    assert fetch("deploy.kernel") == (state_dir / "ramdisk" / "deploy.kernel").read_bytes()
    generic = fetch("boot-tftp.ipxe").decode()
    assert f"tftp://{SERVER_ADDRESS}/nodes/${{netX/mac:hexhyp}}.ipxe" in generic
    # BIOS machines of TFTP nodes boot PXELINUX: its binary and the node's config
    assert fetch("pxelinux.0") == Path("/usr/lib/PXELINUX/pxelinux.0").read_bytes()
    assert fetch("ldlinux.c32").startswith(b"\x7fELF")
    config = fetch("pxelinux.cfg/01-52-54-00-b0-07-01").decode()
    assert "  KERNEL deploy.kernel\n  APPEND initrd=deploy.initramfs " in config
    assert "LOCALBOOT 0" in fetch("pxelinux.cfg/default").decode()


def test_http_serves_scripts_and_image_ranges_and_relays_to_the_api(
    boot_lab: BootLab, boot_services: BootServices, stub_api: StubApi
) -> None:
    boot_lab.give_client_an_address()
    boot_services.prepare_node(client_node())
    image = os.urandom(3 * 1024 * 1024 + 17)
    boot_services.layout.images_dir.mkdir(parents=True, exist_ok=True)
    (boot_services.layout.images_dir / "disk.raw").write_bytes(image)

    wget = boot_lab.run_client(
        "busybox", "wget", "-q", "-O", "-", f"{BASE}/boot/nodes/52-54-00-b0-07-01.ipxe"
    )
    assert wget.returncode == 0, wget.stderr
    assert f"metalcast.api={BASE} BOOTIF=01-${{netX/mac:hexhyp}} ipa-api-url={BASE}" in wget.stdout

    part = boot_lab.work / "part"
    signed = SIGNER.sign(
        "/images/disk.raw", node=NODE, token_sha256=token_hash("t0ken"), expires=2**33
    )
    curl = boot_lab.run_client(
        "curl", "-sS", "-o", str(part), "-w", "%{http_code}", "-r", "1048576-2097151",
        "-H", f"{TOKEN_HEADER}: t0ken", f"{BASE}{signed}",
    )  # fmt: skip
    assert curl.stdout == "206", curl.stderr
    assert part.read_bytes() == image[1048576:2097152]
    unsigned = boot_lab.run_client(
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{BASE}/images/disk.raw"
    )  # fmt: skip
    assert unsigned.stdout == "403"

    lookup = boot_lab.run_client(
        "curl", "-sS", "-H", "X-OpenStack-Ironic-API-Version: 1.22",
        f"{BASE}/v1/lookup?addresses={CLIENT_MAC}",
    )  # fmt: skip
    assert json.loads(lookup.stdout)["node"] == {"uuid": "stub"}, lookup.stderr
    heartbeat = boot_lab.run_client(
        "curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null",
        "-H", "Content-Type: application/json", "--data", '{"agent_token": "t"}',
        f"{BASE}/v1/heartbeat/{NODE}",
    )  # fmt: skip
    assert heartbeat.stdout == "202"
    got_lookup, got_heartbeat = stub_api.requests
    assert got_lookup["path"] == f"/v1/lookup?addresses={CLIENT_MAC}"
    headers = got_lookup["headers"]
    assert isinstance(headers, dict)
    assert headers["x-forwarded-for"] == CLIENT_ADDRESS
    assert headers["x-openstack-ironic-api-version"] == "1.22"
    assert got_heartbeat == {
        "method": "POST",
        "path": f"/v1/heartbeat/{NODE}",
        "body": '{"agent_token": "t"}',
    }


def test_the_http_server_listens_only_inside_the_namespace(
    boot_lab: BootLab, boot_services: BootServices
) -> None:
    def listening(*prefix: str) -> str:
        argv = [*prefix, "ss", "-Hltn"]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    address = f"{SERVER_ADDRESS}:{HTTP_PORT}"
    assert address in listening("ip", "netns", "exec", boot_lab.server_ns)
    assert address not in listening()


def test_supervisor_restarts_a_killed_dnsmasq(
    boot_lab: BootLab, boot_services: BootServices
) -> None:
    boot_services.prepare_node(client_node())
    pid = boot_services.dnsmasq.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        return boot_services.dnsmasq.pid not in (None, pid)

    wait_for(restarted, timeout=15, what="dnsmasq to be restarted")
    health = boot_services.health()
    assert health.dnsmasq.restarts == 1
    assert health.dnsmasq.last_exit is not None and "SIGKILL" in health.dnsmasq.last_exit
    # the new dnsmasq read the host entries written before it started
    assert boot_lab.udhcpc(tries=5) == FIXED


def test_stop_ends_dnsmasq_and_start_begins_again(
    boot_lab: BootLab, boot_services: BootServices
) -> None:
    pid = boot_services.dnsmasq.pid
    assert pid is not None
    boot_services.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert "exiting on receipt of SIGTERM" in dnsmasq_log(boot_services)
    assert not boot_services.health().healthy

    boot_services.start()
    assert boot_services.health().healthy
    boot_lab.give_client_an_address()
    wget = boot_lab.run_client("busybox", "wget", "-q", "-O", "-", f"{BASE}/boot/boot.ipxe")
    assert wget.stdout.startswith("#!ipxe")


def test_a_second_dhcp_server_on_the_interface_is_refused(
    boot_services: BootServices, start_services: StartServices
) -> None:
    with pytest.raises(DnsmasqError, match=r"another DHCP server already listens on br0"):
        start_services(http_port=HTTP_PORT + 1)
    assert boot_services.health().healthy


def test_dnsmasq_start_failure_says_why(start_services: StartServices) -> None:
    with pytest.raises(DnsmasqError) as caught:
        start_services(interface="nosuch0")
    message = str(caught.value)
    assert message.startswith("dnsmasq exited at start (exit 2: network problem:")
    assert "unknown interface nosuch0" in message
    assert "does interface nosuch0 in network namespace mcboot-s-" in message


def test_dnsmasq_does_not_outlive_its_supervisor(boot_lab: BootLab, state_dir: Path) -> None:
    settings = boot_settings(boot_lab)
    layout = BootLayout.from_settings(settings, state_dir=state_dir)
    layout.make_dirs()
    layout.dnsmasq_conf.write_text(render_config(settings, layout, user="root", group="root"))
    argv = list(command(str(layout.dnsmasq_conf), netns=boot_lab.server_ns))
    program = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from metalcast.boot.dnsmasq_process import Dnsmasq\n"
        f"d = Dnsmasq({argv!r}, log_file=Path({str(layout.dnsmasq_log)!r}), where='br0')\n"
        "d.start(); print(d.pid, flush=True); time.sleep(300)\n"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True
    )
    try:
        assert supervisor.stdout is not None
        pid = int(supervisor.stdout.readline())
        assert Path(f"/proc/{pid}").exists()
        supervisor.kill()  # SIGKILL: no clean-up code runs
        supervisor.wait()

        def gone() -> bool:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            except FileNotFoundError:
                return True
            return state in ("Z", "X")

        wait_for(gone, timeout=10, what=f"dnsmasq {pid} to die with its supervisor")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_concurrent_restarts_share_a_dnsmasq(boot_services: BootServices) -> None:
    log = boot_services.layout.dnsmasq_log
    offset = log.stat().st_size
    old = boot_services.dnsmasq.pid
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(boot_services.dnsmasq.restart()))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 6
    assert boot_services.dnsmasq.pid not in (None, old)
    started = log.read_bytes()[offset:].count(b"]: started, version")
    assert 1 <= started <= 3  # six requests, at most a few restarts


def test_a_missing_address_is_explained(start_services: StartServices) -> None:
    with pytest.raises(DnsmasqError, match=r"is boot.address configured on br0 in network"):
        start_services(address="192.168.99.1")


def test_a_failed_http_start_leaves_nothing_running(
    boot_lab: BootLab, stub_api: StubApi, state_dir: Path
) -> None:
    services = BootServices(
        boot_settings(boot_lab), state_dir=state_dir, api_url=stub_api.url, signer=SIGNER
    )
    with netns.socket_in_netns(boot_lab.server_ns, SERVER_ADDRESS, HTTP_PORT):
        try:
            with pytest.raises(BootHttpError, match=r"cannot listen on http://192.168.77.1:8080"):
                services.start()
        finally:
            services.stop()
    log = dnsmasq_log(services)
    assert "started, version" in log and "exiting on receipt of SIGTERM" in log
    assert services.dnsmasq.pid is None
