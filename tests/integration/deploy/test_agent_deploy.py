"""The ``direct`` deploy end to end without QEMU: a real ``metalcast server``, a
virtual IPMI BMC, and the real ``metalcast-agent`` as a process on a machine made of
files (a fake /sys and a sparse file as its disk).

The agent talks to a boot HTTP server on loopback (as it would on the provisioning
network): it finds its node by MAC through the server's relay, gets its token, takes
its commands from heartbeat replies, downloads the image and the config drive from
the boot server with signed URLs and its token, and reports back; the conductor never
connects to it.  provide (automated
cleaning through the agent) → deploy (image and config drive written by the agent,
boot device disk, reboot) → active → undeploy (disk metadata erased) → available."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "agent"))
from agent_machine import FakeMachine, write
from prometheus_client.parser import text_string_to_metric_families
from server_process import generate_certificates

from metalcast.agent_downloads import PURPOSE, UrlSigner
from metalcast.boot import netns
from metalcast.boot.http import BootHttpServer, create_app
from metalcast.lab.bmc.fleet import Fleet, simulated_machines
from metalcast.lab.machine import BootDevice, Power
from metalcast.secrecy import SecretBox

MIB = 2**20
MAC = "52:54:00:6d:63:f0"
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
SERVER_ENV = {
    # boot services on, in a namespace that does not exist: node boot files are
    # written, no dnsmasq runs (the agent reaches the API directly here)
    "METALCAST_BOOT__ENABLED": "true",
    "METALCAST_BOOT__NETNS": "mc-none-test",
    "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    "METALCAST_CONDUCTOR__BMC_POLL_INTERVAL": "0.1",
    # the BMC's sensors in /metrics soon after the deploy (test_provide_deploy_...)
    "METALCAST_SENSORS__INTERVAL": "0.5",
}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Where the server may read local images from (images.file_roots)."""
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def server(start_metalcast_server: Callable[..., Any], images: Path) -> Iterator[Any]:
    env = {**SERVER_ENV, "METALCAST_IMAGES__FILE_ROOTS": str(images)}
    with start_metalcast_server(env=env) as running:
        yield running


