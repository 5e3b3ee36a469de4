"""Rescue through the agent without QEMU: a real ``metalcast server``, a virtual IPMI
BMC, and the real ``metalcast-agent`` process on a machine made of files, whose /etc
is a directory and whose SSH server is a command that leaves a mark.

A deployed node is rescued with python-ironicclient's ``baremetal node rescue
--rescue-password``: the ramdisk boots, the agent writes the rescue user with the
password's SHA-512 crypt hash (which verifies) and starts the SSH server, then exits
with status 3 (the ramdisk stays up); the node is in ``rescue``.  The password is
nowhere metalcast writes (API, history, agent log, server logs, database: the
conftest's secret scan), the hash only sealed.  ``unrescue`` boots it from its disk:
``active``.  Before that, a rescue whose agent never answers is aborted from
``rescue wait`` (powered off, the hash gone), and another one times out (the same)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from secret_scan import register

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "agent"))
import test_agent_deploy as deploy_tests
from agent_machine import FakeMachine, write
from test_agent_deploy import MAC, MIB, SERVER_ENV, api, image, node, wait_for_state

from metalcast.lab.bmc.fleet import Fleet
from metalcast.lab.machine import BootDevice, Power
from metalcast.secrecy import shadow

#: the deploy tests' fixtures: a server, its boot HTTP server, a virtual IPMI BMC
server, boot_url, bmc, images = (
    deploy_tests.server,
    deploy_tests.boot_url,
    deploy_tests.bmc,
    deploy_tests.images,
)
PASSWORD = "Rescue-Agent-Pass-7c2d"
register(PASSWORD)


def start_agent(api_url: str, machine: FakeMachine, root: Path) -> subprocess.Popen[bytes]:
    """The agent on ``machine``, its /etc at ``root/etc``; its SSH server is a command
    that appends to ``root/ssh-started``."""
    write(
        machine.env.proc_root / "cmdline",
        f"metalcast.api={api_url} BOOTIF=01-{MAC.replace(':', '-')} metalcast.heartbeat=0.2\n",
    )
    write(root / "etc" / "passwd", "root:x:0:0:root:/root:/bin/sh\n")
    mark = f"{sys.executable} -c \"open('{root}/ssh-started', 'a').write('started')\""
    with (root / "agent.log").open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "metalcast_agent",
                f"--sys-root={machine.env.sys_root}", f"--proc-root={machine.env.proc_root}",
                f"--dev-root={machine.env.dev_root}", f"--etc-root={root / 'etc'}",
                f"--ssh-command={mark}", "--power-action=exit",
            ],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def stop(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.kill()
    agent.wait()


def baremetal(server: Any, *args: str) -> str:
    """python-ironicclient's ``baremetal`` CLI against ``server``."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "baremetal"), *args],
        env={**os.environ, "OS_ENDPOINT": server.url, "OS_AUTH_TYPE": "none"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def deployed_node(
    server: Any, boot_url: str, bmc: Fleet, images: Path, machine: FakeMachine, root: Path
) -> str:
    """An ``ipmi`` node deployed through the agent (cleaning, then the image)."""
    served = bmc.bmcs[0]
    created = api(server, "POST", "/v1/nodes", {
        "name": "rescue-0", "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })  # fmt: skip
    assert created["rescue_interface"] == "agent"  # ipmi's default
    uuid: str = created["uuid"]
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"})
    wait_for_state(server, uuid, "manageable")
    path, checksum = image(images)
    api(server, "PATCH", f"/v1/nodes/{uuid}", [
        {"op": "add", "path": "/instance_info/image_source", "value": path.as_uri()},
        {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
    ])  # fmt: skip
    agent = start_agent(boot_url, machine, root)
    try:
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "provide"})
        wait_for_state(server, uuid, "available")
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "active"})
        wait_for_state(server, uuid, "active")
    finally:
        stop(agent)
    return uuid


