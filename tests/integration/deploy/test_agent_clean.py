"""Cleaning through the agent end to end without QEMU: a real ``metalcast server``, a
virtual IPMI BMC and the real ``metalcast-agent`` process on a machine made of files.

One machine's lifecycle: manual cleaning with ``erase_devices`` zeroes every disk, its
progress (bytes erased of the total) visible on the node while it runs; automated
cleaning erases only the metadata by default; a disk that cannot be written fails
cleaning with the agent's reason; a ``hold`` step holds cleaning until ``unhold``;
``abort`` from ``clean hold`` ends it as Ironic does (powered off, ramdisk boot gone).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "agent"))
from agent_machine import FakeMachine, write
from test_agent_deploy import MAC, SERVER_ENV, api, node, wait_for_state

from metalcast.lab.bmc.fleet import Fleet, simulated_machines
from metalcast.lab.machine import Power

MIB = 2**20
SIZES = {"vda": 24 * MIB, "vdb": 16 * MIB, "vdc": 8 * MIB}


@pytest.fixture
def server(start_metalcast_server: Callable[..., Any]) -> Iterator[Any]:
    with start_metalcast_server(env=dict(SERVER_ENV)) as running:
        yield running


@pytest.fixture
def bmc() -> Iterator[Fleet]:
    with Fleet(simulated_machines(1, prefix="clean"), ipmi=True) as fleet:
        yield fleet


def fake_hdparm(directory: Path, gate: Path) -> Path:
    """An ``hdparm`` that knows no disk (none is ATA), and asked about vdc first
    reads a line from ``gate``: the test holds the erase there, in the middle."""
    directory.mkdir()
    os.mkfifo(gate)
    script = directory / "hdparm"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$2" in *vdc) read line < "{gate}" ;; esac\n'
        'echo "$2: HDIO_DRIVE_CMD(identify) failed: Inappropriate ioctl for device" >&2\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    return directory


def start_agent(
    api_url: str, machine: FakeMachine, log: Path, *, path: Path
) -> subprocess.Popen[bytes]:
    write(
        machine.env.proc_root / "cmdline",
        f"metalcast.api={api_url} BOOTIF=01-{MAC.replace(':', '-')} metalcast.heartbeat=0.2\n",
    )
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{path}:{os.environ['PATH']}"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "metalcast_agent",
                f"--sys-root={machine.env.sys_root}", f"--proc-root={machine.env.proc_root}",
                f"--dev-root={machine.env.dev_root}", "--power-action=exit",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=environ,
        )  # fmt: skip


def until(predicate: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not {what} after {timeout}s")


def provision(server: Any, uuid: str, target: str, **body: Any) -> None:
    api(server, "PUT", f"/v1/nodes/{uuid}/states/provision", {"target": target, **body})


def events(server: Any, uuid: str) -> list[str]:
    return [e["event"] for e in api(server, "GET", f"/v1/nodes/{uuid}/history")["history"]]


def wait_state(server: Any, uuid: str, state: str) -> dict[str, Any]:
    """The node once it rests in ``state`` (a failure state included)."""

    def rests() -> dict[str, Any] | None:
        shown = node(server, uuid)
        return shown if shown["provision_state"] == state and not shown["reservation"] else None

    found: dict[str, Any] = until(rests, f"in {state}")
    return found


def test_cleaning_through_the_agent_erases_holds_and_aborts(
    server: Any, bmc: Fleet, tmp_path: Path
) -> None:
    machine = FakeMachine(tmp_path / "machine")
    disks = {name: machine.add_disk(name, size) for name, size in SIZES.items()}
    for disk in disks.values():
        disk.write_bytes(os.urandom(disk.stat().st_size))
    machine.add_nic("eth0", MAC)
    gate = tmp_path / "gate"
    tools = fake_hdparm(tmp_path / "bin", gate)
    served = bmc.bmcs[0]
    uuid = api(server, "POST", "/v1/nodes", {
        "name": "clean-0", "driver": "ipmi",
        "driver_info": served.driver_info(username=bmc.username, password=bmc.password),
    })["uuid"]  # fmt: skip
    api(server, "POST", "/v1/ports", {"address": MAC, "node_uuid": uuid})
    provision(server, uuid, "manage")
    wait_for_state(server, uuid, "manageable")
    agent = start_agent(server.url, machine, tmp_path / "agent.log", path=tools)
    try:
        # manual cleaning, full erase: progress shows while the agent holds at vdc
        provision(
            server, uuid, "clean", clean_steps=[{"interface": "deploy", "step": "erase_devices"}]
        )
        total = sum(SIZES.values())
        before_vdc = SIZES["vda"] + SIZES["vdb"]

        def at_vdc() -> dict[str, Any] | None:
            report = node(server, uuid)["driver_internal_info"].get("agent_progress")
            return report if report and report.get("done") == before_vdc else None

        report = until(at_vdc, "erasing vdc")
        assert (report["name"], report["total"]) == ("erase_devices", total)
        assert node(server, uuid)["provision_state"] == "clean wait"
        with gate.open("w") as opened:  # let hdparm answer: vdc is no ATA disk either
            opened.write("go\n")
        cleaned = wait_state(server, uuid, "manageable")
        for name, disk in disks.items():
            assert disk.read_bytes() == bytes(SIZES[name]), f"{name} is not zeroed"
        assert cleaned["last_error"] is None
        assert "agent_progress" not in cleaned["driver_internal_info"]
        assert bmc.machines[0].power() is Power.OFF
        done = [e for e in events(server, uuid) if e.startswith("Agent: erase_devices succeeded")]
        assert len(done) == 1, done
        assert re.fullmatch(
            r"Agent: erase_devices succeeded \(/dev/vda: overwrite, 24\.0 MiB in [\d.]+ s; "
            r"/dev/vdb: overwrite, 16\.0 MiB in [\d.]+ s; "
            r"/dev/vdc: overwrite, 8\.0 MiB in [\d.]+ s\)",
            done[0],
        ), done[0]

        # automated cleaning (provide): by default only the metadata goes
        data = os.urandom(SIZES["vda"])
        disks["vda"].write_bytes(data)
        provision(server, uuid, "provide")
        wait_state(server, uuid, "available")
        kept = disks["vda"].read_bytes()
        assert kept[:MIB] == bytes(MIB) and kept[-MIB:] == bytes(MIB)
        assert kept[MIB:-MIB] == data[MIB:-MIB], "automated cleaning erased more than metadata"
        provision(server, uuid, "manage")
        wait_state(server, uuid, "manageable")

        # hold: the agent is up, cleaning waits for the operator, then goes on
        disks["vdb"].write_bytes(os.urandom(SIZES["vdb"]))
        steps = [
            {"interface": "deploy", "step": "hold"},
            {"interface": "deploy", "step": "erase_devices_metadata"},
        ]
        provision(server, uuid, "clean", clean_steps=steps)
        held = wait_state(server, uuid, "clean hold")
        assert (
            held["clean_step"]["step"] == "hold" and held["target_provision_state"] == "manageable"
        )
        assert disks["vdb"].read_bytes()[:MIB] != bytes(MIB), "nothing runs while held"
        provision(server, uuid, "unhold")
        wait_state(server, uuid, "manageable")
        assert disks["vdb"].read_bytes()[:MIB] == bytes(MIB)

        # abort from hold: clean failed, saying so, the machine off and its boot gone
        provision(server, uuid, "clean", clean_steps=steps[::-1])
        wait_state(server, uuid, "clean hold")
        provision(server, uuid, "abort")
        aborted = wait_state(server, uuid, "clean failed")
        assert aborted["last_error"].startswith("By request of ")
        assert aborted["last_error"].endswith(
            "the clean operation was aborted during or after the completion of step 'deploy.hold'."
        )
        assert aborted["clean_step"] is None
        assert "agent_commands" not in aborted["driver_internal_info"]
        assert bmc.machines[0].power() is Power.OFF
        assert not list((server.state_dir / "boot").rglob(f"*{uuid}*"))
        provision(server, uuid, "manage")
        wait_state(server, uuid, "manageable")

        # a disk that cannot be written fails cleaning with the agent's reason
        disks["vdc"].unlink()
        os.symlink("/dev/full", disks["vdc"])
        threading.Thread(target=lambda: gate.open("w").write("go\n"), daemon=True).start()
        provision(
            server, uuid, "clean", clean_steps=[{"interface": "deploy", "step": "erase_devices"}]
        )
        failed = wait_state(server, uuid, "clean failed")
        assert failed["last_error"] == (
            "The agent's erase_devices failed: Overwriting /dev/vdc failed after 0.0 MiB of "
            "8.0 MiB: No space left on device"
        )
    finally:
        agent.kill()
        agent.wait()
    log = (tmp_path / "agent.log").read_text()
    assert "erase_devices: /dev/vda (24.0 MiB) erased by overwrite" in log
