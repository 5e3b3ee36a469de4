"""Serial consoles end to end: a real ``metalcast server`` holds the ``ipmi-sol``
console of a node whose virtual IPMI BMC (in this process) serves SOL from a serial
port in memory; the test reads and types through metalcast's websocket proxy with a
real websocket client, enables and shows the console with the ``baremetal`` CLI,
reads the console log afterwards, and is refused another tenant's console."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bmclab import PASSWORD, USERNAME, baremetal, wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from metalcast.api.routes.node_console import PER_NODE
from metalcast.lab.bmc.fleet import Fleet, ServedBmc
from metalcast.lab.bmc.sol import SerialPipe
from metalcast.lab.machine import SimulatedMachine

pytestmark = pytest.mark.integration

VERSION = {"X-OpenStack-Ironic-API-Version": "1.60"}
ADMIN = {"X-Roles": "admin", "X-User-Id": "root", "OpenStack-System-Scope": "all", **VERSION}


def tenant(project: str) -> dict[str, str]:
    return {"X-Roles": "member", "X-User-Id": f"user-{project}", "X-Project-Id": project, **VERSION}


@pytest.fixture(scope="module")
def bmcs() -> Iterator[tuple[list[ServedBmc], list[SerialPipe]]]:
    pipes = [SerialPipe(), SerialPipe()]
    machines = [SimulatedMachine("con-0"), SimulatedMachine("con-1")]
    serials = {m.name: p for m, p in zip(machines, pipes, strict=True)}
    with Fleet(machines, username=USERNAME, password=PASSWORD, serials=serials) as fleet:
        yield fleet.bmcs, pipes


def _create(url: str, name: str, bmc: ServedBmc, headers: dict[str, str], **extra: Any) -> str:
    body = {
        "name": name,
        "driver": "ipmi",
        "console_interface": "ipmi-sol",
        "driver_info": bmc.driver_info(username=USERNAME, password=PASSWORD),
        **extra,
    }
    answer = httpx.post(f"{url}/v1/nodes", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["uuid"])


def _console(url: str, ident: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{url}/v1/nodes/{ident}/states/console", headers=headers)


def _enabled(url: str, ident: str, headers: dict[str, str], want: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {}

    def check() -> bool:
        shown.update(_console(url, ident, headers).json())
        return shown["console_enabled"] is want

    assert wait_for(check, timeout=60), shown
    return shown


def _received(ws: ClientConnection, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        frame = ws.recv(timeout=30)
        seen += frame if isinstance(frame, bytes) else frame.encode()
    return seen


def test_the_console_through_the_websocket_proxy(
    start_metalcast_server: Callable[..., contextlib.AbstractContextManager[Any]],
    bmcs: tuple[list[ServedBmc], list[SerialPipe]],
) -> None:
    served, pipes = bmcs
    env = {"METALCAST_API__AUTH_STRATEGY": "header"}
    with start_metalcast_server(env=env) as server:
        url = server.url
        mine = _create(url, "con-0", served[0], ADMIN, owner="tenant-a")
        theirs = _create(url, "con-1", served[1], ADMIN, owner="tenant-b")
        me = tenant("tenant-a")
        for ident in (mine, theirs):
            answer = httpx.put(
                f"{url}/v1/nodes/{ident}/states/console", json={"enabled": True}, headers=ADMIN
            )
            assert answer.status_code == 202, answer.text
        info = _enabled(url, mine, me, True)["console_info"]
        assert info["type"] == "websocket"
        assert info["url"].startswith(f"ws://{url.split('://')[1]}/v1/nodes/{mine}/console/stream")

        with connect(info["url"]) as ws:
            pipes[0].feed(b"iPXE 1.21 -- Open Source Network Boot Firmware\r\n")
            assert b"Open Source Network Boot Firmware" in _received(ws, b"Firmware")
            # one node's token does not take every console reader of the process
            with contextlib.ExitStack() as more:
                for _ in range(PER_NODE - 1):
                    more.enter_context(connect(info["url"]))
                with pytest.raises(InvalidStatus) as refused:
                    connect(info["url"]).close()
                assert refused.value.response.status_code == 429
                assert b"connections open already" in refused.value.response.body
            ws.send(b"root\r")
            assert pipes[0].typed(wait_for=b"root\r") == b"root\r"
            ws.send("ls\r")  # text frames are typed too
            assert pipes[0].typed(wait_for=b"ls\r").endswith(b"ls\r")

            # disabling closes it
            answer = httpx.put(
                f"{url}/v1/nodes/{mine}/states/console", json={"enabled": False}, headers=ADMIN
            )
            assert answer.status_code == 202
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=30)
        _enabled(url, mine, me, False)

        # the log keeps what the console printed, after the session
        log = httpx.get(f"{url}/v1/nodes/{mine}/console/log", headers=me)
        assert log.status_code == 200, log.text
        assert "Open Source Network Boot Firmware" in log.json()["output"]
        assert log.json()["open"] is False

        # another tenant's console: hidden, and its token opens no other node
        assert _console(url, theirs, me).status_code == 404
        assert httpx.get(f"{url}/v1/nodes/{theirs}/console/log", headers=me).status_code == 404
        their_info = _enabled(url, theirs, ADMIN, True)["console_info"]
        token = their_info["url"].split("token=")[1]
        expired = f"{int(time.time()) - 1}.{token.split('.')[1]}"
        stream = f"ws://{url.split('://')[1]}/v1/nodes/{{}}/console/stream"
        for bad in (
            stream.format(theirs),
            stream.format(theirs) + "?token=1.forged",
            stream.format(mine) + f"?token={token}",  # another node's token
            stream.format(theirs) + f"?token={expired}",
        ):
            with pytest.raises(InvalidStatus) as refused:
                connect(bad).close()
            assert refused.value.response.status_code == 403


def _metalcast(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", "--url", url, *args],
        env=clean, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _read_until(fd: int, text: bytes, seen: bytearray) -> bytes:
    while text not in seen:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        seen += chunk
    return bytes(seen)


def _metalcast_console(url: str, pipe: SerialPipe) -> None:
    """``metalcast node console`` on a terminal: output shown, keys typed, ``~.``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    command = [sys.executable, "-m", "metalcast.cli.main", "--url", url, "node", "console"]
    terminal, tty = pty.openpty()
    with subprocess.Popen(
        [*command, "con-cli"], stdin=tty, stdout=tty, stderr=tty, env=clean
    ) as proc:
        os.close(tty)
        seen = bytearray()
        try:
            assert b"Connected" in _read_until(terminal, b"to leave", seen)
            pipe.feed(b"con-cli login: ")
            assert b"con-cli login: " in _read_until(terminal, b"login: ", seen)
            os.write(terminal, b"root\r")
            assert pipe.typed(wait_for=b"root\r").endswith(b"root\r")
            os.write(terminal, b"~.")
            assert proc.wait(timeout=60) == 0, bytes(seen)
            assert b"~" not in pipe.typed()  # the escape is not typed at the node
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(terminal)


