"""``kill -9`` of the all-in-one server under API writes: writers create nodes, each
with a port, and patch them, while the test SIGKILLs the server at random moments
and starts it again on the same database.  A writer whose answer was lost with the
server asks again (a 409 then says the first attempt got through).  Afterwards
every node that got 201 exists exactly once with its port, every port belongs to its
node, every patch that got 200 is there, nothing else was written, and no node is
locked.  ``METALCAST_FAULT_SEED`` repeats a run."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet import DEADLINE, Api, ServerHolder, StartServer, error_text, seeded

pytestmark = pytest.mark.faults

WRITERS = 6
ITEMS = 60  # per writer
KILLS = 3


@dataclass
class Ledger:
    """What the server answered, per node name."""

    created: set[str] = field(default_factory=set)
    ports: dict[str, str] = field(default_factory=dict)  # name -> port address
    patched: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    lost_answers: int = 0
    done_writes: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wrote(self) -> None:
        with self.cond:
            self.done_writes += 1
            self.cond.notify_all()


class Writer(threading.Thread):
    def __init__(self, holder: ServerHolder, ledger: Ledger, index: int) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.api = Api(holder)
        self.ledger = ledger
        self.index = index

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE
        try:
            for item in range(ITEMS):
                self._item(item, deadline)
        except Exception as exc:
            self.ledger.problems.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self.api.close()

    def _item(self, item: int, deadline: float) -> None:
        name = f"w{self.index}-{item}"
        address = f"52:54:{self.index:02x}:00:{item // 256:02x}:{item % 256:02x}"
        body: dict[str, Any] = {"name": name, "driver": "fake-hardware"}
        if self._write("POST", "/v1/nodes", body, name=name, deadline=deadline):
            self.ledger.created.add(name)
        node = self._until_answered("GET", f"/v1/nodes/{name}", None, deadline).json()
        port = {"address": address, "node_uuid": node["uuid"]}
        if self._write("POST", "/v1/ports", port, name=name, deadline=deadline):
            self.ledger.ports[name] = address
        patch = [{"op": "add", "path": "/extra/item", "value": item}]
        if self._write("PATCH", f"/v1/nodes/{name}", patch, name=name, deadline=deadline):
            self.ledger.patched.add(name)

    def _write(self, method: str, path: str, body: Any, *, name: str, deadline: float) -> bool:
        """True when the server said it was done (201/200); False when a retry after a
        lost answer found it done already (409)."""
        lost = False
        while True:
            assert time.monotonic() < deadline, f"{method} {path} never answered"
            response = self._until_answered(method, path, body, deadline, lost_flag=True)
            if response.status_code == 599:  # our marker for a lost answer
                lost = True
                self.ledger.lost_answers += 1
                continue
            if response.status_code in (200, 201):
                self.ledger.wrote()
                return True
            if response.status_code == 409 and lost and method == "POST":
                return False
            if response.status_code in (409, 503):
                error_text(response)  # locked, or the server is starting: ask again
                time.sleep(0.1)
                continue
            self.ledger.problems.append(f"{method} {path} ({name}): {response.text}")
            return False

    def _until_answered(
        self, method: str, path: str, body: Any, deadline: float, *, lost_flag: bool = False
    ) -> httpx.Response:
        while True:
            try:
                return self.api.request(method, path, json=body)
            except httpx.TransportError:
                self.api.wait_for_server(deadline)
                if lost_flag:
                    return httpx.Response(599)


def wait_for_writes(ledger: Ledger, writers: list[Writer], more: int, deadline: float) -> None:
    """Block until the writers have had ``more`` further writes answered (or ended)."""
    with ledger.cond:
        target = ledger.done_writes + more
        assert ledger.cond.wait_for(
            lambda: ledger.done_writes >= target or not any(w.is_alive() for w in writers),
            timeout=max(0.0, deadline - time.monotonic()),
        ), "writers stalled"


def test_kill_9_under_api_writes_loses_and_half_writes_nothing(
    run_server_in: StartServer, database_url: str, tmp_path: Path
) -> None:
    seed, rng = seeded(os.environ.get("METALCAST_FAULT_SEED"))
    holder = ServerHolder(
        run_server_in, tmp_path / "state", {"METALCAST_DATABASE__URL": database_url}
    )
    holder.start()
    ledger = Ledger()
    writers = [Writer(holder, ledger, i) for i in range(WRITERS)]
    api = Api(holder)
    try:
        for writer in writers:
            writer.start()
        total = WRITERS * ITEMS * 3
        deadline = time.monotonic() + DEADLINE
        for _ in range(KILLS):
            wait_for_writes(ledger, writers, rng.randint(1, total * 2 // 3 // KILLS), deadline)
            holder.restart_after_kill()
        for writer in writers:
            writer.join(timeout=max(0.0, deadline - time.monotonic()))
        check_ledger(api, ledger, seed=seed)
        print(
            f"{holder.restarts} kills, {len(ledger.created)} nodes created with 201, "
            f"{ledger.lost_answers} answers lost"
        )
    finally:
        api.close()
        holder.close()


def check_ledger(api: Api, ledger: Ledger, *, seed: int) -> None:
    where = f" (seed {seed})"
    assert ledger.problems == [], "\n".join(ledger.problems[:20]) + where
    nodes = api.request("GET", "/v1/nodes?fields=uuid,name,extra,reservation&limit=0")
    ports = api.request("GET", "/v1/ports?fields=address,node_uuid&limit=0")
    assert nodes.status_code == ports.status_code == 200
    names = Counter(n["name"] for n in nodes.json()["nodes"])
    expected = {f"w{w}-{i}" for w in range(WRITERS) for i in range(ITEMS)}
    assert set(names) == expected, f"nodes lost or unexpected{where}"
    assert set(names.values()) == {1}, f"nodes duplicated{where}"
    assert ledger.created <= expected
    by_uuid = {n["uuid"]: n for n in nodes.json()["nodes"]}
    port_of: dict[str, list[str]] = {}
    for port in ports.json()["ports"]:
        node = by_uuid.get(port["node_uuid"])
        assert node is not None, f"port {port['address']} of no node{where}"
        port_of.setdefault(node["name"], []).append(port["address"])
    for name, address in ledger.ports.items():
        assert port_of.get(name) == [address], f"{name}: ports {port_of.get(name)}{where}"
    # every port POST was asked again until answered: each node has its one port
    assert set(port_of) == expected, f"nodes without their port{where}"
    for node in nodes.json()["nodes"]:
        assert node["reservation"] is None, f"{node['name']} still locked{where}"
        if node["name"] in ledger.patched:
            assert node["extra"].get("item") is not None, f"{node['name']}: patch lost{where}"
