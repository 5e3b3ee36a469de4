"""The bounded console log: offsets, the size cap, and readers that fell behind."""

from __future__ import annotations

import threading

from metalcast.drivers.console_log import ConsoleLog


def test_reads_from_an_offset_and_says_where_to_go_on() -> None:
    log = ConsoleLog(limit=64)
    log.append(b"iPXE 1.21\r\n")
    log.append(b"login: ")
    everything = log.read()
    assert (everything.data, everything.offset, everything.next_offset) == (
        b"iPXE 1.21\r\nlogin: ",
        0,
        18,
    )
    assert log.read(11).data == b"login: "
    assert log.read(18).data == b""
    assert log.read(1000).offset == 18  # past the end: nothing, from the end


def test_keeps_only_the_last_limit_bytes_and_tells_a_late_reader() -> None:
    log = ConsoleLog(limit=10)
    log.append(b"0123456789")
    log.append(b"abcde")
    kept = log.read()
    assert (kept.data, kept.offset, kept.next_offset) == (b"56789abcde", 5, 15)
    late = log.read(2)
    assert (late.data, late.offset, late.missed) == (b"56789abcde", 5, 3)


def test_a_waiting_reader_wakes_on_output_or_when_the_console_closes() -> None:
    log = ConsoleLog()
    log.set_open(True)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(log.read(0, wait=30).data))
    reader.start()
    log.append(b"boot")
    reader.join(timeout=30)
    assert got == [b"boot"]
    closer = threading.Thread(target=lambda: got.append(log.read(4, wait=30).data))
    closer.start()
    log.set_open(False)
    closer.join(timeout=30)
    assert got == [b"boot", b""]
    assert log.read(4).open is False
