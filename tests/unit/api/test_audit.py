"""The audit log: every write through the API, refused ones too, with the caller and
the request id; never a body; read through GET /v1/audit by system readers only.
And a node's history names the caller's project beside its user."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from api_harness import Api, fault_of

from metalcast.api import audit
from metalcast.context import RequestContext
from metalcast.db import tables as t
from metalcast.db.engine import Database

ALICE = {"X-Roles": "member", "X-User-Id": "u-alice", "X-User-Name": "alice", "X-Project-Id": "p1"}
BOB = {"X-Roles": "member", "X-User-Id": "u-bob", "X-User-Name": "bob", "X-Project-Id": "p2"}
ADMIN = {
    "X-Roles": "admin",
    "X-User-Id": "u-root",
    "X-User-Name": "root",
    "OpenStack-System-Scope": "all",
}


def events(api: Api, query: str = "") -> list[dict[str, Any]]:
    response = api.get(f"/v1/audit{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def request_id(response: httpx.Response) -> str:
    return response.headers["X-OpenStack-Request-Id"]


def owned_node(api: Api, name: str, owner: str = "p1") -> dict[str, Any]:
    response = api.post(
        "/v1/nodes", {"driver": "fake-hardware", "name": name, "owner": owner}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def test_every_write_is_recorded_with_its_caller_and_outcome(secured: Api) -> None:
    mine = owned_node(secured, "mine")
    theirs = owned_node(secured, "theirs", owner="p2")
    patched = secured.patch(
        "/v1/nodes/mine", [{"op": "add", "path": "/extra/a", "value": 1}], headers=ALICE
    )
    hidden = secured.delete(f"/v1/nodes/{theirs['uuid']}", headers=ALICE)
    forbidden = secured.post("/v1/nodes", {"driver": "fake-hardware"}, headers=ALICE)
    anonymous = secured.post("/v1/nodes", {"driver": "fake-hardware"})
    taken = secured.post("/v1/nodes", {"driver": "fake-hardware", "name": "mine"}, headers=ADMIN)
    assert [r.status_code for r in (patched, hidden, forbidden, anonymous, taken)] == [
        200, 404, 403, 401, 409,
    ]  # fmt: skip

    by_request = {e["request_id"]: e for e in events(secured)}
    assert len(by_request) == 7  # two creates and the five above; no read
    row = by_request[request_id(patched)]
    assert row == {
        **row,
        "method": "PATCH",
        "path": "/v1/nodes/mine",
        "status": 200,
        "action": "baremetal:node:update",
        "user_id": "u-alice",
        "user_name": "alice",
        "project_id": "p1",
        "node_uuid": mine["uuid"],
        "resource_uuid": mine["uuid"],
    }
    assert by_request[request_id(hidden)]["status"] == 404
    assert by_request[request_id(hidden)]["user_name"] == "alice"
    assert by_request[request_id(forbidden)]["status"] == 403
    assert by_request[request_id(forbidden)]["action"] == "baremetal:node:create"
    unauthenticated = by_request[request_id(anonymous)]
    assert (unauthenticated["status"], unauthenticated["user_id"]) == (401, None)
    assert by_request[request_id(taken)]["status"] == 409
    assert by_request[request_id(taken)]["user_name"] == "root"


def test_a_created_resource_and_its_node_are_named(api: Api) -> None:
    node = api.node(name="n1")
    port = api.post("/v1/ports", {"address": "52:54:00:00:00:01", "node_uuid": "n1"}).json()
    deleted = api.delete(f"/v1/ports/{port['uuid']}")
    rows = {e["request_id"]: e for e in events(api)}
    created = next(e for e in rows.values() if e["path"] == "/v1/ports")
    assert (created["node_uuid"], created["resource_uuid"]) == (node["uuid"], port["uuid"])
    gone = rows[request_id(deleted)]
    assert (gone["node_uuid"], gone["resource_uuid"]) == (node["uuid"], port["uuid"])


def test_request_bodies_are_never_recorded(api: Api) -> None:
    secret = "s3cret-bmc-password"
    api.node(name="n1", driver_info={"ipmi_password": secret}, extra={"note": secret})
    patch = [{"op": "add", "path": "/driver_info/ipmi_password", "value": secret}]
    api.patch("/v1/nodes/n1", patch)
    assert len(events(api)) == 2
    with api.db.read() as conn:
        stored = conn.execute(sa.select(t.audit_events)).all()
    assert stored
    assert secret not in repr(stored)


def test_paths_are_stored_scrubbed_of_secrets(api: Api) -> None:
    # a path is free text the client chose: a password in it must not reach the table
    secret = "hunter2-in-a-path"
    refused = [
        api.delete(f"/v1/nodes/password={secret}"),
        api.patch(f"/v1/nodes/http:%2F%2Fadmin:{secret}@bmc.example", []),
    ]
    assert [r.status_code for r in refused] == [400, 404]
    paths = [e["path"] for e in events(api)]
    assert paths == ["/v1/nodes/password=******", "/v1/nodes/http://admin:******@bmc.example"]
    with api.db.read() as conn:
        stored = conn.execute(sa.select(t.audit_events)).all()
    assert secret not in repr(stored)


def test_reads_and_successful_heartbeats_are_not_audited(api: Api) -> None:
    api.node(name="n1")
    api.get("/v1/nodes")
    api.get("/v1/nodes/n1")
    assert [e["method"] for e in events(api)] == ["POST"]
    assert audit.audited("POST", "/v1/heartbeat/n1", 202) is False
    assert audit.audited("POST", "/v1/heartbeat/n1", 403) is True
    refused = api.post("/v1/heartbeat/n1", {"agent_token": "forged"})
    assert refused.status_code >= 400
    assert events(api)[-1]["path"] == "/v1/heartbeat/n1"


def test_filters_and_pages(secured: Api) -> None:
    first = owned_node(secured, "one")
    owned_node(secured, "two")
    secured.put("/v1/nodes/one/maintenance", {"reason": "x"}, headers=ALICE)
    secured.patch(
        "/v1/nodes/two", [{"op": "add", "path": "/extra/a", "value": 1}], headers=BOB
    )  # not bob's node: 404
    everything = events(secured)
    assert len(everything) == 4

    def paths(query: str) -> list[tuple[str, str]]:
        return [(e["method"], e["path"]) for e in events(secured, query)]

    assert paths("?node=one") == [("POST", "/v1/nodes"), ("PUT", "/v1/nodes/one/maintenance")]
    assert paths(f"?node={first['uuid'].upper()}") == paths("?node=one")
    assert paths("?user=alice") == paths("?user=u-alice") == [("PUT", "/v1/nodes/one/maintenance")]
    assert paths("?project=p2") == [("PATCH", "/v1/nodes/two")]
    assert paths("?method=patch") == [("PATCH", "/v1/nodes/two")]
    third = everything[2]["created_at"]
    assert third.endswith("+00:00")
    assert len(events(secured, f"?since={quote(third)}")) == 2
    assert len(events(secured, f"?since={third}")) == 2  # a '+' sent unescaped
    assert len(events(secured, f"?until={quote(third)}")) == 2
    assert events(secured, "?since=2999-01-01T00:00:00Z") == []

    page = secured.get("/v1/audit?limit=3&sort_dir=desc", headers=ADMIN).json()
    assert [e["uuid"] for e in page["events"]] == [e["uuid"] for e in reversed(everything)][:3]
    rest = secured.get(page["next"].removeprefix("http://testserver"), headers=ADMIN).json()
    assert [e["uuid"] for e in rest["events"]] == [everything[0]["uuid"]]


def test_bad_audit_queries_are_400(api: Api) -> None:
    for query, needle in [
        ("since=yesterday", "Invalid value for since"),
        ("method=GET", "Invalid value for method"),
        ("sort_key=path", "invalid field for sorting"),
        ("marker=nope", "Expected the marker"),
        ("status=200", "Unknown parameter(s) for listing audit events: status"),
    ]:
        response = api.get(f"/v1/audit?{query}")
        assert response.status_code == 400, query
        assert needle in fault_of(response)
    assert api.get("/v1/audit?node=missing").status_code == 404


def test_only_system_readers_read_the_audit_log(secured: Api) -> None:
    owned_node(secured, "mine")
    project_admin = {**ALICE, "X-Roles": "admin"}
    for headers in (ALICE, project_admin):
        response = secured.get("/v1/audit", headers=headers)
        assert response.status_code == 403
        assert "audit:list" in fault_of(response)
    system_reader = {**ADMIN, "X-Roles": "reader", "X-User-Id": "u-auditor"}
    listed = secured.get("/v1/audit", headers=system_reader)
    assert listed.status_code == 200
    assert [e["path"] for e in listed.json()["events"]] == ["/v1/nodes"]
    assert secured.get("/v1/audit").status_code == 401
    # served at every microversion, as the other metalcast extensions
    assert secured.get("/v1/audit", headers=ADMIN, version="1.1").status_code == 200


def test_history_names_the_callers_user_and_project(secured: Api) -> None:
    owned_node(secured, "mine")
    response = secured.put("/v1/nodes/mine/states/provision", {"target": "manage"}, headers=ALICE)
    assert response.status_code == 202
    secured.put("/v1/nodes/mine/maintenance", {"reason": "cabling"}, headers=ALICE)
    history = secured.get("/v1/nodes/mine/history?detail=true", headers=ADMIN).json()["history"]
    created, *by_alice = history
    assert (created["user"], created["project"]) == ("root", None)
    manage = [e for e in by_alice if "(manage)" in e["event"]]
    maintenance = [e for e in by_alice if e["event"].startswith("maintenance on")]
    assert manage and maintenance
    for entry in (*manage, *maintenance):
        assert (entry["user"], entry["project"]) == ("alice", "p1")
    brief = secured.get("/v1/nodes/mine/history", headers=ADMIN).json()["history"][0]
    assert "project" not in brief and "user" not in brief  # Ironic's short form


class StalledDatabase:
    """A real database whose transactions wait until the test lets them go."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.entered = threading.Event()
        self.go = threading.Event()

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        self.entered.set()
        assert self.go.wait(15), "the test never let the writer go"
        with self.db.begin() as conn:
            yield conn


