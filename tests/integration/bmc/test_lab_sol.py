"""Serial-over-LAN of the lab's virtual IPMI BMC, from a serial port in memory: read
and typed through metalcast's pyghmi SOL client and through ``ipmitool``."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from collections.abc import Iterator

import pytest
from bmclab import PASSWORD, USERNAME

from metalcast.drivers.bmc_sessions import BmcFailure
from metalcast.drivers.ipmi.client import IpmiTarget
from metalcast.drivers.ipmi.sol import open_sol
from metalcast.lab.bmc.fleet import Fleet, ServedBmc
from metalcast.lab.bmc.sol import SerialPipe
from metalcast.lab.machine import SimulatedMachine

pytestmark = pytest.mark.integration


@pytest.fixture
def served() -> Iterator[tuple[ServedBmc, SerialPipe, ServedBmc]]:
    """A BMC with a serial port, and one without."""
    pipe = SerialPipe()
    machines = [SimulatedMachine("sol-0"), SimulatedMachine("sol-1")]
    with Fleet(machines, username=USERNAME, password=PASSWORD, serials={"sol-0": pipe}) as fleet:
        yield fleet.bmcs[0], pipe, fleet.bmcs[1]


def _target(bmc: ServedBmc) -> IpmiTarget:
    return IpmiTarget(bmc.address, bmc.port, USERNAME, PASSWORD)


class Received:
    def __init__(self) -> None:
        self.data = bytearray()
        self.ended: list[str] = []
        self._changed = threading.Condition()

    def output(self, data: bytes) -> None:
        with self._changed:
            self.data += data
            self._changed.notify_all()

    def end(self, reason: str) -> None:
        with self._changed:
            self.ended.append(reason)
            self._changed.notify_all()

    def wait_for(self, text: bytes) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: text in self.data, 20)
            return bytes(self.data)


def test_sol_relays_both_ways_and_frees_the_payload(
    served: tuple[ServedBmc, SerialPipe, ServedBmc],
) -> None:
    bmc, pipe, _ = served
    got = Received()
    console = open_sol(_target(bmc), on_output=got.output, on_end=got.end)
    try:
        big = bytes(range(32, 127)) * 20  # several SOL packets, in order
        pipe.feed(b"iPXE booting\r\n" + big)
        assert got.wait_for(big).endswith(b"iPXE booting\r\n" + big)
        console.send(b"root\r")
        assert pipe.typed(wait_for=b"root\r") == b"root\r"
    finally:
        console.close()
    # the payload is free again: a second console takes it
    again = Received()
    second = open_sol(_target(bmc), on_output=again.output, on_end=again.end)
    try:
        pipe.feed(b"login: ")
        assert again.wait_for(b"login: ") == b"login: "
    finally:
        second.close()


def test_a_bmc_without_a_serial_port_refuses_sol(
    served: tuple[ServedBmc, SerialPipe, ServedBmc],
) -> None:
    _, _, bare = served
    got = Received()
    with pytest.raises(BmcFailure, match="SOL is disabled"):
        open_sol(_target(bare), on_output=got.output, on_end=got.end)


def _read_until(fd: int, text: bytes, seen: bytearray) -> bytes:
    while text not in seen:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: ipmitool ended
            break
        if not chunk:
            break
        seen += chunk
    return bytes(seen)


def test_ipmitool_sol_activate(served: tuple[ServedBmc, SerialPipe, ServedBmc]) -> None:
    """ipmitool on a terminal of its own (it prints through stdio, buffered on a
    pipe, and puts its terminal in raw mode)."""
    bmc, pipe, _ = served
    command = [
        "ipmitool", "-I", "lanplus", "-H", bmc.address, "-p", str(bmc.port),
        "-U", USERNAME, "-P", PASSWORD, "sol", "activate",
    ]  # fmt: skip
    terminal, tty = pty.openpty()
    with subprocess.Popen(command, stdin=tty, stdout=tty, stderr=tty) as proc:
        os.close(tty)
        seen = bytearray()
        try:
            assert b"SOL Session operational" in _read_until(terminal, b"operational", seen)
            pipe.feed(b"Debian GNU/Linux 12 lab-0 ttyS0\r\n")
            assert b"lab-0 ttyS0" in _read_until(terminal, b"ttyS0", seen)
            os.write(terminal, b"x")
            assert pipe.typed(wait_for=b"x") == b"x"
            os.write(terminal, b"\r~.")
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(terminal)
