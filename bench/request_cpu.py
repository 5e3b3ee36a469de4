#!/usr/bin/env python3
"""CPU per request of the write path, in process, for one source tree.

The real app and the real in-process conductor on a fresh SQLite database (the
unit tests' ``tests/unit/api/api_harness.py``), driven through httpx's ASGI
transport: no sockets and no uvicorn, so what is left is metalcast's own work (and
the client's, the same for every tree).  For ``--rounds`` rounds of ``--nodes``
nodes, one request at a time: ``POST /v1/nodes``, ``POST /v1/ports``, ``GET
.../states``, then ``manage`` and ``provide`` of 25 nodes at a time, each polled
until it settles.  Prints the process CPU time per request type (per transition,
its polls' share of ``GET .../states`` taken off), the minimum and every round.
Which tree runs is ``PYTHONPATH``'s choice, so that two trees can take turns:

    git worktree add --detach /tmp/base <commit>
    for src in /tmp/base/src src src /tmp/base/src; do
        PYTHONPATH=$src .venv/bin/python bench/request_cpu.py
    done
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit" / "api"))

import api_harness  # noqa: E402

HEADERS = {"X-OpenStack-Ironic-API-Version": "1.51"}
BATCH = 25


async def one_round(client: httpx.AsyncClient, *, round_: int, nodes: int) -> dict[str, float]:
    """CPU ms per request type for one round of ``nodes`` nodes."""
    uuids: list[str] = []
    marks = [time.process_time()]
    for i in range(nodes):
        made = await client.post(
            "/v1/nodes", json={"driver": "fake-hardware", "name": f"r{round_}n{i}"}
        )
        uuids.append(made.raise_for_status().json()["uuid"])
    marks.append(time.process_time())
    for i, uuid in enumerate(uuids):
        mac = f"52:54:{round_ & 255:02x}:00:{i >> 8 & 255:02x}:{i & 255:02x}"
        (
            await client.post("/v1/ports", json={"node_uuid": uuid, "address": mac})
        ).raise_for_status()
    marks.append(time.process_time())
    for uuid in uuids:
        (await client.get(f"/v1/nodes/{uuid}/states")).raise_for_status()
    marks.append(time.process_time())
    polls = 0
    for target, wanted in (("manage", "manageable"), ("provide", "available")):
        for start in range(0, nodes, BATCH):
            batch = uuids[start : start + BATCH]
            for uuid in batch:
                path = f"/v1/nodes/{uuid}/states/provision"
                (await client.put(path, json={"target": target})).raise_for_status()
            await anyio.sleep(0.05)
            for uuid in batch:
                polls += await settle(client, uuid, wanted)
    marks.append(time.process_time())
    node, port, states, moves = (b - a for a, b in itertools.pairwise(marks))
    poll = states / nodes
    return {
        "POST /v1/nodes": node / nodes * 1000,
        "POST /v1/ports": port / nodes * 1000,
        "GET .../states": poll * 1000,
        "transition (PUT and its worker)": (moves - polls * poll) / (2 * nodes) * 1000,
    }


async def settle(client: httpx.AsyncClient, uuid: str, wanted: str) -> int:
    """Poll until the node rests; the number of polls.  Exits if it rests elsewhere."""
    polls = 0
    while True:
        polls += 1
        states = (await client.get(f"/v1/nodes/{uuid}/states")).raise_for_status().json()
        if states["target_provision_state"] is None:
            if states["provision_state"] != wanted:
                raise SystemExit(f"{uuid} stopped in {states['provision_state']}")
            return polls
        await anyio.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="metalcast-request-cpu-") as state:
        harness = api_harness.build(Path(state), "noauth")
        api = next(harness)
        logging.getLogger().handlers = [logging.NullHandler()]

        async def run() -> None:
            transport = httpx.ASGITransport(app=api.client.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(
                transport=transport, base_url=api_harness.BASE, headers=HEADERS
            ) as client:
                for round_ in range(args.rounds):
                    measured = await one_round(client, round_=round_, nodes=args.nodes)
                    for name, value in measured.items():
                        results.setdefault(name, []).append(value)

        anyio.run(run)
        next(harness, None)
    import metalcast

    print(f"tree: {Path(metalcast.__file__).parent.parent}")
    for name, values in results.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"{name}: {min(values):.3f} ms CPU (rounds: {rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
