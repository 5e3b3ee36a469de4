"""Serial-over-LAN for the virtual IPMI BMC: the machine's serial port, relayed.

A :class:`SerialSource` is the machine's side of its serial port: what the machine
prints, and where keystrokes go.  :class:`SerialPipe` is one in memory (tests, and
simulated machines: :meth:`SerialPipe.feed` is the machine printing); a QEMU
machine's is :class:`SerialLogTail`, which follows the file its ``-serial`` writes
(keystrokes have nowhere to go there and are dropped).

:class:`SolRelay` is one BMC's SOL payload instance (IPMI v2.0 chapter 15): while a
client has it activated, every byte the machine prints is sent to the client through
its SOL packets (one at a time, each acknowledged before the next),
and the client's characters are written to the source.  As on a real BMC, what the
machine prints while no client is activated is not kept.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

LOG = logging.getLogger(__name__)

#: seconds a relay waits for output before it looks again whether it should stop
READ_INTERVAL = 0.2
#: most bytes of one SOL packet, each way (the "payload size" of Activate Payload)
PACKET_BYTES = 200
#: times a packet of output is sent before the client is given up, and the seconds
#: each time waits for its acknowledgement
RETRIES = 5
RETRY_INTERVAL = 1.0


class SerialSource(Protocol):
    """The machine's side of a serial port.  Thread-safe."""

    def read(self, timeout: float) -> bytes:
        """What the machine printed since the last read, waiting up to ``timeout``
        seconds for something (b"" if nothing came)."""

    def write(self, data: bytes) -> None:
        """Characters typed at the console, for the machine."""

    def close(self) -> None:
        """Stop; a blocked :meth:`read` returns."""


class SerialPipe:
    """A serial port in memory: :meth:`feed` is the machine printing, :meth:`typed`
    what reached it from the console."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._output = bytearray()
        self._input = bytearray()
        self._closed = False

    def feed(self, data: bytes) -> None:
        """The machine prints ``data``."""
        with self._changed:
            self._output += data
            self._changed.notify_all()

    def typed(self, *, wait_for: bytes = b"", timeout: float = 10.0) -> bytes:
        """Every byte typed so far, once it contains ``wait_for`` (or ``timeout``
        seconds passed)."""
        with self._changed:
            self._changed.wait_for(lambda: wait_for in self._input, timeout)
            return bytes(self._input)

    def read(self, timeout: float) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: self._output or self._closed, timeout)
            data = bytes(self._output)
            self._output.clear()
            return data

    def write(self, data: bytes) -> None:
        with self._changed:
            self._input += data
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class SerialLogTail:
    """Follows the file a QEMU machine's serial port writes to, from its end when
    the tail starts (QEMU appends to it across power cycles)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0
        self._closed = threading.Event()

    def read(self, timeout: float) -> bytes:
        data = self._read_new()
        if not data:
            # a file gives no event to wait for: look again after the interval
            self._closed.wait(timeout)
            data = self._read_new()
        return data

    def _read_new(self) -> bytes:
        try:
            with self.path.open("rb") as stream:
                size = stream.seek(0, 2)
                if size < self._offset:  # the file was replaced: start again
                    self._offset = 0
                stream.seek(self._offset)
                data = stream.read(size - self._offset)
        except FileNotFoundError:
            return b""
        self._offset += len(data)
        return data

    def write(self, data: bytes) -> None:
        """Dropped: the machine's serial input is not connected."""

    def close(self) -> None:
        self._closed.set()


class SolRelay:
    """One BMC's SOL payload: activated by at most one client session at a time."""

    def __init__(self, source: SerialSource, *, name: str) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._console: Any = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._pump, name=f"sol-{name}", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        """Whether a client has the payload activated."""
        with self._lock:
            return self._console is not None

    def holder(self) -> Any:
        """The client session holding the payload, if any."""
        with self._lock:
            return None if self._console is None else self._console.session

    def activate(self, session: Any) -> bool:
        """Give the payload to ``session``; False if another client holds it."""
        with self._lock:
            if self._console is not None:
                return False
            self._console = _SolChannel(session, self._typed)
            return True

    def deactivate(self) -> bool:
        """Take the payload back; False if it was not activated."""
        with self._lock:
            console, self._console = self._console, None
        if console is None:
            return False
        console.close()
        return True

    def stop(self) -> None:
        """Deactivate, stop relaying and close the source."""
        self._stopped.set()
        self.deactivate()
        self.source.close()
        self._thread.join(timeout=5)

    def _typed(self, data: bytes) -> None:
        self.source.write(data)

    def _pump(self) -> None:
        while not self._stopped.is_set():
            data = self.source.read(READ_INTERVAL)
            if not data:
                continue
            with self._lock:
                console = self._console
            if console is None:
                continue
            for start in range(0, len(data), PACKET_BYTES):
                if not console.send(data[start : start + PACKET_BYTES]):
                    # a client that vanished: the payload is free again
                    LOG.info("SOL client stopped answering; payload deactivated")
                    self.deactivate()
                    break


class _SolChannel:
    """The BMC's end of one activated SOL payload (IPMI v2.0 section 15.9).

    Each packet of output waits for the client's acknowledgement before the next
    (resent up to :data:`RETRIES` times); each packet the client sends is
    acknowledged, and handed on once even if the client resends it.  pyghmi's own
    server console sends from whichever thread acknowledges, and blocks its event
    loop waiting for the next acknowledgement, which only that loop could read.
    """

    def __init__(self, session: Any, on_typed: Any) -> None:
        self.session = session
        self._on_typed = on_typed
        self._changed = threading.Condition()
        self._sent_seq = 0
        self._acked_seq = 0
        self._received_seq = 0
        self._closed = False
        session.sol_handler = self._received

    def send(self, data: bytes) -> bool:
        """Send one packet of output; False if the client never acknowledged it."""
        self._sent_seq = self._sent_seq % 15 + 1
        seq = self._sent_seq
        packet = bytearray([seq, 0, 0, 0]) + data
        for _ in range(RETRIES):
            if self._closed:
                return False
            self.session.send_payload(packet, payload_type=1, retry=False)
            with self._changed:
                if self._changed.wait_for(
                    lambda: self._acked_seq == seq or self._closed, RETRY_INTERVAL
                ):
                    return not self._closed
        return False

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self.session.sol_handler == self._received:
            self.session.sol_handler = None

    def _received(self, payload: Any) -> None:
        """A packet from the client, in pyghmi's event-loop thread: never blocks."""
        if isinstance(payload, dict):  # pyghmi telling of a broken session
            self.close()
            return
        seq, acked = payload[0] & 0x0F, payload[1] & 0x0F
        if seq:
            data = bytes(payload[4:])
            if seq != self._received_seq:
                self._received_seq = seq
                if data:
                    self._on_typed(data)
            self.session.send_payload(
                bytearray([0, seq, len(data) & 0xFF, 0]), payload_type=1, retry=False
            )
        if acked:
            with self._changed:
                self._acked_seq = acked
                self._changed.notify_all()
