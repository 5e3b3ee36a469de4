"""Faults of the multi-process set-up: three ``metalcast conductor`` and two
``metalcast api`` processes on PostgreSQL while operators drive fake-hardware nodes
through their lifecycle (:mod:`fleet`).

- ``kill -9`` of conductors at random moments: the others take the dead one's nodes
  over (its locks released, its interrupted work failed with a reason naming it), and
  it comes back;
- ``kill -9`` of the API process the operators use: they carry on through the other;
- a rolling restart (SIGTERM, start again) of every conductor: no request fails;
- a PostgreSQL restart (clean and crash): every process lives on and serves again,
  nobody takes over a live conductor's nodes.

Afterwards, as for the all-in-one server: no node lost, locked or busy, each where
its plan ends or failed with the reason in ``last_error`` and its history; after the
conductor kills, every failure names a killed conductor and says it stopped
heartbeating.

``METALCAST_FAULT_NODES`` sets the number of nodes: 1,000 by default for the conductor
kills (issue 10; 115 to 140 s on two shared cores at load 7 to 17), 120 for the
others; ``METALCAST_FAULT_KILLS`` (default 3) and ``METALCAST_FAULT_SEED`` as in
:mod:`test_kill_mid_lifecycle`.  The conductor kills alone, at 1,000 nodes::

    pytest tests/integration/faults/test_process_faults.py -k conductors_mid_lifecycle
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deployment import HEADERS, HEARTBEAT_TIMEOUT, Deployment, deployment
from fleet import DEADLINE, Api, Fleet, check_invariants, create_nodes, operators, seeded
from postgres import Cluster
from test_postgres_restart import durable, probe_outage, wait_until_served

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

NODES = int(os.environ.get("METALCAST_FAULT_NODES", "120"))
#: the conductor kills' nodes: issue 10 asks for 1,000
KILL_NODES = int(os.environ.get("METALCAST_FAULT_NODES", "1000"))
KILLS = int(os.environ.get("METALCAST_FAULT_KILLS", "3"))
OPERATORS = 3
LATENCY = 0.05
CONDUCTORS = ("c1", "c2", "c3")
#: the verbs of one round of a node's plan, in the order they are asked
PLAN = ("manage", "provide", "active", "deleted")


class ApiHolder:
    """What :class:`fleet.Api` needs: the URL of the API process in use, and whether
    it is up."""

    def __init__(self, deploy: Deployment, name: str) -> None:
        self.deploy = deploy
        self.name = name
        self.up = threading.Event()
        self.up.set()

    @property
    def url(self) -> str:
        return self.deploy.api(self.name)

    def switch(self, name: str) -> None:
        self.name = name
        self.up.set()


@pytest.fixture
def deploy(postgres_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deployment(postgres_url, tmp_path / "state") as running:
        yield running


def make_fleet(
    holder: ApiHolder, *, rounds: int = 1, nodes: int = NODES
) -> tuple[Fleet, Api, dict[str, list], set[str]]:
    fleet = Fleet(holder, rounds=rounds)
    api = Api(holder)
    groups = {
        f"split-{i}": create_nodes(
            api,
            prefix=f"s{i}",
            count=nodes // OPERATORS,
            resource_class=f"split-{i}",
            driver_info={"fake_latency": LATENCY},
        )
        for i in range(OPERATORS)
    }
    names = {n.name for nodes in groups.values() for n in nodes}
    return fleet, api, groups, names


def reserved_by(url: str, host: str) -> int:
    response = httpx.get(f"{url}/v1/nodes?fields=reservation&limit=0", headers=HEADERS)
    return sum(1 for r in response.json()["nodes"] if r["reservation"] == host)


def kill_moments(rng: random.Random, nodes: int) -> list[tuple[str, int]]:
    """When the kills fall: each once ``n`` verbs of one kind of the plan's first round
    were accepted, ``n`` and the kind drawn at random but one kill's kind a deploy, so
    that it falls mid-deploy; in the plan's order, a moment already past when its turn
    comes being now."""
    verbs = ["active", *(rng.choice(PLAN) for _ in range(KILLS - 1))]
    moments = [(verb, rng.randint(1, nodes)) for verb in verbs[:KILLS]]
    return sorted(moments, key=lambda m: (PLAN.index(m[0]), m[1]))


def test_kill_9_of_conductors_mid_lifecycle(deploy: Deployment) -> None:
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    holder = ApiHolder(deploy, "api1")
    fleet, api, groups, names = make_fleet(holder, rounds=2, nodes=KILL_NODES)
    deadline = time.monotonic() + DEADLINE
    victims: list[str] = []
    takeovers: list[float] = []
    try:
        with operators(fleet, groups) as threads:
            for verb, count in kill_moments(rng, len(names)):
                fleet.wait_accepted(count, deadline, verb=verb)
                victims.append(rng.choice(CONDUCTORS))
                takeovers.append(kill_and_restart(deploy, holder, victims[-1], deadline))
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        check_invariants(api, fleet, names=names, seed=seed)
        check_reasons(api, fleet, names=names, victims=set(victims), seed=seed)
        starts = {v: [f"{t:.1f}" for t in deploy.processes[v].starts] for v in CONDUCTORS}
        print(
            f"{len(names)} nodes, kills of {', '.join(victims)}, {fleet.accepted} verbs "
            f"accepted, {len(fleet.failures)} failures, takeover seen after "
            f"{', '.join(f'{t:.1f}' for t in takeovers)} s, conductor starts (s) {starts}, "
            f"statuses {fleet.statuses}"
        )
    finally:
        api.close()


def kill_and_restart(deploy: Deployment, holder: ApiHolder, victim: str, deadline: float) -> float:
    """SIGKILL ``victim``, wait until the others see it dead and none of its locks is
    left, start it again; how long after the kill its last lock went."""
    deploy.kill(victim)
    killed = time.monotonic()
    deploy.wait_conductors(set(CONDUCTORS) - {victim})
    while reserved_by(holder.url, victim):
        assert time.monotonic() < deadline, f"{victim}'s locks survive"
        time.sleep(0.05)
    took = time.monotonic() - killed
    deploy.start(victim)
    return took


def check_reasons(api: Api, fleet: Fleet, *, names: set[str], victims: set[str], seed: int) -> None:
    """Every failure the operators saw, and every node left failed, says which killed
    conductor stopped heartbeating: a kill is the only fault here."""
    said = [f"metalcast conductor {v} stopped heartbeating" for v in sorted(victims)]
    response = api.request("GET", "/v1/nodes?fields=name,provision_state,last_error&limit=0")
    left = [r for r in response.json()["nodes"] if r["name"] in names]
    reasons = [f[2] for f in fleet.failures]
    reasons += [r["last_error"] for r in left if r["provision_state"] != "available"]
    wrong = [r for r in reasons if not any(s in r for s in said)]
    assert not wrong, f"failures not naming a killed conductor (seed {seed}): {wrong[:10]}"


def test_kill_9_of_an_api_process_under_load(deploy: Deployment) -> None:
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    holder = ApiHolder(deploy, "api1")
    fleet, api, groups, names = make_fleet(holder)
    deadline = time.monotonic() + DEADLINE
    try:
        with operators(fleet, groups) as threads:
            fleet.wait_accepted(fleet.accepted + rng.randint(1, len(names)), deadline)
            holder.up.clear()
            deploy.kill("api1")
            holder.switch("api2")
            deploy.start("api1")
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        check_invariants(api, fleet, names=names, seed=seed)
        # an API process keeps no state: nothing it was doing is left half done
        assert not fleet.failures, fleet.failures
    finally:
        api.close()


def test_rolling_restart_of_every_conductor_under_load(deploy: Deployment) -> None:
    holder = ApiHolder(deploy, "api1")
    # three rounds: a conductor's stop takes seconds (its tasks, then its connections),
    # and the operators should still be at work when the last one restarts
    fleet, api, groups, names = make_fleet(holder, rounds=3)
    deadline = time.monotonic() + DEADLINE
    under_load = []
    try:
        with operators(fleet, groups) as threads:
            for name in CONDUCTORS:
                fleet.wait_accepted(fleet.accepted + 10, deadline)
                under_load.append(fleet.running)
                deploy.stop(name)  # SIGTERM: exits 0 once its tasks finished
                deploy.start(name)
                deploy.wait_conductors(set(CONDUCTORS))
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        check_invariants(api, fleet, names=names, seed=None)
        failed = {s: n for s, n in fleet.statuses.items() if s >= 500}
        assert not failed, f"requests failed during the rolling restart: {fleet.statuses}"
        assert not fleet.failures, fleet.failures
        print(
            f"operators at work at each restart: {under_load}, {fleet.accepted} verbs "
            f"accepted, statuses {fleet.statuses}"
        )
    finally:
        api.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restart_under_the_processes(
    postgres_cluster: Cluster, postgres_url: str, tmp_path: Path, mode: str
) -> None:
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    durable(postgres_cluster, postgres_url)
    with deployment(postgres_url, tmp_path / "state") as deploy:
        holder = ApiHolder(deploy, "api1")
        fleet, api, groups, names = make_fleet(holder)
        deadline = time.monotonic() + DEADLINE
        try:
            with operators(fleet, groups) as threads:
                fleet.wait_accepted(rng.randint(len(names), 2 * len(names)), deadline)
                postgres_cluster.stop_server(mode)
                try:
                    wrong = probe_outage(api, sorted(names)[0])
                    time.sleep(3 * HEARTBEAT_TIMEOUT)  # an outage every heartbeat row outlives
                finally:
                    postgres_cluster.start_server()
                wait_until_served(api, deadline)
                for thread in threads:
                    thread.join(timeout=max(0.0, deadline - time.monotonic()))
            assert wrong == [], "answers during the outage:\n" + "\n".join(wrong)
            died = [p.name for p in deploy.processes.values() if p.popen.poll() is not None]
            assert not died, f"processes died with the database: {died}"
            deploy.wait_conductors(set(CONDUCTORS))
            check_invariants(api, fleet, names=names, seed=seed)
            # every conductor lived through it: none took another's nodes over
            taken = [f for f in fleet.failures if "stopped heartbeating" in f[2]]
            assert not taken, taken
            print(
                f"{fleet.accepted} verbs accepted, {len(fleet.failures)} failures, {fleet.statuses}"
            )
        finally:
            api.close()
