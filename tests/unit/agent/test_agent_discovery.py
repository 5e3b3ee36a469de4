"""Discovery in the agent: booted with ``metalcast.discovery=1``, a lookup that finds
nothing makes it report the machine's inventory once; enrolled, it powers off;
refused, it goes on looking itself up; unanswered, it reports again later."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from agent_machine import FakeMachine, write

from metalcast_agent.agent import Agent
from metalcast_agent.commands import CommandRunner
from metalcast_agent.config import AgentConfig, load_config
from metalcast_agent.discovery import Discovery, Outcome
from metalcast_agent.errors import ApiError, ApiUnreachable
from metalcast_agent.hardware import collect_inventory
from metalcast_agent.log import LogBuffer, setup_logging
from metalcast_agent.protocol import HeartbeatAnswer, HeartbeatBody, Inventory, LookupAnswer

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
MAC = "52:54:00:12:34:56"
NOT_FOUND = ApiError("Lookup failed: HTTP 404 Not Found", status=404)


@dataclass
class FakeApi:
    """Lookups find nothing; each report takes the next answer (an error is raised)."""

    answers: list[str | ApiError] = field(default_factory=list)
    reports: list[Mapping[str, object]] = field(default_factory=list)
    lookups: int = 0

    def lookup(self, macs: Sequence[str]) -> LookupAnswer:
        self.lookups += 1
        raise NOT_FOUND

    def heartbeat(self, node_uuid: str, body: HeartbeatBody) -> HeartbeatAnswer:
        raise AssertionError("a discovered machine never heartbeats")

    def continue_inspection(self, report: Mapping[str, object]) -> str:
        self.reports.append(report)
        answer = self.answers.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        return answer


@dataclass
class Harness:
    api: FakeApi
    agent: Agent
    powered: list[str]
    console: io.StringIO


@pytest.fixture
def harness(machine: FakeMachine) -> Iterator[Harness]:
    machine.add_nic("eth0", MAC)
    buffer, console = LogBuffer(), io.StringIO()
    logger = setup_logging(buffer, console=console)
    powered: list[str] = []

    def power(action: str) -> bool:
        powered.append(action)
        return True

    api = FakeApi()
    config = AgentConfig(api_url="http://127.0.0.1:9", heartbeat_interval=5.0, env=machine.env)
    runner = CommandRunner({}, machine.env)
    agent = Agent(config, api, runner, buffer, macs=lambda: [MAC], power=power)
    agent.discovery = Discovery(api, lambda: collect_inventory(machine.env))
    yield Harness(api, agent, powered, console)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_an_enrolled_machine_reports_its_inventory_once_and_powers_off(harness: Harness) -> None:
    harness.api.answers = [NODE]

    assert harness.agent.step() is None  # the loop ends

    [report] = harness.api.reports
    inventory = report["inventory"]
    assert isinstance(inventory, dict)
    assert [nic["mac_address"] for nic in inventory["interfaces"]] == [MAC]
    assert harness.powered == ["power_off"]
    assert f"enrolled as node {NODE}" in harness.console.getvalue()


def test_a_refused_report_is_not_repeated_and_the_agent_keeps_looking_up(
    harness: Harness,
) -> None:
    harness.api.answers = [ApiError("Discovery failed: HTTP 409 Conflict", status=409)]

    assert harness.agent.step() == 5.0
    assert harness.agent.step() == 5.0

    assert len(harness.api.reports) == 1
    assert harness.api.lookups == 2
    assert harness.powered == []
    assert "waiting to be provisioned instead" in harness.console.getvalue()


@pytest.mark.parametrize(
    "failure",
    [ApiUnreachable("Discovery failed: cannot reach x"), ApiError("HTTP 503", status=503)],
)
def test_an_unanswered_report_is_sent_again_at_the_next_lookup(
    harness: Harness, failure: ApiError
) -> None:
    harness.api.answers = [failure, NODE]

    assert harness.agent.step() == 5.0
    assert harness.agent.step() is None

    assert len(harness.api.reports) == 2
    assert harness.powered == ["power_off"]


def test_without_discovery_a_lookup_miss_reports_nothing(harness: Harness) -> None:
    harness.agent.discovery = None

    assert harness.agent.step() == 5.0

    assert harness.api.reports == []


def test_an_inventory_that_cannot_be_collected_is_not_reported() -> None:
    def broken() -> Inventory:
        raise OSError("no /sys")

    api = FakeApi(answers=[NODE])
    discovery = Discovery(api, broken)

    assert discovery.report() is Outcome.REFUSED
    assert discovery.report() is Outcome.REFUSED
    assert api.reports == []


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("metalcast.api=http://a:1 metalcast.discovery=1", True),
        ("metalcast.api=http://a:1 metalcast.discovery", True),
        ("metalcast.api=http://a:1 metalcast.discovery=0", False),
        ("metalcast.api=http://a:1", False),
    ],
)
def test_the_kernel_command_line_turns_discovery_on(
    machine: FakeMachine, cmdline: str, expected: bool
) -> None:
    write(machine.env.proc_root / "cmdline", cmdline + "\n")
    argv = [f"--proc-root={machine.env.proc_root}", f"--sys-root={machine.env.sys_root}"]

    assert load_config(argv, {}).discovery is expected
