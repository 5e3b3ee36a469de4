"""Helpers for conductor tests: a real SQLite database, the fake drivers, a service
with no periodic threads (tests run the periodic passes by hand) and a manual clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from metalcast.calls import CreateNode
from metalcast.conductor.clock import ManualClock
from metalcast.conductor.runtime import RetryPolicy
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ConductorSettings, EventsSettings, Settings
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import HistoryEvent, Node
from metalcast.drivers.fake import FakeBmcState
from metalcast.drivers.registry import DriverRegistry, default_registry
from metalcast.secrecy import SecretBox
from metalcast.states import HOLD, STABLE, WAIT, ProvisionState

ALICE = RequestContext(user="alice", project="p1")
DEADLINE = 15.0


class Gate:
    """The fake drivers' ``sleep``: ``fake_latency`` blocks until the test opens it."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self.waiting = threading.Semaphore(0)

    def sleep(self, seconds: float) -> None:
        self.waiting.release()
        self._open.wait(timeout=DEADLINE)

    def wait_for_sleeper(self) -> None:
        assert self.waiting.acquire(timeout=DEADLINE), "no task reached the fake latency"

    def open(self) -> None:
        self._open.set()


@dataclass
class Env:
    service: ConductorService
    db: Database
    bmc: FakeBmcState
    gate: Gate
    clock: ManualClock
    secret_box: SecretBox
    make: Callable[..., ConductorService]

    def node(self, node_id: int) -> Node:
        with self.db.read() as conn:
            return repo.get_node_by_id(conn, node_id)

    def history(self, node_id: int) -> list[HistoryEvent]:
        with self.db.read() as conn:
            return repo.list_history(conn, node_id)

    def create(self, state: str = "manageable", **values: Any) -> Node:
        values.setdefault("driver", "fake-hardware")
        values["provision_state"] = state
        return self.service.execute(CreateNode(values), context=ALICE)

    def wait_settled(self, node_id: int) -> Node:
        """Poll the database until the node rests (stable, failed or waiting, unlocked)."""
        settled = {s.value for s in STABLE | WAIT | HOLD} | {
            s.value for s in ProvisionState if s.value.endswith("failed")
        }
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            node = self.node(node_id)
            idle = node.reservation is None and node.target_power_state is None
            if node.provision_state in settled and idle:
                return node
            time.sleep(0.005)
        raise AssertionError(f"node still busy: {self.node(node_id)}")


def settings_for(tmp_path: Path, **conductor: Any) -> Settings:
    values: dict[str, Any] = {
        "hostname": "conductor-1",
        "node_locked_retry_attempts": 1,
        "node_locked_retry_interval": 0,
        "workers_pool_size": 8,
    }
    values.update(conductor)
    # no webhook pass in the background: tests run it by hand
    events = EventsSettings(webhook_interval=0)
    return Settings(state_dir=tmp_path, conductor=ConductorSettings(**values), events=events)


def make_env(tmp_path: Path, *, database_url: str | None = None) -> Iterator[Env]:
    """A conductor on ``database_url`` (default: SQLite in ``tmp_path``)."""
    db = Database(database_url or f"sqlite:///{tmp_path / 'metalcast.sqlite'}")
    db.migrate()
    bmc = FakeBmcState()
    gate = Gate()
    clock = ManualClock()
    box = SecretBox(Fernet.generate_key())
    services: list[ConductorService] = []

    def make(registry: DriverRegistry | None = None, **conductor: Any) -> ConductorService:
        service = ConductorService(
            settings_for(tmp_path, **conductor),
            db,
            registry or default_registry(fake_bmc=bmc, sleep=gate.sleep),
            box,
            clock=clock,
            intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
            retry=RetryPolicy(attempts=3, backoff=0),
        )
        service.start()
        services.append(service)
        return service

    yield Env(make(), db, bmc, gate, clock, box, make)
    gate.open()
    for service in services:
        if service.started:
            service.stop(timeout=DEADLINE)
    db.dispose()