def row(path: str) -> dict[str, Any]:
    context = RequestContext(user="u1", project="p1")
    note = audit.AuditNote()
    return audit.event(context, note, method="POST", path=path, status=201)


def test_a_stalled_database_never_blocks_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    db.migrate()
    stalled = StalledDatabase(db)
    log = audit.AuditLog(stalled, capacity=2)  # type: ignore[arg-type]
    log.record(row("/v1/first"))
    assert stalled.entered.wait(15)  # the writer holds the first and waits
    log.record(row("/v1/second"))
    log.record(row("/v1/third"))
    with caplog.at_level(logging.WARNING, logger="metalcast.api.audit"):
        log.record(row("/v1/fourth"))  # the queue is full: logged, not waited for
    assert "audit queue full; not recorded: POST /v1/fourth -> 201" in caplog.text
    assert log.flush(timeout=0) is False
    stalled.go.set()
    assert log.flush(timeout=15) is True
    log.close()
    with db.read() as conn:
        paths = conn.execute(sa.select(t.audit_events.c.path)).scalars().all()
    assert sorted(paths) == ["/v1/first", "/v1/second", "/v1/third"]
    db.dispose()


class CountingDatabase:
    """A real database that counts the transactions opened on it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions = 0

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        self.transactions += 1
        with self.db.begin() as conn:
            yield conn


def test_rows_recorded_together_are_written_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a window longer than the test: only flush ends it
    monkeypatch.setattr(audit, "BATCH_WINDOW", 3600.0)
    db = Database(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    db.migrate()
    counting = CountingDatabase(db)
    log = audit.AuditLog(counting)  # type: ignore[arg-type]
    for n in range(5):
        log.record(row(f"/v1/nodes/n{n}"))
    assert log.flush(timeout=15) is True
    assert counting.transactions == 1
    log.record(row("/v1/nodes/late"))
    log.close()  # writes what is queued at once, window or not
    assert counting.transactions == 2
    with db.read() as conn:
        paths = conn.execute(sa.select(t.audit_events.c.path)).scalars().all()
    assert sorted(paths) == sorted([*(f"/v1/nodes/n{n}" for n in range(5)), "/v1/nodes/late"])
    db.dispose()
