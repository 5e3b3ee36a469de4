"""What the fault tests share: a server that can be killed and started again on the
same database and state directory, operators that drive fake-hardware nodes through
their lifecycle over the API while that happens, and the checks made afterwards.

An operator (one thread, one resource class of nodes) lists its nodes, evaluates
the outcome of every verb it had accepted once the node rests again, and asks for the
next verb of the node's plan: manage, provide, then ``rounds`` times deploy and
undeploy, so that a node that went all the way ends ``available``.  A node that
failed is taken back the way an operator would (deploy failed and error: undeploy;
clean failed and enroll: manage).  What the operators saw that must not happen is
collected in :attr:`Fleet.violations`, never asserted in their threads.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
#: provision states in which a node is being worked on (states.WORK | states.WAIT)
BUSY = frozenset(
    {
        "verifying", "cleaning", "deploying", "deleting", "inspecting", "rescuing",
        "unrescuing", "adopting", "servicing", "inspect wait", "clean wait",
        "wait call-back", "rescue wait", "service wait",
    }
)  # fmt: skip
FAILED = frozenset(
    {
        "inspect failed", "clean failed", "deploy failed", "rescue failed",
        "unrescue failed", "adopt failed", "service failed", "error",
    }
)  # fmt: skip
#: verb -> the state it ends in when all goes well
EXPECT = {
    "manage": "manageable",
    "provide": "available",
    "active": "active",
    "deleted": "available",
}
#: a failed or enrolled node -> the verb that takes it back
RECOVER = {
    "enroll": "manage",
    "clean failed": "manage",
    "deploy failed": "deleted",
    "error": "deleted",
}
#: how many times one node is taken back from a failure before it is left there
MAX_RECOVERIES = 6
#: how long anything may take before the test gives up (a deadline, not a timing)
DEADLINE = float(os.environ.get("METALCAST_FAULT_DEADLINE", "240"))
POLL = 0.2

StartServer = Callable[..., contextlib.AbstractContextManager[Any]]


class ServerHolder:
    """The current ``metalcast server`` process of one state directory and database,
    which the test kills and starts again; operators wait while it is down."""

    def __init__(self, run_server_in: StartServer, state_dir: Path, env: Mapping[str, str]):
        self._run = run_server_in
        self.state_dir = state_dir
        self.env = dict(env)
        self.up = threading.Event()
        self.url = ""
        self.restarts = 0
        self._stack = contextlib.ExitStack()
        self._server: Any = None

    def start(self) -> None:
        self._server = self._stack.enter_context(self._run(self.state_dir, env=self.env))
        self.url = self._server.url
        self.up.set()

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no cleanup, whatever it was doing."""
        self.up.clear()
        self._server.process.kill()
        self._server.process.wait()
        self._stack.close()  # nothing to stop any more; scans its files for secrets
        self._stack = contextlib.ExitStack()

    def restart_after_kill(self) -> None:
        self.kill()
        self.start()
        self.restarts += 1

    @property
    def process(self) -> Any:
        return self._server.process

    def logs(self) -> str:
        return str(self._server.logs()) if self._server is not None else ""

    def close(self) -> None:
        """SIGTERM it (the fixture checks it exits 0)."""
        self._stack.close()
        self.up.clear()


class Api:
    """One thread's HTTP client to whichever server is current."""

    def __init__(self, holder: ServerHolder) -> None:
        self.holder = holder
        self.client = httpx.Client(headers=HEADERS, timeout=60)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt; raises httpx.TransportError when the server is gone."""
        return self.client.request(method, self.holder.url + path, **kwargs)

    def wait_for_server(self, deadline: float) -> None:
        """Block until the test has the server up again."""
        if not self.holder.up.wait(timeout=max(0.0, deadline - time.monotonic())):
            raise AssertionError("the server did not come back")

    def close(self) -> None:
        self.client.close()


def error_text(response: httpx.Response) -> str:
    """The faultstring of an Ironic error body (AssertionError if it is not one)."""
    outer = response.json()
    inner = orjson.loads(outer["error_message"])
    assert set(inner) == {"faultstring", "faultcode", "debuginfo"}, inner
    return str(inner["faultstring"])


@dataclass
class Pending:
    verb: str
    origin: str
    #: True once the server answered 202; False when the answer was lost
    accepted: bool


@dataclass
class NodeRecord:
    uuid: str
    name: str
    deploys: int = 0
    recoveries: int = 0
    pending: Pending | None = None
    done: bool = False


@dataclass
class Fleet:
    """Every operator's nodes and what they saw."""

    holder: ServerHolder
    rounds: int = 1
    violations: list[str] = field(default_factory=list)
    #: (node uuid, state, last_error) of every failure an operator saw
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    #: verb -> how many times it was accepted
    accepted_verbs: dict[str, int] = field(default_factory=dict)
    #: operators still driving their nodes
    running: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def note(self, status: int, verb: str | None = None) -> None:
        with self._cond:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                self.accepted += 1
                if verb is not None:
                    self.accepted_verbs[verb] = self.accepted_verbs.get(verb, 0) + 1
                self._cond.notify_all()

    def wait_accepted(self, count: int, deadline: float, *, verb: str | None = None) -> None:
        """Block until operators have had ``count`` verbs accepted in all (or ``count``
        of ``verb``), or have all finished their plans."""

        def seen() -> int:
            return self.accepted if verb is None else self.accepted_verbs.get(verb, 0)

        with self._cond:
            ok = self._cond.wait_for(
                lambda: seen() >= count or self.stop.is_set() or not self.running,
                timeout=max(0.0, deadline - time.monotonic()),
            )
        assert ok, f"operators stalled at {seen()} accepted {verb or 'verbs'}"

    def finished(self) -> None:
        """One operator is done with its nodes."""
        with self._cond:
            self.running -= 1
            self._cond.notify_all()

    def violation(self, text: str) -> None:
        with self._cond:
            self.violations.append(text)

    def failure(self, uuid: str, state: str, last_error: str) -> None:
        with self._cond:
            self.failures.append((uuid, state, last_error))


