"""Many nodes through their whole lifecycle at once, with the periodic threads running:
a real SQLite file, real threads, the in-process client the server uses."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.fernet import Fernet

from metalcast.calls import ChangeProvisionState, CreateNode, ProvisionRequest
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ConductorSettings, Settings
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.drivers.registry import default_registry
from metalcast.errors import NodeLocked, NoFreeWorker
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import SecretBox

CTX = RequestContext(user="ops")
NODES = 60


def _until(db: Database, state: str, count: int) -> None:
    end = time.monotonic() + 180  # a guard against hangs, not a timing: CI may be loaded
    while time.monotonic() < end:
        with db.read() as conn:
            if repo.count_nodes(conn, repo.NodeFilters(provision_state=state)) == count:
                return
        time.sleep(0.02)
    raise AssertionError(f"not every node reached {state}")


def _ask(client: LocalConductorClient, ids: list[int], verb: str) -> None:
    pending = ids
    end = time.monotonic() + 180  # a guard against hangs, not a timing: CI may be loaded
    while pending and time.monotonic() < end:
        retry = []
        for node_id in pending:
            try:
                client.call(ChangeProvisionState(node_id, ProvisionRequest(verb=verb)), context=CTX)
            except (NoFreeWorker, NodeLocked):  # the periodic sync may hold a lock briefly
                retry.append(node_id)
        pending = retry
        time.sleep(0.01 if pending else 0)
    assert not pending


def test_lifecycle_of_many_nodes_with_periodics_running(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'metalcast.sqlite'}")
    db.migrate()
    settings = Settings(
        state_dir=tmp_path,
        conductor=ConductorSettings(hostname="c1", workers_pool_size=16),
    )
    service = ConductorService(
        settings,
        db,
        default_registry(),
        SecretBox(Fernet.generate_key()),
        intervals=PeriodicIntervals(power_sync=0.05, wait_timeouts=0.05, heartbeat=0.05),
    )
    service.start()
    client = LocalConductorClient(service)
    try:
        ids = [
            client.call(CreateNode({"driver": "fake-hardware"}), context=CTX).id
            for _ in range(NODES)
        ]
        for verb, state in [
            ("manage", "manageable"),
            ("provide", "available"),
            ("active", "active"),
            ("deleted", "available"),
        ]:
            _ask(client, ids, verb)
            _until(db, state, NODES)
        with db.read() as conn:
            history = repo.list_history(conn, ids[0])
        assert [h.event.split(" by ")[0] for h in history if h.event_type == "provisioning"] == [
            "enroll → verifying (manage)",
            "verifying → manageable (done)",
            "manageable → cleaning (provide)",
            "cleaning → available (done)",
            "available → deploying (deploy)",
            "deploying → active (done)",
            "active → deleting (deleted)",
            "deleting → cleaning (clean)",
            "cleaning → available (done)",
        ]
        # a node's last state is saved just before its task lets go of the lock, and
        # the power sync locks nodes in passing: once every task has ended, none is left
        assert service.stop(timeout=30)
        with db.read() as conn:
            assert repo.count_nodes(conn, repo.NodeFilters(reserved=True)) == 0
    finally:
        if service.started:
            service.stop(timeout=30)
        db.dispose()