def wait_for_state_exactly(server: Any, uuid: str, state: str) -> dict[str, Any]:
    """Like ``wait_for_state`` but for wait and failure states too."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = node(server, uuid)
        if shown["provision_state"] == state:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"{uuid} not {state} after 60 s: {node(server, uuid)}")


def test_abort_then_rescue_and_unrescue_through_the_agent(
    server: Any, boot_url: str, bmc: Fleet, images: Path, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    machine.add_disk("vda", 64 * MIB)
    machine.add_nic("eth0", MAC)
    root = tmp_path / "rescue"
    root.mkdir()
    uuid = deployed_node(server, boot_url, bmc, images, machine, root)
    history_before = len(api(server, "GET", f"/v1/nodes/{uuid}/history")["history"])

    # no agent answers: the rescue waits, and is aborted as in Ironic
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision",
        {"target": "rescue", "rescue_password": PASSWORD})  # fmt: skip
    waiting = wait_for_state_exactly(server, uuid, "rescue wait")
    assert waiting["instance_info"]["hashed_rescue_password"] == "******"
    (queued,) = waiting["driver_internal_info"]["agent_commands"]
    assert queued["name"] == "rescue" and "password_hash" not in queued["args"]
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "abort"})
    aborted = wait_for_state_exactly(server, uuid, "rescue failed")
    assert "Rescue aborted by" in aborted["last_error"]
    assert "hashed_rescue_password" not in aborted["instance_info"]
    assert "agent_commands" not in aborted["driver_internal_info"]
    assert bmc.machines[0].power() is Power.OFF

    # now with the agent: rescue (from rescue failed) through the baremetal CLI
    agent = start_agent(boot_url, machine, root)
    try:
        baremetal(server, "node", "rescue", uuid, "--rescue-password", PASSWORD)
        rescued = wait_for_state(server, uuid, "rescue")
        assert agent.wait(timeout=60) == 3  # rescue mode: /init keeps the machine up
    finally:
        stop(agent)
    (line,) = [x for x in (root / "etc" / "shadow").read_text().splitlines()]
    user, hashed = line.split(":")[:2]
    register(hashed)  # neither may reach the server's logs or database in clear
    assert user == "rescue"
    assert shadow.verify(PASSWORD, hashed) and not shadow.verify(PASSWORD + "x", hashed)
    assert "rescue:x:0:0:rescue:/root:/bin/sh" in (root / "etc" / "passwd").read_text()
    assert (root / "ssh-started").read_text() == "started"
    assert [b.device for b in bmc.machines[0].boots][-1] is BootDevice.PXE  # type: ignore[attr-defined]
    assert bmc.machines[0].power() is Power.ON
    assert rescued["instance_info"]["hashed_rescue_password"] == "******"
    assert "agent_commands" not in rescued["driver_internal_info"]

    # unrescue: powered off, booted from its disk again
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "unrescue"})
    active = wait_for_state(server, uuid, "active")
    assert "hashed_rescue_password" not in active["instance_info"]
    assert bmc.machines[0].boot_override().device is BootDevice.DISK
    assert bmc.machines[0].power() is Power.ON
    assert not list((server.state_dir / "boot").rglob(f"*{uuid}*"))  # boot files gone
    history = api(server, "GET", f"/v1/nodes/{uuid}/history")["history"][history_before:]
    events = [e["event"] for e in history]
    assert any(e.startswith("Rescue: the agent started SSH for the user rescue") for e in events), (
        "\n".join(events)
    )
    assert any(e.startswith("Unrescue: booted from its disk again") for e in events)
    shown = " ".join(
        [
            str(api(server, "GET", f"/v1/nodes/{uuid}")),
            str(history),
            baremetal(server, "node", "show", uuid, "-f", "json"),
            (root / "agent.log").read_text(),
        ]
    )
    assert PASSWORD not in shown and hashed not in shown


@pytest.fixture
def impatient_server(start_metalcast_server: Callable[..., Any]) -> Iterator[Any]:
    env = {
        **SERVER_ENV,
        "METALCAST_CONDUCTOR__RESCUE_CALLBACK_TIMEOUT": "1",
        "METALCAST_CONDUCTOR__CHECK_TIMEOUTS_INTERVAL": "0.2",
    }
    with start_metalcast_server(env=env) as running:
        yield running


def test_a_rescue_whose_agent_never_calls_back_times_out(impatient_server: Any, bmc: Fleet) -> None:
    server = impatient_server
    served = bmc.bmcs[0]
    uuid = api(server, "POST", "/v1/nodes", {
        "name": "rescue-late", "driver": "ipmi", "deploy_interface": "fake",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })["uuid"]  # fmt: skip
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    for target, state in (("manage", "manageable"), ("provide", "available"), ("active", "active")):
        api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": target})
        wait_for_state(server, uuid, state)

    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision",
        {"target": "rescue", "rescue_password": PASSWORD})  # fmt: skip
    failed = wait_for_state_exactly(server, uuid, "rescue failed")

    assert "rescue_callback_timeout=1s" in failed["last_error"], failed["last_error"]
    assert "the agent never heartbeated" in failed["last_error"]
    assert "hashed_rescue_password" not in failed["instance_info"]
    events = [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]
    assert "Rescue ended: the node is powered off" in events  # as Ironic does
    assert bmc.machines[0].power() is Power.OFF
