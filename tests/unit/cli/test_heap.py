"""The server's C heap: malloc limited to a few arenas, free memory given back."""

from __future__ import annotations

import threading

import pytest

from metalcast.cli import heap


class FakeLibc:
    """Records mallopt and malloc_trim; the first trim ends the trimming thread."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.mallopt_calls: list[tuple[int, int]] = []
        self.trims = 0

    def mallopt(self, parameter: int, value: int) -> int:
        self.mallopt_calls.append((parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        self.stop.set()
        return 1


@pytest.fixture
def stop() -> threading.Event:
    return threading.Event()


def _tame(monkeypatch: pytest.MonkeyPatch, stop: threading.Event) -> FakeLibc:
    libc = FakeLibc(stop)
    monkeypatch.setattr(heap, "_glibc", lambda: libc)
    monkeypatch.setattr(heap, "TRIM_INTERVAL", 0.0)
    assert heap.tame(stop) is True
    assert stop.wait(10)  # the trimming thread trimmed once, then stopped
    return libc


def test_malloc_gets_two_arenas_and_its_free_memory_is_trimmed(
    monkeypatch: pytest.MonkeyPatch, stop: threading.Event
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    libc = _tame(monkeypatch, stop)
    assert libc.mallopt_calls == [(-8, heap.ARENAS)]
    assert libc.trims == 1


def test_the_operators_malloc_arena_max_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, stop: threading.Event
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    libc = _tame(monkeypatch, stop)
    assert libc.mallopt_calls == []
    assert libc.trims == 1


def test_nothing_happens_without_glibc(
    monkeypatch: pytest.MonkeyPatch, stop: threading.Event
) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.tame(stop) is False
