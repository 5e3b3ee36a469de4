"""Parsing the server-sent event stream, and ``--wait`` without one."""

from __future__ import annotations

from collections.abc import Callable

from cli_fake_api import FakeIronic, Invocation

from metalcast.cli.events import Message, event_line, parse


def test_parse_reads_events_comments_and_control_messages() -> None:
    lines = [
        "retry: 2000",
        ": metalcast node events",
        "",
        "id: 7",
        'data: {"type": "updated",',
        'data:  "node_uuid": "u"}',
        "",
        ": heartbeat",
        "event: lost",
        'data: {"first_id": 9}',
        "",
    ]
    assert list(parse(lines)) == [
        Message(comment="metalcast node events"),
        Message(id=7, data={"type": "updated", "node_uuid": "u"}),
        Message(comment="heartbeat"),
        Message(event="lost", data={"first_id": 9}),
    ]


def test_an_event_line_shows_each_change() -> None:
    line = event_line(
        {
            "created_at": "2026-12-06T10:00:00+00:00",
            "node_uuid": "u1",
            "type": "updated",
            "changes": {"provision_state": {"old": "deploying", "new": "active"}},
        }
    )
    assert line.plain == "2026-12-06T10:00:00+00:00 u1 provision_state: deploying → active"
    gone = event_line(
        {"node_uuid": "u1", "type": "deleted", "changes": {"provision_state": {"old": "enroll"}}}
    )
    assert gone.plain.endswith("u1 deleted (enroll)")


def test_wait_polls_a_server_without_an_event_stream(
    fake_api: FakeIronic, run_cli: Callable[..., Invocation]
) -> None:
    """The fake API, like Ironic, has no GET /v1/events: --wait still finishes."""
    result = run_cli("node", "create", "--driver", "fake-hardware", "--name", "w1")
    assert result.exit_code == 0, result.stderr
    result = run_cli("node", "manage", "w1", "--wait", "30")
    assert result.exit_code == 0, result.stderr
    assert "GET /v1/events" in fake_api.requests  # asked once, answered 404: polled
