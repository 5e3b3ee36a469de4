"""The protocol loop: lookup, heartbeats, commands, results, power (docs/agent-protocol.md)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from agent_machine import FakeMachine

from metalcast_agent import AGENT_VERSION
from metalcast_agent.agent import NOT_FOUND_LIMIT, Agent
from metalcast_agent.commands import CommandContext, CommandRunner, Handler
from metalcast_agent.config import AgentConfig
from metalcast_agent.errors import AgentError, ApiError, ApiUnreachable
from metalcast_agent.handlers import power_off
from metalcast_agent.log import LogBuffer, get_logger, setup_logging
from metalcast_agent.protocol import CommandSpec, HeartbeatAnswer, HeartbeatBody, LookupAnswer

TOKEN = "tok-6f1c2b0e-secret"
NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
MACS = ["52:54:00:12:34:56"]


@dataclass
class FakeApi:
    """A scripted conductor: each call takes the next answer (an error is raised)."""

    lookups: list[LookupAnswer | ApiError] = field(default_factory=list)
    heartbeats: list[HeartbeatAnswer | ApiError] = field(default_factory=list)
    looked_up: list[list[str]] = field(default_factory=list)
    sent: list[HeartbeatBody] = field(default_factory=list)

    def lookup(self, macs: Sequence[str]) -> LookupAnswer:
        self.looked_up.append(list(macs))
        answer = self.lookups.pop(0) if self.lookups else LookupAnswer(NODE, TOKEN, None)
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def heartbeat(self, node_uuid: str, body: HeartbeatBody) -> HeartbeatAnswer:
        assert node_uuid == NODE
        self.sent.append(json.loads(json.dumps(body)))
        answer = self.heartbeats.pop(0) if self.heartbeats else HeartbeatAnswer((), None, None)
        if isinstance(answer, ApiError):
            raise answer
        return answer


def command(name: str, cid: str, **args: object) -> HeartbeatAnswer:
    return HeartbeatAnswer((), CommandSpec(id=cid, name=name, args=dict(args)), None)


def ack(*ids: str) -> HeartbeatAnswer:
    return HeartbeatAnswer(ids, None, None)


def echo(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    return dict(args)


def fails(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    raise AgentError("Disk /dev/vda (1.0 GiB) is too small for the image (2.0 GiB)")


def crashes(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    raise KeyError("surprise")


@dataclass
class Harness:
    api: FakeApi
    agent: Agent
    runner: CommandRunner
    console: io.StringIO
    powered: list[str]
    gate: threading.Event
    started: threading.Event

    def step(self) -> float | None:
        return self.agent.step()

    def finish(self) -> None:
        """Wait for the running command (a thread join, not a sleep)."""
        self.runner.join(timeout=10)

    def all_log_text(self) -> str:
        shipped = "\n".join(line for body in self.api.sent for line in body.get("log", []))
        return self.console.getvalue() + shipped


@pytest.fixture
def harness(machine: FakeMachine) -> Iterator[Harness]:
    buffer, console = LogBuffer(), io.StringIO()
    logger = setup_logging(buffer, console=console)
    gate, started = threading.Event(), threading.Event()

    def blocks(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
        ctx.report_progress(3, 10)
        started.set()
        gate.wait(10)
        return {}

    handlers: dict[str, Handler] = {
        "echo": echo,
        "fails": fails,
        "crashes": crashes,
        "blocks": blocks,
        "power_off": power_off,
    }
    wake = threading.Event()
    runner = CommandRunner(handlers, machine.env, on_finish=wake.set)
    powered: list[str] = []

    def power(action: str) -> bool:
        powered.append(action)
        return True

    config = AgentConfig(api_url="http://127.0.0.1:9", heartbeat_interval=5.0, env=machine.env)
    api = FakeApi()
    agent = Agent(config, api, runner, buffer, macs=lambda: list(MACS), power=power, wake=wake)
    yield Harness(api, agent, runner, console, powered, gate, started)
    gate.set()
    runner.join(timeout=10)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_lookup_is_retried_until_a_node_waits(harness: Harness) -> None:
    harness.api.lookups = [ApiError("Lookup failed: HTTP 404 Not Found", status=404)] * 2

    assert harness.step() == 5.0
    assert harness.step() == 5.0
    assert harness.step() == 0.0  # found: heartbeat at once
    harness.step()

    assert harness.api.looked_up == [MACS] * 3
    body = harness.api.sent[0]
    assert body["agent_token"] == TOKEN
    assert body["agent_version"] == AGENT_VERSION
    assert body["results"] == []
    assert "progress" not in body
    # a repeated lookup failure is logged once a minute, not every time
    assert harness.console.getvalue().count("Lookup failed: HTTP 404") == 1


def test_the_token_is_never_logged(harness: Harness) -> None:
    harness.api.heartbeats = [ApiError("Heartbeat failed: HTTP 401 Unauthorized", status=401)]
    for _ in range(4):
        harness.step()
    get_logger().info("done")
    harness.step()

    assert TOKEN not in harness.all_log_text()
    assert "this is node " + NODE in harness.all_log_text()


def test_401_goes_back_to_lookup_and_a_masked_token_keeps_the_old_one(harness: Harness) -> None:
    harness.api.heartbeats = [ApiError("Heartbeat failed: HTTP 401 Unauthorized", status=401)]
    harness.api.lookups = [LookupAnswer(NODE, TOKEN, None), LookupAnswer(NODE, None, None)]

    harness.step()  # lookup
    harness.step()  # 401
    assert harness.agent.node_uuid is None
    harness.step()  # lookup: token masked
    harness.step()

    assert len(harness.api.looked_up) == 2
    assert harness.api.sent[-1]["agent_token"] == TOKEN
    assert harness.runner.downloads.token == TOKEN  # commands download with it too


def test_ten_404s_in_a_row_go_back_to_lookup(harness: Harness) -> None:
    not_found = ApiError("Heartbeat failed: HTTP 404 Not Found", status=404)
    conflict = ApiError("Heartbeat failed: HTTP 409 Conflict", status=409)
    answers: list[HeartbeatAnswer | ApiError] = [not_found] * 9
    harness.api.heartbeats = [*answers, conflict, *[not_found] * NOT_FOUND_LIMIT]

    harness.step()  # lookup
    for _ in range(10 + NOT_FOUND_LIMIT - 1):
        assert harness.step() == 5.0
        assert harness.agent.node_uuid == NODE
    harness.step()

    assert harness.agent.node_uuid is None


def test_no_answer_and_5xx_are_retried_at_the_interval(harness: Harness) -> None:
    harness.api.heartbeats = [
        ApiUnreachable("Heartbeat failed: cannot reach http://127.0.0.1:9: refused"),
        ApiError("Heartbeat failed: HTTP 503 Service Unavailable", status=503),
        HeartbeatAnswer((), None, 2.5),
    ]

    harness.step()
    assert [harness.step() for _ in range(3)] == [5.0, 5.0, 2.5]
    assert harness.agent.node_uuid == NODE


def test_results_are_sent_until_acked_and_a_repeated_command_runs_once(harness: Harness) -> None:
    harness.api.heartbeats = [
        command("echo", "c1", x=1),
        command("echo", "c1", x=1),
        ack(),
        ack("c1"),
    ]

    harness.step()
    harness.step()  # hands out c1
    harness.finish()
    assert harness.agent.wake.is_set(), "a finished command wakes the loop at once"
    harness.step()  # sends c1's result; c1 handed out again: ignored
    harness.finish()
    harness.step()  # not acked: sent again
    harness.step()  # sent again, acked
    harness.step()

    results = [body["results"] for body in harness.api.sent]
    expected = {
        "id": "c1",
        "name": "echo",
        "status": "succeeded",
        "result": {"x": 1},
        "error": None,
    }
    assert results == [[], [expected], [expected], [expected], []]


def test_failures_become_results_and_the_agent_lives_on(harness: Harness) -> None:
    harness.api.heartbeats = [
        command("fails", "c1"),
        ack("c1"),
        command("crashes", "c2"),
        ack("c2"),
        command("nope", "c3"),
    ]
    harness.step()
    for _ in range(5):
        harness.step()
        harness.finish()
    harness.step()

    errors = [r["error"] for body in harness.api.sent for r in body["results"]]
    assert errors == [
        "Disk /dev/vda (1.0 GiB) is too small for the image (2.0 GiB)",
        "crashes failed unexpectedly: KeyError: 'surprise'",
        "Unknown command 'nope'; this agent knows: blocks, crashes, echo, fails, power_off",
    ]
    assert "Traceback" in harness.console.getvalue()


def test_progress_while_running_and_one_command_at_a_time(harness: Harness) -> None:
    harness.api.heartbeats = [command("blocks", "c1"), command("echo", "c2")]

    harness.step()
    harness.step()  # starts c1
    assert harness.started.wait(10)
    harness.step()  # c2 arrives while c1 runs: refused
    harness.step()

    progress = harness.api.sent[-1]["progress"]
    assert {k: progress[k] for k in ("id", "name", "done", "total")} == {
        "id": "c1",
        "name": "blocks",
        "done": 3,
        "total": 10,
    }
    assert progress["rate"] >= 0
    [refused] = harness.api.sent[-1]["results"]
    assert refused["status"] == "failed"
    assert refused["error"] == (
        "Command echo (c2) refused: blocks (c1) is still running; send one command at a time"
    )
    harness.gate.set()
    harness.finish()
    harness.step()
    assert "progress" not in harness.api.sent[-1]


def test_power_off_is_reported_before_it_happens(harness: Harness) -> None:
    harness.api.heartbeats = [command("power_off", "p1"), ack(), ack("p1")]

    harness.step()
    assert harness.step() == 5.0  # hands out power_off
    harness.finish()
    assert harness.step() == 5.0  # result sent, not acked yet
    assert harness.powered == []
    assert harness.step() is None  # acked: power off, loop ends

    assert harness.powered == ["power_off"]
    assert harness.api.sent[-1]["results"][0]["name"] == "power_off"


def test_power_off_happens_even_when_the_conductor_does_not_ack(harness: Harness) -> None:
    down = ApiUnreachable("Heartbeat failed: cannot reach http://127.0.0.1:9: refused")
    harness.api.heartbeats = [command("power_off", "p1"), down, down, down]

    harness.step()
    harness.step()
    harness.finish()
    delays = [harness.step() for _ in range(3)]

    assert delays == [5.0, 5.0, None]
    assert harness.powered == ["power_off"]


def test_at_most_200_log_lines_per_heartbeat_kept_until_accepted(harness: Harness) -> None:
    harness.api.heartbeats = [ApiError("Heartbeat failed: HTTP 503 x", status=503)]
    harness.step()  # lookup: logs a line
    for number in range(300):
        get_logger().info("line %d", number)

    harness.step()  # 503: nothing committed
    harness.step()
    harness.step()

    first, second, third = (body["log"] for body in harness.api.sent)
    assert len(first) == 200 and first == second
    assert first[0].endswith(f"this is node {NODE} (MACs {MACS[0]})")
    assert second[-1].endswith("line 198")
    assert third[0].endswith("line 199")
    assert third[-1].endswith("line 299") or "WARNING" in third[-1]


def test_a_result_too_large_for_the_server_is_reported_as_failed(harness: Harness) -> None:
    too_large = ApiError("Heartbeat failed: HTTP 413 Request Entity Too Large", status=413)
    harness.api.heartbeats = [command("echo", "c1", blob="x" * 100), too_large, ack("c1")]

    harness.step()  # lookup
    harness.step()  # the command arrives
    harness.finish()
    harness.step()  # its result: refused as too large
    harness.step()  # reported again, as a failure

    sent = harness.api.sent[-1]["results"]
    assert [(r["id"], r["status"], r["result"]) for r in sent] == [("c1", "failed", {})]
    assert "larger than metalcast accepts" in str(sent[0]["error"])
    assert harness.runner.results() == []  # acknowledged
