"""``kill -9`` of the all-in-one server mid-lifecycle, again and again.

Operators drive fake-hardware nodes through manage, provide, deploy and undeploy
while the test SIGKILLs the server at random moments (after a random number of
accepted verbs, from a printed seed) and starts it again on the same database and
state directory.  Afterwards no node is lost, duplicated, locked or busy, and each one
is where its plan ends or in a failure state whose ``last_error`` and history say
why; every verb the server accepted ended in one of the two.

``METALCAST_FAULT_NODES`` sets the number of nodes (default 200; issue 10 asks for
1,000), ``METALCAST_FAULT_KILLS`` the number of kills (default 4),
``METALCAST_FAULT_SEED`` repeats a run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fleet import (
    DEADLINE,
    Api,
    Fleet,
    ServerHolder,
    StartServer,
    check_invariants,
    create_nodes,
    operators,
    seeded,
)

pytestmark = pytest.mark.faults

NODES = int(os.environ.get("METALCAST_FAULT_NODES", "200"))
KILLS = int(os.environ.get("METALCAST_FAULT_KILLS", "4"))
OPERATORS = 4
#: every fake operation takes this long: a kill finds work in flight
LATENCY = 0.05


def test_kill_9_at_random_moments_of_the_lifecycle(
    run_server_in: StartServer, database_url: str, tmp_path: Path
) -> None:
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    holder = ServerHolder(
        run_server_in, tmp_path / "state", {"METALCAST_DATABASE__URL": database_url}
    )
    holder.start()
    api = Api(holder)
    try:
        groups = {
            f"fault-{i}": create_nodes(
                api,
                prefix=f"n{i}",
                count=NODES // OPERATORS,
                resource_class=f"fault-{i}",
                driver_info={"fake_latency": LATENCY},
            )
            for i in range(OPERATORS)
        }
        names = {n.name for nodes in groups.values() for n in nodes}
        fleet = Fleet(holder, rounds=1)
        deadline = time.monotonic() + DEADLINE
        with operators(fleet, groups) as threads:
            # four verbs per node: the kills fall in the first two thirds of the run
            spread = max(2, (len(names) * 4 * 2 // 3) // KILLS)
            for _ in range(KILLS):
                fleet.wait_accepted(fleet.accepted + rng.randint(1, spread), deadline)
                holder.restart_after_kill()
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        check_invariants(api, fleet, names=names, seed=seed)
        interrupted = [f for f in fleet.failures if "restarted" in f[2]]
        print(
            f"{len(names)} nodes, {holder.restarts} kills, {fleet.accepted} verbs accepted, "
            f"{len(fleet.failures)} failures ({len(interrupted)} by a kill), "
            f"statuses {fleet.statuses}"
        )
        assert interrupted, f"no kill interrupted any work (seed {seed})"
    finally:
        api.close()
        holder.close()
