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
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "agent"))
from agent_machine import FakeMachine, write

from metalcast.agent_downloads import PURPOSE, UrlSigner
from metalcast.boot.http import BootHttpServer, create_app
from metalcast.lab.bmc.fleet import Fleet, simulated_machines
from metalcast.lab.machine import BootDevice, Power
from metalcast.secrecy import SecretBox

MIB = 2**20
MAC = "52:54:00:6d:63:f0"
HEADERS = {"X-OpenStack-Ironic-API-Version": "1.51"}
SERVER_ENV = {
    # boot services on, in a namespace that does not exist: node boot files are
    # written, no dnsmasq runs (the agent reaches the API directly here)
    "METALCAST_BOOT__ENABLED": "true",
    "METALCAST_BOOT__NETNS": "mc-none-test",
    "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    "METALCAST_CONDUCTOR__BMC_POLL_INTERVAL": "0.1",
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


def api(server: Any, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.url}{path}", json=body, headers=HEADERS)
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