def create_nodes(
    api: Api, *, prefix: str, count: int, resource_class: str, driver_info: dict[str, Any]
) -> list[NodeRecord]:
    """``count`` fake-hardware nodes (the server must stay up meanwhile)."""
    out = []
    for index in range(count):
        body = {
            "name": f"{prefix}-{index}",
            "driver": "fake-hardware",
            "resource_class": resource_class,
            "driver_info": driver_info,
        }
        response = api.request("POST", "/v1/nodes", json=body)
        assert response.status_code == 201, response.text
        out.append(NodeRecord(response.json()["uuid"], body["name"]))
    return out


class Operator(threading.Thread):
    """Drives one resource class of nodes through the plan until each is done or left
    in a failure state; exceptions end up in :attr:`Fleet.violations`."""

    def __init__(self, fleet: Fleet, resource_class: str, nodes: list[NodeRecord]) -> None:
        super().__init__(name=f"operator-{resource_class}", daemon=True)
        self.fleet = fleet
        self.resource_class = resource_class
        self.nodes = {n.uuid: n for n in nodes}
        self.api = Api(fleet.holder)
        #: node uuid -> the row of the last listing (what a stuck node looked like)
        self.last_rows: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        try:
            self._loop(time.monotonic() + DEADLINE)
        except Exception as exc:  # reported by the test, with the seed
            self.fleet.violation(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self.api.close()
            self.fleet.finished()

    def _loop(self, deadline: float) -> None:
        while not all(n.done for n in self.nodes.values()):
            if time.monotonic() > deadline:
                stuck = [n for n in self.nodes.values() if not n.done]
                raise AssertionError(
                    f"nodes still not done: {[n.name for n in stuck][:10]}\n"
                    + "\n".join(self._describe(n) for n in stuck[:3])
                )
            rows = self._list(deadline)
            if rows is not None:
                for row in rows:
                    self.last_rows[row["uuid"]] = row
                    self._step(row, deadline)
            time.sleep(POLL)

    def _describe(self, node: NodeRecord) -> str:
        """What a node that did not finish looked like last, and its latest history."""
        text = f"{node.name}: last seen {self.last_rows.get(node.uuid)}, pending {node.pending}"
        try:
            response = self.api.request("GET", f"/v1/nodes/{node.uuid}/history")
            events = response.json()["history"][-6:] if response.status_code == 200 else []
        except httpx.TransportError as exc:
            return f"{text}; history unreadable: {exc}"
        lines = [f"  {e['created_at']} {e['severity']} {e['event']}" for e in events]
        return "\n".join([text, *lines])

    def _list(self, deadline: float) -> list[dict[str, Any]] | None:
        fields = "uuid,name,provision_state,last_error,reservation"
        try:
            response = self.api.request(
                "GET", f"/v1/nodes?resource_class={self.resource_class}&fields={fields}&limit=0"
            )
        except httpx.TransportError:
            self.api.wait_for_server(deadline)
            return None
        self.fleet.note(response.status_code)
        if response.status_code == 503:
            error_text(response)
            return None
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["nodes"]
        return rows

    def _step(self, row: dict[str, Any], deadline: float) -> None:
        node = self.nodes[row["uuid"]]
        state = row["provision_state"]
        if node.done or state in BUSY or row["reservation"]:
            return
        if node.pending is not None:
            self._outcome(node, row)
        verb = self._next_verb(node, state)
        if verb is None:
            node.done = True
            return
        if self.fleet.stop.is_set():
            node.done = True  # told to wind down: a resting node stays where it is
            return
        self._ask(node, verb, origin=state, deadline=deadline)

    def _outcome(self, node: NodeRecord, row: dict[str, Any]) -> None:
        pending, state = node.pending, row["provision_state"]
        assert pending is not None
        node.pending = None
        if state == EXPECT[pending.verb]:
            node.deploys += pending.verb == "active"
            return
        failed = state in FAILED or (state == "enroll" and pending.verb == "manage")
        if failed and (state != pending.origin or pending.accepted):
            if not row["last_error"]:
                self.fleet.violation(f"{node.name}: {state} without last_error")
            self.fleet.failure(node.uuid, state, row["last_error"] or "")
            node.recoveries += 1
            return
        if state == pending.origin and not pending.accepted:
            return  # the request was lost with the server: ask again
        self.fleet.violation(
            f"{node.name}: {pending.verb} from {pending.origin} "
            f"({'accepted' if pending.accepted else 'answer lost'}) ended in {state}"
        )

    def _next_verb(self, node: NodeRecord, state: str) -> str | None:
        if state in RECOVER:
            return RECOVER[state] if node.recoveries <= MAX_RECOVERIES else None
        if state == "manageable":
            return "provide"
        if state == "available":
            return "active" if node.deploys < self.fleet.rounds else None
        if state == "active":
            return "deleted"
        if state in FAILED:
            return None  # nothing in the plan leads here: left for the checks
        self.fleet.violation(f"{node.name}: unexpected resting state {state}")
        return None

    def _ask(self, node: NodeRecord, verb: str, *, origin: str, deadline: float) -> None:
        path = f"/v1/nodes/{node.uuid}/states/provision"
        try:
            response = self.api.request("PUT", path, json={"target": verb})
        except httpx.TransportError:
            node.pending = Pending(verb, origin, accepted=False)
            self.api.wait_for_server(deadline)
            return
        self.fleet.note(response.status_code, verb)
        if response.status_code == 202:
            node.pending = Pending(verb, origin, accepted=True)
        elif response.status_code in (409, 503):
            error_text(response)  # locked or no free worker: asked again next time
        else:
            self.fleet.violation(f"{node.name}: {verb} from {origin}: {response.text}")


@contextlib.contextmanager
def operators(fleet: Fleet, groups: Mapping[str, list[NodeRecord]]) -> Iterator[list[Operator]]:
    """Operator threads for ``groups`` (resource class -> nodes), joined on exit."""
    threads = [Operator(fleet, rc, nodes) for rc, nodes in groups.items()]
    fleet.running = len(threads)
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        fleet.stop.set()
        for thread in threads:
            thread.join(timeout=DEADLINE)


def check_invariants(api: Api, fleet: Fleet, *, names: set[str], seed: int | None) -> None:
    """After the faults: every node exists once, rests, holds no lock, and is where
    its plan ends or in a failure state whose last_error (and history) say why."""
    where = f" (seed {seed})" if seed is not None else ""
    assert fleet.violations == [], f"{len(fleet.violations)} violation(s){where}: " + "\n".join(
        fleet.violations[:20]
    )
    assert 500 not in fleet.statuses, f"500 answers{where}: {fleet.statuses}"
    fields = "uuid,name,provision_state,last_error,reservation,target_provision_state"
    response = api.request("GET", f"/v1/nodes?fields={fields}&limit=0")
    assert response.status_code == 200, response.text
    rows = [r for r in response.json()["nodes"] if r["name"] in names]
    seen = [r["name"] for r in rows]
    assert len(seen) == len(set(seen)) == len(names), f"nodes lost or duplicated{where}"
    for row in rows:
        assert row["reservation"] is None, f"{row['name']} still locked{where}: {row}"
        assert row["provision_state"] not in BUSY, f"{row['name']} still busy{where}: {row}"
        if row["provision_state"] != "available":
            assert row["provision_state"] in FAILED | {"enroll"}, f"{row}{where}"
            assert row["last_error"], f"{row['name']} failed without a reason{where}"
    for uuid, state, last_error in fleet.failures:
        events = api.request("GET", f"/v1/nodes/{uuid}/history").json()["history"]
        assert any(e["severity"] == "ERROR" and last_error in e["event"] for e in events), (
            f"{uuid}: no history row for {state}: {last_error!r}{where}"
        )


def seeded(env_value: str | None) -> tuple[int, random.Random]:
    """The run's seed (``env_value`` or a new one) and its generator."""
    seed = int(env_value) if env_value else random.SystemRandom().randrange(2**32)
    print(f"fault test seed: {seed} (METALCAST_FAULT_SEED={seed} repeats it)")
    return seed, random.Random(seed)
