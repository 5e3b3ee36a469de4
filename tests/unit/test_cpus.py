"""The all-in-one server's threads share one CPU; the programs it runs get every CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from metalcast import cpus
from metalcast.config import load_settings
from metalcast.errors import InvalidInput

TWO_CPUS = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="pinning needs a machine of 2 CPUs or more"
)


@pytest.fixture(autouse=True)
def unpinned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never pin the test process itself: every thread move is recorded instead."""
    monkeypatch.setattr(cpus, "_pinning", None)
    yield


@pytest.mark.parametrize("setting", ["two", "-1", "1.5", "", "0x1"])
def test_a_setting_that_is_no_cpu_is_refused_with_what_is_accepted(setting: str) -> None:
    with pytest.raises(InvalidInput, match=r"'auto', 'off' or a CPU number"):
        cpus.parse(setting)
    with pytest.raises(InvalidInput, match="cpu"):
        load_settings(environ={"METALCAST_CPU": setting})


def test_the_settings_default_is_auto_and_take_off_and_numbers() -> None:
    assert load_settings(environ={}).cpu == "auto"
    assert load_settings(environ={"METALCAST_CPU": "off"}).cpu == "off"
    assert load_settings(environ={"METALCAST_CPU": "3"}).cpu == "3"


def test_a_cpu_the_process_may_not_use_is_refused_naming_those_it_may() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    with pytest.raises(InvalidInput) as raised:
        cpus.pin("100000", server=True)
    assert "may not run on CPU 100000" in str(raised.value)
    assert ", ".join(map(str, allowed)) in str(raised.value)
    assert cpus.pinning() is None


def test_off_and_auto_outside_the_server_leave_the_threads_to_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved: list[int] = []
    monkeypatch.setattr(cpus, "_move_threads", moved.append)
    assert cpus.pin("off", server=True) is None
    assert cpus.pin("auto", server=False) is None  # an API or conductor process
    assert moved == []
    assert cpus.child_setup() is None


@TWO_CPUS
def test_auto_in_the_server_picks_one_cpu_and_can_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[int] = []
    monkeypatch.setattr(cpus, "_move_threads", moved.append)
    pinned = cpus.pin("auto", server=True)
    assert pinned is not None and pinned.follow
    assert moved == [pinned.cpu] and pinned.cpu in os.sched_getaffinity(0)
    assert pinned.started_with == frozenset(os.sched_getaffinity(0))


def _ticks(total: int = 100, **busy: int) -> dict[int, tuple[int, int]]:
    """/proc/stat-like ticks: ``cpu0=busy`` ..., each CPU ``total`` ticks since boot."""
    out = {int(name[3:]): (value, total - value) for name, value in busy.items()}
    out[-1] = (sum(b for b, _ in out.values()), sum(i for _, i in out.values()))
    return out


def test_the_server_moves_only_when_other_work_crowds_its_cpu() -> None:
    pinned = cpus.Pinning(cpu=0, started_with=frozenset({0, 1}), follow=True)
    zero = _ticks(0, cpu0=0, cpu1=0)
    # its own work keeps CPU 0 busy: stay
    assert cpus._crowded(pinned, zero, _ticks(cpu0=90, cpu1=10), 85, 200) is None
    # other work takes 80% of CPU 0 while CPU 1 is idle: move to CPU 1
    assert cpus._crowded(pinned, zero, _ticks(cpu0=95, cpu1=5), 15, 200) == 1
    # both CPUs busy with other work alike: moving would gain nothing
    assert cpus._crowded(pinned, zero, _ticks(cpu0=90, cpu1=80), 20, 200) is None


def test_the_follower_moves_every_thread_to_the_freer_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pinned = cpus.Pinning(cpu=0, started_with=frozenset({0, 1}), follow=True)
    monkeypatch.setattr(cpus, "_pinning", pinned)
    monkeypatch.setattr(cpus, "FOLLOW_INTERVAL", 0.01)
    looks = iter([_ticks(0, cpu0=0, cpu1=0), _ticks(cpu0=95, cpu1=5)])
    monkeypatch.setattr(cpus, "_busy_ticks", lambda: next(looks, _ticks(cpu0=95, cpu1=5)))
    monkeypatch.setattr(cpus, "_own_ticks", lambda: 0)
    stop = threading.Event()
    moved: list[int] = []

    def move(cpu: int) -> None:
        moved.append(cpu)
        stop.set()

    monkeypatch.setattr(cpus, "_move_threads", move)
    cpus.follow(stop)
    assert stop.wait(10)
    assert moved == [1] and pinned.cpu == 1


PROBE = """
import json, os, subprocess, threading
from metalcast import cpus
pinned = cpus.pin({setting!r}, server=True)
ready = threading.Event()
threading.Thread(target=ready.wait, daemon=True).start()  # a thread started after
threads = {{tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}}
child = subprocess.run(
    ["grep", "Cpus_allowed_list", "/proc/self/status"],
    capture_output=True, text=True, check=True, preexec_fn=cpus.child_setup(),
).stdout.split()[-1]
ready.set()
print(json.dumps({{"cpu": pinned and pinned.cpu, "threads": threads, "child": child}}))
"""


def _probe(setting: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(setting=setting)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _cpu_list(cpus_: set[int]) -> str:
    """The kernel's spelling of a CPU set whose members are consecutive (0-1)."""
    low, high = min(cpus_), max(cpus_)
    return str(low) if low == high else f"{low}-{high}"


@TWO_CPUS
def test_every_thread_runs_on_the_chosen_cpu_and_children_on_every_cpu() -> None:
    allowed = set(os.sched_getaffinity(0))
    last = max(allowed)
    result = _probe(str(last))
    assert result["cpu"] == last
    threads = result["threads"]
    assert isinstance(threads, dict) and len(threads) >= 2
    assert all(cpus_ == [last] for cpus_ in threads.values()), threads
    if allowed == set(range(min(allowed), last + 1)):
        assert result["child"] == _cpu_list(allowed)
    # off: nothing moves, and the child inherits everything anyway
    unpinned = _probe("off")
    assert unpinned["cpu"] is None
    assert isinstance(unpinned["threads"], dict)
    assert all(set(c) == allowed for c in unpinned["threads"].values())
