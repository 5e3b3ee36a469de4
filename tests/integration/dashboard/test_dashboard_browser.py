"""The dashboard in a real browser: Debian's chromium driven by playwright-core
(``dashboard_flow.mjs``) against a real ``metalcast server`` on loopback with
``builtin`` authentication and fake-hardware nodes, plus an ``ipmi`` node whose
virtual IPMI BMC (in this process) serves Serial-over-LAN from a serial port in
memory, for the console page.

``scripts/install --test`` installs chromium (apt) and playwright-core (npm); no
browser is downloaded.  The screenshots in docs/ come from this test: set
``METALCAST_DASHBOARD_SHOTS`` to a directory to keep them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metalcast.lab.bmc.fleet import Fleet
from metalcast.lab.bmc.sol import SerialPipe
from metalcast.lab.machine import SimulatedMachine

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
FLOW = Path(__file__).with_name("dashboard_flow.mjs")
CHROMIUM = Path("/usr/bin/chromium")
ENV = {
    "METALCAST_API__AUTH_STRATEGY": "builtin",
    "METALCAST_EVENTS__POLL_INTERVAL": "0.05",
}
FLOW_TIMEOUT = 300
BMC_USER, BMC_PASSWORD = "admin", "lab-pass-1"


def _needs() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("Debian's chromium (/usr/bin/chromium)")
    if not (ROOT / "node_modules" / "playwright-core").is_dir() or shutil.which("node") is None:
        missing.append("node and playwright-core (node_modules)")
    if not (ROOT / "src/metalcast/api/dashboard/static/vendor/htmx.min.js").exists():
        missing.append("the dashboard's libraries (static/vendor)")
    if missing:
        pytest.fail("missing: " + ", ".join(missing) + ": run scripts/install --test")


def _first_password(stdout: Path) -> str:
    found = re.search(r"password:\s+(\S+)", stdout.read_text())
    assert found, "the server printed no first administrator's password"
    return found.group(1)


def _describe(api: httpx.Client, node: str) -> None:
    """Give a node what its page shows: properties, a port, a trait."""
    properties = {"cpus": 16, "memory_mb": 65536, "local_gb": 480, "cpu_arch": "x86_64"}
    patch = [{"op": "add", "path": "/properties", "value": properties}]
    assert api.patch(f"/v1/nodes/{node}", json=patch).status_code == 200
    port = {"node_uuid": node, "address": "52:54:00:12:34:56", "pxe_enabled": True}
    assert api.post("/v1/ports", json=port).status_code == 201
    assert api.put(f"/v1/nodes/{node}/traits/CUSTOM_GPU").status_code == 204


@pytest.fixture
def console_bmc() -> Iterator[tuple[dict[str, object], SerialPipe]]:
    """A virtual IPMI BMC whose machine prints a login prompt every second on its
    serial port (SOL) until someone types ``root`` and Enter, then asks for the
    password; its driver_info, and the port (what was typed at it)."""
    pipe = SerialPipe()
    machine = SimulatedMachine("con-0")
    stop = threading.Event()

    def prompt() -> None:
        while not stop.is_set():
            if b"root\r" in pipe.typed(wait_for=b"root\r", timeout=1.0):
                pipe.feed(b"root\r\nPassword: ")
                return
            pipe.feed(b"\r\nDebian GNU/Linux 12 con-0 ttyS0\r\n\r\ncon-0 login: ")

    with Fleet(
        [machine], username=BMC_USER, password=BMC_PASSWORD, serials={"con-0": pipe}
    ) as fleet:
        printer = threading.Thread(target=prompt, daemon=True)
        printer.start()
        try:
            yield fleet.bmcs[0].driver_info(username=BMC_USER, password=BMC_PASSWORD), pipe
        finally:
            stop.set()
            printer.join(5)


def test_the_dashboard_in_chromium(
    start_metalcast_server: Callable[..., Any],
    console_bmc: tuple[dict[str, object], SerialPipe],
) -> None:
    _needs()
    bmc_info, serial = console_bmc
    with start_metalcast_server(env=ENV) as server:
        password = _first_password(server.stdout_path)
        headers = {"X-OpenStack-Ironic-API-Version": "latest"}
        nodes = {}
        with httpx.Client(base_url=server.url, auth=("admin", password), headers=headers) as api:
            for name in ("web-1", "web-2", "db-1"):
                response = api.post("/v1/nodes", json={"name": name, "driver": "fake-hardware"})
                assert response.status_code == 201, response.text
                nodes[name] = response.json()["uuid"]
            _describe(api, nodes["web-1"])
        env = {
            **os.environ,
            "BASE": server.url,
            "USERNAME": "admin",
            "PASSWORD": password,
            "NODES": json.dumps(nodes),
            "SHOTS": os.environ.get("METALCAST_DASHBOARD_SHOTS", ""),
            "CONSOLE_DRIVER_INFO": json.dumps(bmc_info),
        }
        result = subprocess.run(
            ["node", str(FLOW)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=FLOW_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"{result.stdout}\n{result.stderr}\n--- server ---\n{server.logs()[-4000:]}"
        )
        assert "dashboard_flow: done" in result.stdout
        # what was typed in the browser's terminal reached the machine's serial port
        assert b"root\r" in serial.typed(wait_for=b"root\r")
