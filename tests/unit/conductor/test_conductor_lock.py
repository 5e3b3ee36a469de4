"""The node lock: a task waiting for it is woken when another task releases it."""

from __future__ import annotations

import threading

import pytest
from conductor_env import DEADLINE, Env

from metalcast.conductor import task as task_module
from metalcast.conductor.task import NodeTask, acquire


def test_a_waiting_task_takes_the_lock_as_soon_as_another_releases_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = env.create()
    rt = env.service.rt
    # a retry interval no test would wait out: only the release can wake the waiter
    rt.settings = rt.settings.model_copy(
        update={"node_locked_retry_attempts": 1, "node_locked_retry_interval": 3600.0}
    )
    refused = threading.Event()
    try_acquire = task_module.try_acquire

    def spied(*args: object, **kwargs: object) -> NodeTask | tuple[str, str]:
        got = try_acquire(*args, **kwargs)  # type: ignore[arg-type]
        if not isinstance(got, NodeTask):
            refused.set()
        return got

    monkeypatch.setattr(task_module, "try_acquire", spied)
    holder = acquire(rt, node.id, user="alice", purpose="hold")
    taken: list[NodeTask] = []
    waiter = threading.Thread(
        target=lambda: taken.append(acquire(rt, node.id, user="bob", purpose="wait"))
    )
    waiter.start()
    assert refused.wait(DEADLINE)  # the waiter found the lock held and waits
    holder.release()
    waiter.join(DEADLINE)
    assert not waiter.is_alive() and len(taken) == 1
    assert env.node(node.id).reservation == rt.hostname
    taken[0].release()
    assert env.node(node.id).reservation is None
    assert rt.lock_releases._releases == {}  # nobody waits: nothing tracked
