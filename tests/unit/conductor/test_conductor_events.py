"""The node event log as the conductor writes it (:mod:`metalcast.db.events`), and
the API process's shared tail of it (:class:`metalcast.api.stream.EventHub`)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from conductor_env import ALICE, Env

from metalcast.api.stream import EventHub, Subscriber
from metalcast.calls import SetMaintenance
from metalcast.conductor import steps
from metalcast.conductor.task import acquire
from metalcast.config import EventsSettings
from metalcast.context import acting_for
from metalcast.db import events
from metalcast.db import tables as t
from metalcast.db.events import NodeEvent
from metalcast.db.models import Node
from metalcast.db.rows import utcnow
from metalcast.drivers.base import StepProgress
from metalcast.states import Event


def _log(env: Env) -> list[NodeEvent]:
    with env.db.read() as conn:
        return events.after(conn, 0, limit=1000)


def _count_statements(env: Env, table: str) -> list[str]:
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if table in statement:
            seen.append(statement.split()[0])

    sa.event.listen(env.db.engine, "before_cursor_execute", note)
    return seen


def test_a_task_save_that_changes_watched_fields_adds_one_event_row(env: Env) -> None:
    node = env.create("manageable")
    statements = _count_statements(env, "node_events")
    with acquire(env.service.rt, node.id, user="alice", purpose="test") as task:
        task.update(power_state="power on", target_power_state=None)
        task.set_internal(agent_progress={"written": 10, "total": 100})
        task.save()
        task.set_internal(unrelated="x")  # nothing watched: no event
        task.save()
    assert statements == ["INSERT"]
    last = _log(env)[-1]
    assert last.type == "updated" and last.node_uuid == node.uuid
    assert last.changes == {
        "power_state": {"old": None, "new": "power on"},
        "progress": {"old": None, "new": {"written": 10, "total": 100}},
    }
    assert last.kinds == {"power_state", "progress"}


def test_a_step_the_bmc_carries_out_reports_its_progress_as_events(env: Env) -> None:
    node = env.create("manageable")
    with acquire(env.service.rt, node.id, user="alice", purpose="test") as task:
        steps.record_progress(task, StepProgress("firmware.update", "bmc", 40, "Running"))
        steps.record_progress(task, StepProgress("firmware.update", "bmc", 40, "Running"))
        steps.record_progress(task, StepProgress("firmware.update", "bmc", 90, "Running"))
    changes = [e.changes["progress"]["new"] for e in _log(env) if "progress" in e.kinds]
    assert changes == [  # the same report twice is one event
        {"step": "firmware.update", "target": "bmc", "percent": 40, "state": "Running"},
        {"step": "firmware.update", "target": "bmc", "percent": 90, "state": "Running"},
    ]


def test_a_failure_records_the_state_change_and_the_scrubbed_error(env: Env) -> None:
    node = env.create("manageable", driver_info={"ipmi_password": "Sekrit-Ev3nt"})
    with acquire(env.service.rt, node.id, user="alice", purpose="test") as task:
        task.process_event(Event.INSPECT)
        task.fail("BMC said no to Sekrit-Ev3nt")
    last = _log(env)[-1]
    assert last.changes["provision_state"] == {"old": "inspecting", "new": "inspect failed"}
    assert "Sekrit-Ev3nt" not in str(last.changes)
    assert "BMC said no" in last.changes["last_error"]["new"]


def test_maintenance_through_the_conductor_names_the_request(env: Env) -> None:
    node = env.create("manageable")
    with acting_for(ALICE):  # as the API's handlers and the RPC server run it
        env.service.execute(
            SetMaintenance(node_id=node.id, enabled=True, reason="disk"), context=ALICE
        )
    last = _log(env)[-1]
    assert last.changes["maintenance"] == {"old": False, "new": True}
    assert last.request_id == ALICE.request_id


def test_prune_keeps_the_newest_and_drops_the_old(env: Env) -> None:
    for _ in range(5):
        env.create("manageable")
    with env.db.begin() as conn:
        conn.execute(
            sa.update(t.node_events)
            .where(t.node_events.c.id == 1)
            .values(created_at=utcnow() - timedelta(days=3))
        )
        assert events.prune(conn, before=utcnow() - timedelta(days=1), keep=3) == 2
    assert [e.id for e in _log(env)] == [3, 4, 5]


def _insert(env: Env, event_id: int, node: Node) -> None:
    with env.db.begin() as conn:
        conn.execute(
            sa.insert(t.node_events).values(
                id=event_id,
                created_at=utcnow(),
                node_uuid=node.uuid,
                type="updated",
                changes={"maintenance": {"old": False, "new": True}},
            )
        )


def test_the_tail_delivers_an_event_committed_late_into_a_gap(env: Env) -> None:
    """As on PostgreSQL: id 12 commits before id 11."""
    node = env.create("manageable")
    hub = EventHub(env.db, EventsSettings())
    start = hub.cursor = _log(env)[-1].id
    _insert(env, start + 2, node)
    assert [e.id for e in hub.read()] == [start + 2]
    _insert(env, start + 1, node)
    assert [e.id for e in hub.read()] == [start + 1]
    assert hub.read() == []


def test_a_subscriber_keeps_what_its_filters_and_rights_let_through(env: Env) -> None:
    mine, theirs = env.create("manageable", owner="p1"), env.create("manageable", owner="p2")
    subscriber = Subscriber(allowed=lambda e: e.owner == "p1", kinds=frozenset({"maintenance"}))
    for node in (mine, theirs):
        env.service.execute(
            SetMaintenance(node_id=node.id, enabled=True, reason=None), context=ALICE
        )
    for event in _log(env):
        subscriber.offer(event)
    (kept,) = subscriber.take()
    assert kept.node_uuid == mine.uuid and kept.kinds == {"maintenance"}
