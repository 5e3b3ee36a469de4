"""Helpers for tests against the lab's virtual BMCs (imported as ``bmclab``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from metalcast.lab.bmc.fleet import Fleet, ServedBmc
from metalcast.lab.machine import SimulatedMachine

USERNAME = "admin"
PASSWORD = "lab-pass-1"


def machine_of(bmc: ServedBmc) -> SimulatedMachine:
    machine = bmc.machine
    assert isinstance(machine, SimulatedMachine)
    return machine


def bmc_of(fleet: Fleet, protocol: str, index: int) -> ServedBmc:
    """The ``index``-th BMC of ``protocol`` ("ipmi" or "redfish")."""
    return [b for b in fleet.bmcs if b.protocol == protocol][index]


def ipmitool(
    bmc: ServedBmc, *args: str, password: str = PASSWORD, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``ipmitool -I lanplus`` against ``bmc``; fails the test on error when ``check``."""
    command = [
        "ipmitool", "-I", "lanplus", "-H", bmc.address, "-p", str(bmc.port),
        "-U", USERNAME, "-P", password,
        "-R", "2", "-N", "1", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ipmitool {' '.join(args)} failed: {result.stderr}")
    return result


BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"


def baremetal(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """python-ironicclient's ``baremetal`` CLI against the metalcast API at ``url``."""
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(var, None)
    result = subprocess.run(
        [BAREMETAL, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"baremetal {' '.join(args)} failed:\n{result.stderr}")
    return result


def enroll(url: str, name: str, driver: str, driver_info: dict[str, object]) -> str:
    """``baremetal node create``; the new node's UUID."""
    args = ["node", "create", "--driver", driver, "--name", name]
    for key, value in driver_info.items():
        args += ["--driver-info", f"{key}={value}"]
    return str(json.loads(baremetal(url, *args, "-f", "json").stdout)["uuid"])


def node(url: str, ident: str) -> dict[str, Any]:
    """The node as the API shows it (faster than ``baremetal node show``)."""
    answer = httpx.get(
        f"{url}/v1/nodes/{ident}", headers={"X-OpenStack-Ironic-API-Version": "1.51"}
    )
    answer.raise_for_status()
    shown: dict[str, Any] = answer.json()
    return shown


def history(url: str, ident: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{url}/v1/nodes/{ident}/history", headers={"X-OpenStack-Ironic-API-Version": "latest"}
    )
    answer.raise_for_status()
    events: list[dict[str, Any]] = answer.json()["history"]
    return events


def settled(url: str, ident: str, timeout: float = 60) -> dict[str, Any]:
    """The node once no provision or power change is in progress."""
    deadline = time.monotonic() + timeout
    while True:
        shown = node(url, ident)
        busy = shown["target_provision_state"] or shown["target_power_state"]
        if not busy and not shown["reservation"]:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"node {ident} still busy after {timeout}s: {shown}")
        time.sleep(0.1)


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