@pytest.fixture
def boot_url(server: Any) -> Iterator[str]:
    """A boot HTTP server on loopback for the server's files, with its signing key:
    what the agent reaches on a provisioning network."""
    box = SecretBox.from_file(server.state_dir / "secret.key")
    app = create_app(
        boot_dir=server.state_dir / "boot" / "files",
        images_dir=server.state_dir / "images",
        api_url=server.url,
        signer=UrlSigner(box.derive_key(PURPOSE)),
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    boot = BootHttpServer(app, host="127.0.0.1", port=port)
    boot.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        boot.stop()


@pytest.fixture
def bmc() -> Iterator[Fleet]:
    with Fleet(simulated_machines(1, prefix="agent"), ipmi=True) as fleet:
        yield fleet


#: how tests reach a server over HTTPS: its URL -> the CA to verify it with
TRUST: dict[str, ssl.SSLContext] = {}


def api(server: Any, method: str, path: str, body: Any = None) -> Any:
    verify = TRUST.get(server.url, True)
    response = httpx.request(
        method, f"{server.url}{path}", json=body, headers=HEADERS, verify=verify
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def node(server: Any, ident: str) -> dict[str, Any]:
    shown: dict[str, Any] = api(server, "GET", f"/v1/nodes/{ident}")
    return shown


def wait_for_state(server: Any, ident: str, state: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = node(server, ident)
        if shown["provision_state"] == state and not shown["target_provision_state"]:
            return shown
        if shown["provision_state"].endswith("failed"):
            raise AssertionError(f"{ident}: {shown['provision_state']}: {shown['last_error']}")
        time.sleep(0.2)
    raise AssertionError(f"{ident} not {state} after {timeout}s: {node(server, ident)}")


def start_agent(api_url: str, machine: FakeMachine, log: Path) -> subprocess.Popen[bytes]:
    write(
        machine.env.proc_root / "cmdline",
        f"metalcast.api={api_url} BOOTIF=01-{MAC.replace(':', '-')} metalcast.heartbeat=0.2\n",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "metalcast_agent",
                f"--sys-root={machine.env.sys_root}", f"--proc-root={machine.env.proc_root}",
                f"--dev-root={machine.env.dev_root}", "--power-action=exit",
            ],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def image(directory: Path) -> tuple[Path, str]:
    """A 16 MiB whole-disk image: a GPT, one partition with bytes, holes elsewhere."""
    path = directory / "image.raw"
    with path.open("wb") as handle:
        handle.truncate(16 * MIB)
    subprocess.run(
        ["sfdisk", "-q", str(path)], input=b"label: gpt\nstart=2048, size=8MiB\n", check=True
    )
    with path.open("r+b") as handle:
        handle.seek(MIB)
        handle.write(b"metalcast root filesystem " * 4000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def scrape(server: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``curl /metrics``, parsed by prometheus_client's parser."""
    response = httpx.get(f"{server.url}/metrics", verify=TRUST.get(server.url, True))
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def check_deploy_metrics(server: Any, uuid: str, *, image_bytes: int) -> None:
    """The issue's "done when": the deploy shows in the transition and agent-phase
    metrics, and the lab BMC's sensor readings in /metrics (read within seconds)."""

    def got(name: str, **labels: str) -> float:
        return scrape(server).get((name, frozenset(labels.items())), 0.0)

    steps = [
        ("deploy", "available", "deploying"),
        ("wait", "deploying", "wait call-back"),
        ("resume", "wait call-back", "deploying"),
        ("done", "deploying", "active"),
    ]
    for event, old, new in steps:
        labels = {"event": event, "from_state": old, "to_state": new}
        assert got("metalcast_provision_transitions_total", **labels) >= 1, labels
    for state in ("deploying", "wait call-back", "clean wait"):
        assert got("metalcast_provision_state_duration_seconds_count", state=state) >= 1, state
    deployed = {"verb": "deploy", "result": "succeeded"}
    assert got("metalcast_provision_verb_duration_seconds_count", **deployed) == 1
    for command in ("erase_metadata", "write_image", "write_configdrive"):
        done = {"command": command, "status": "succeeded"}
        assert got("metalcast_agent_commands_total", **done) >= 1, command
    assert got("metalcast_image_write_bytes_total") >= image_bytes
    assert got("metalcast_image_write_rate_bytes_per_second_count") == 1
    sensor = {"node": uuid, "sensor": "CPU Temp"}
    assert wait_until(lambda: got("metalcast_sensor_temperature_celsius", **sensor) > 0)


def wait_until(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_provide_deploy_undeploy_through_the_agent(
    server: Any, bmc: Fleet, boot_url: str, images: Path, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    disk = machine.add_disk("vda", 128 * MIB, serial="LAB0001")
    disk.write_bytes(os.urandom(MIB) + bytes(126 * MIB) + os.urandom(MIB))  # an old install
    machine.add_nic("eth0", MAC)
    served = bmc.bmcs[0]
    created = api(server, "POST", "/v1/nodes", {
        "name": "agent-0", "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })  # fmt: skip
    uuid = created["uuid"]
    assert (created["boot_interface"], created["deploy_interface"]) == ("ipxe", "direct")
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"})
    wait_for_state(server, uuid, "manageable")

    agent = start_agent(boot_url, machine, tmp_path / "agent.log")
    try:
        # provide: automated cleaning boots the agent, which erases the old install
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "provide"})
        wait_for_state(server, uuid, "available")
        boots = bmc.machines[0].boots  # type: ignore[attr-defined]
        assert [b.device for b in boots] == [BootDevice.PXE]
        assert disk.read_bytes()[:MIB] == bytes(MIB)
        assert bmc.machines[0].power() is Power.OFF

        # deploy: the agent writes the image and a config drive
        path, checksum = image(images)
        api(server, "PATCH", f"/v1/nodes/{uuid}", [
            {"op": "add", "path": "/instance_info/image_source", "value": path.as_uri()},
            {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
            {"op": "add", "path": "/properties/root_device", "value": {"serial": "LAB0001"}},
        ])  # fmt: skip
        drive = {"meta_data": {"hostname": "agent-0.lab"}, "user_data": "#cloud-config\n"}
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision",
            {"target": "active", "configdrive": drive})  # fmt: skip
        active = wait_for_state(server, uuid, "active")
        content = disk.read_bytes()
        written = path.read_bytes()
        assert content[MIB : 9 * MIB] == written[MIB : 9 * MIB]
        assert b"config-2" in content[16 * MIB :]  # the config drive's ISO label
        assert bmc.machines[0].boot_override().device is BootDevice.DISK
        assert bmc.machines[0].power() is Power.ON
        assert active["power_state"] == "power on"
        assert "agent_commands" not in active["driver_internal_info"]
        events = [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]
        assert any(e.startswith("Image ready: ") for e in events), events
        assert any(e.startswith("Agent: write_image succeeded (") for e in events), events
        assert any(e.startswith("Instance written; rebooted from its disk in ") for e in events)
        assert not list((server.state_dir / "boot").rglob(f"*{uuid}*"))  # boot files gone
        drives = server.state_dir / "images" / "configdrive"
        assert list(drives.rglob("*")) == []  # the user data is gone too

        check_deploy_metrics(server, uuid, image_bytes=len(written))

        # undeploy: cleaning erases the disk's metadata again
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "deleted"})
        wait_for_state(server, uuid, "available")
        assert disk.read_bytes()[:MIB] == bytes(MIB)
    finally:
        agent.kill()
        agent.wait()
    log = (tmp_path / "agent.log").read_text()
    assert "erase_metadata" in log and "write_image" in log


def test_a_checksum_mismatch_fails_the_deploy_with_the_agents_message(
    server: Any, bmc: Fleet, boot_url: str, images: Path, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    machine.add_disk("vda", 64 * MIB)
    machine.add_nic("eth0", MAC)
    served = bmc.bmcs[0]
    uuid = api(server, "POST", "/v1/nodes", {
        "name": "agent-bad", "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })["uuid"]  # fmt: skip
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"})
    wait_for_state(server, uuid, "manageable")
    path, actual = image(images)
    api(server, "PATCH", f"/v1/nodes/{uuid}", [
        {"op": "add", "path": "/instance_info/image_source", "value": path.as_uri()},
        {"op": "add", "path": "/instance_info/image_checksum", "value": "0" * 64},
    ])  # fmt: skip
    response = httpx.put(
        f"{server.url}/v1/nodes/{uuid}/states/provision",
        json={"target": "active"}, headers=HEADERS,
    )  # fmt: skip
    assert response.status_code == 400  # manageable: deploy needs available first
    settings = {"target": "provide"}
    agent = start_agent(boot_url, machine, tmp_path / "agent.log")
    try:
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", settings)
        wait_for_state(server, uuid, "available")
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "active"})
        deadline = time.monotonic() + 60
        while node(server, uuid)["provision_state"] != "deploy failed":
            assert time.monotonic() < deadline, node(server, uuid)
            time.sleep(0.2)
    finally:
        agent.kill()
        agent.wait()
    failed = node(server, uuid)
    # the conductor verifies the image before the agent ever sees it
    assert "Checksum mismatch" in failed["last_error"], failed["last_error"]
    assert actual not in failed["last_error"]  # what it hashes to is not told
    assert "agent_commands" not in failed["driver_internal_info"]


# -- over TLS: the agent in a provisioning network of its own, as after a network boot --

BOOT_ADDRESS = "192.168.77.1"
NODE_ADDRESS = "192.168.77.60"


@pytest.fixture
def provisioning_net() -> Iterator[tuple[str, str]]:
    """A server namespace with bridge br0 (the boot services' interface) and a node
    namespace joined to it, both deleted on teardown."""
    missing = [tool for tool in ("ip", "dnsmasq", "busybox", "cpio") if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root, ip, dnsmasq, busybox and cpio (missing: {missing})")
    suffix = uuidlib.uuid4().hex[:8]
    server_ns, node_ns = f"mcdep-s-{suffix}", f"mcdep-n-{suffix}"
    try:
        netns.create_netns(server_ns)
        netns.create_netns(node_ns)
        netns.add_bridge(server_ns, "br0", cidrs=(f"{BOOT_ADDRESS}/24",))
        netns.add_veth(server_ns, "vs0", peer_netns=node_ns, peer_name="vc0", bridge="br0")
        netns.add_address(node_ns, "vc0", cidr=f"{NODE_ADDRESS}/24")
        yield server_ns, node_ns
    finally:
        netns.delete_netns(node_ns)
        netns.delete_netns(server_ns)


@pytest.fixture
def tls_server(
    start_metalcast_server: Callable[..., Any],
    provisioning_net: tuple[str, str],
    images: Path,
    tmp_path: Path,
) -> Iterator[Any]:
    """A server over HTTPS whose boot services (HTTPS too) run on the provisioning net."""
    pki = generate_certificates(tmp_path / "pki")
    env = {
        **SERVER_ENV,
        "METALCAST_IMAGES__FILE_ROOTS": str(images),
        "METALCAST_API__TLS_CERT_FILE": str(pki / "server.pem"),
        "METALCAST_API__TLS_KEY_FILE": str(pki / "server.key"),
        "METALCAST_BOOT__TLS_CA_FILE": str(pki / "ca.pem"),
        "METALCAST_BOOT__NETNS": provisioning_net[0],
        "METALCAST_BOOT__INTERFACE": "br0",
        "METALCAST_BOOT__ADDRESS": BOOT_ADDRESS,
        "METALCAST_BOOT__IGNORE_UNKNOWN": "true",
        "METALCAST_BOOT__IPV6_RA": "false",
    }
    with start_metalcast_server(env=env, cacert=pki / "ca.pem") as running:
        TRUST[running.url] = ssl.create_default_context(cafile=pki / "ca.pem")
        try:
            yield running
        finally:
            TRUST.pop(running.url)


def boot_like_ipxe(server: Any, uuid: str, node_ns: str, root: Path) -> tuple[str, Path]:
    """What iPXE would do with the node's script: the kernel command line (BOOTIF
    expanded), and the CA initrd fetched over the provisioning network and unpacked
    under ``root``, as the kernel would; (command line, the CA's path)."""
    script = server.state_dir / "boot" / "files" / "nodes" / uuid / "boot.ipxe"
    deadline = time.monotonic() + 30
    while not script.exists():
        assert time.monotonic() < deadline, f"no boot script at {script}"
        time.sleep(0.1)
    lines = script.read_text().splitlines()
    kernel = next(line for line in lines if line.startswith("kernel "))
    params = kernel.split()[2:-3]  # drop "kernel URL" and "|| goto failed"
    cmdline = " ".join(params).replace("${netX/mac:hexhyp}", MAC.replace(":", "-"))
    ca_line = next(line for line in lines if "tls-ca.cpio.gz" in line and line.startswith("initrd"))
    fetched = root / "tls-ca.cpio.gz"
    root.mkdir(parents=True, exist_ok=True)
    wget = subprocess.run(
        ["ip", "netns", "exec", node_ns, "busybox", "wget", "-q", "-O", str(fetched),
         ca_line.split()[3]],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert wget.returncode == 0, wget.stderr
    archive = subprocess.run(["gzip", "-dc", str(fetched)], capture_output=True, check=True)
    subprocess.run(["cpio", "-id", "--quiet"], input=archive.stdout, cwd=root, check=True)
    return cmdline, root / "etc" / "metalcast" / "ca.pem"


def start_agent_in(
    node_ns: str, machine: FakeMachine, log: Path, *, cmdline: str, cacert: Path
) -> subprocess.Popen[bytes]:
    write(machine.env.proc_root / "cmdline", f"{cmdline} metalcast.heartbeat=0.2\n")
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                "ip", "netns", "exec", node_ns, sys.executable, "-m", "metalcast_agent",
                f"--sys-root={machine.env.sys_root}", f"--proc-root={machine.env.proc_root}",
                f"--dev-root={machine.env.dev_root}", "--power-action=exit",
                f"--cacert={cacert}",
            ],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def enrol(server: Any, bmc: Fleet, name: str) -> str:
    served = bmc.bmcs[0]
    uuid: str = api(server, "POST", "/v1/nodes", {
        "name": name, "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })["uuid"]  # fmt: skip
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"})
    wait_for_state(server, uuid, "manageable")
    return uuid


def test_over_tls_the_agent_verifies_the_boot_server_and_deploys(
    tls_server: Any, provisioning_net: tuple[str, str], bmc: Fleet, images: Path, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    disk = machine.add_disk("vda", 128 * MIB, serial="LAB0001")
    disk.write_bytes(os.urandom(MIB) + bytes(126 * MIB) + os.urandom(MIB))
    machine.add_nic("eth0", MAC)
    uuid = enrol(tls_server, bmc, "agent-tls")

    api(tls_server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "provide"})
    cmdline, cacert = boot_like_ipxe(tls_server, uuid, provisioning_net[1], tmp_path / "root")
    assert f"metalcast.api=https://{BOOT_ADDRESS}:8443 " in cmdline
    assert cacert.read_bytes() == (tmp_path / "pki" / "ca.pem").read_bytes()
    log = tmp_path / "agent.log"
    agent = start_agent_in(provisioning_net[1], machine, log, cmdline=cmdline, cacert=cacert)
    try:
        wait_for_state(tls_server, uuid, "available")
        assert disk.read_bytes()[:MIB] == bytes(MIB)

        path, checksum = image(images)
        api(tls_server, "PATCH", f"/v1/nodes/{uuid}", [
            {"op": "add", "path": "/instance_info/image_source", "value": path.as_uri()},
            {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
        ])  # fmt: skip
        drive = {"meta_data": {"hostname": "agent-tls.lab"}, "user_data": "#cloud-config\n"}
        api(tls_server, "PUT", f"/v1/nodes/{uuid}/states/provision",
            {"target": "active", "configdrive": drive})  # fmt: skip
        wait_for_state(tls_server, uuid, "active")
        content = disk.read_bytes()
        assert content[MIB : 9 * MIB] == path.read_bytes()[MIB : 9 * MIB]
        assert b"config-2" in content[16 * MIB :]
    finally:
        agent.kill()
        agent.wait()
    text = log.read_text()
    assert f"metalcast API https://{BOOT_ADDRESS}:8443, verified with {cacert}" in text
    assert "write_image" in text and "write_configdrive" in text
    # from its namespace the node reaches only the boot server, whose plain port
    # answers 403 to anything but /boot/: these came over HTTPS
    logs = tls_server.logs()
    assert re.search(rf"{NODE_ADDRESS} GET /v1/lookup 200", logs), logs[-3000:]
    assert re.search(rf"{NODE_ADDRESS} GET /images/\S+ 200", logs), logs[-3000:]
    assert re.search(rf"{NODE_ADDRESS} POST /v1/heartbeat/{uuid} 202", logs), logs[-3000:]


def test_over_tls_an_agent_trusting_another_ca_never_talks(
    tls_server: Any, provisioning_net: tuple[str, str], bmc: Fleet, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    machine.add_disk("vda", 64 * MIB)
    machine.add_nic("eth0", MAC)
    uuid = enrol(tls_server, bmc, "agent-stranger")
    stranger = generate_certificates(tmp_path / "stranger") / "ca.pem"

    api(tls_server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "provide"})
    cmdline, _ = boot_like_ipxe(tls_server, uuid, provisioning_net[1], tmp_path / "root")
    log = tmp_path / "agent.log"
    agent = start_agent_in(provisioning_net[1], machine, log, cmdline=cmdline, cacert=stranger)
    try:
        deadline = time.monotonic() + 60
        while "CERTIFICATE_VERIFY_FAILED" not in log.read_text():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        agent.kill()
        agent.wait()
    text = log.read_text()
    assert "Lookup failed: cannot reach" in text, text
    assert "lookup: this is node" not in text
    shown = node(tls_server, uuid)
    assert shown["provision_state"] == "clean wait"
    assert "agent_url" not in shown["driver_internal_info"], shown["driver_internal_info"]