def _log(url: str, ident: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/nodes/{ident}/console/log", headers=VERSION)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_baremetal_console_enable_show_and_a_restart(
    run_server_in: Callable[..., contextlib.AbstractContextManager[Any]],
    tmp_path: Path,
    bmcs: tuple[list[ServedBmc], list[SerialPipe]],
) -> None:
    served, pipes = bmcs
    env = {
        "METALCAST_CONDUCTOR__HEARTBEAT_INTERVAL": "1",
        "METALCAST_CONDUCTOR__HEARTBEAT_TIMEOUT": "2",
    }
    with run_server_in(tmp_path / "state", env=env) as server:
        url = server.url
        uuid = _create(url, "con-cli", served[1], VERSION)
        baremetal(url, "node", "console", "enable", "con-cli")
        shown: dict[str, Any] = {}

        def enabled() -> bool:
            out = baremetal(url, "node", "console", "show", "con-cli", "-f", "json").stdout
            shown.update(json.loads(out))
            return bool(shown["console_enabled"])

        assert wait_for(enabled, timeout=60), shown
        host = url.split("://")[1]
        assert shown["console_info"]["url"].startswith(f"ws://{host}/v1/nodes/{uuid}/")
        with connect(shown["console_info"]["url"]) as ws:
            pipes[1].feed(b"Debian GNU/Linux 12 con-cli ttyS0\r\n")
            assert b"con-cli ttyS0" in _received(ws, b"ttyS0")
        _metalcast_console(url, pipes[1])
        log = _metalcast(url, "node", "console-log", "con-cli")
        assert log.returncode == 0, log.stderr
        assert "con-cli ttyS0" in log.stdout and "con-cli login:" in log.stdout

    # a new conductor process opens the console again (the BMC's payload, still
    # held by the session of the one that stopped, is taken over)
    with run_server_in(tmp_path / "state", env=env) as server:
        url = server.url
        assert wait_for(lambda: _log(url, "con-cli")["open"], timeout=60)
        info = _console(url, "con-cli", VERSION).json()["console_info"]
        with connect(info["url"]) as ws:
            pipes[1].feed(b"after the restart\r\n")
            assert b"after the restart" in _received(ws, b"restart")
        baremetal(url, "node", "console", "disable", "con-cli")
        assert wait_for(
            lambda: not _console(url, "con-cli", VERSION).json()["console_enabled"], timeout=60
        )
        assert not _log(url, "con-cli")["open"]
