"""Deciding when a waited-for request has finished."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from cli_fake_api import BASE, FakeIronic

from metalcast.cli.client import ApiClient
from metalcast.cli.waiting import (
    AgentProgress,
    Mark,
    ProgressLine,
    Verdict,
    describe,
    failure_message,
    is_busy,
    judge_power,
    judge_provision,
    judge_rest,
    size_text,
    wait_for,
    worth_printing,
)

MIB = 2**20


def node(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provision_state": "available",
        "target_provision_state": None,
        "provision_updated_at": "t0",
        "power_state": "power off",
        "target_power_state": None,
        "last_error": None,
    }
    base.update(fields)
    return base


BEFORE = Mark.of(node())


@pytest.mark.parametrize(
    ("fields", "expected", "verdict"),
    [
        ({}, "active", Verdict.WAITING),  # nothing moved yet
        (
            {"provision_state": "deploying", "target_provision_state": "active"},
            "active",
            Verdict.WAITING,
        ),
        (
            {"provision_state": "wait call-back", "provision_updated_at": "t1"},
            "active",
            Verdict.WAITING,
        ),
        ({"provision_state": "active", "provision_updated_at": "t2"}, "active", Verdict.REACHED),
        (
            {"provision_state": "deploy failed", "provision_updated_at": "t2"},
            "active",
            Verdict.FAILED,
        ),
        (
            {"provision_state": "manageable", "provision_updated_at": "t2"},
            "available",
            Verdict.FAILED,
        ),
        ({"provision_state": "clean failed", "provision_updated_at": "t2"}, None, Verdict.REACHED),
        # a hold step: the request has gone as far as it goes until the operator's unhold
        (
            {
                "provision_state": "clean hold",
                "target_provision_state": "manageable",
                "provision_updated_at": "t2",
            },
            "manageable",
            Verdict.REACHED,
        ),
    ],
)
def test_judge_provision(fields: dict[str, Any], expected: str | None, verdict: Verdict) -> None:
    assert judge_provision(node(**fields), expected=expected, before=BEFORE) is verdict


def test_a_failed_manage_back_in_enroll_is_a_failure() -> None:
    before = Mark.of(node(provision_state="enroll"))
    after = node(provision_state="enroll", provision_updated_at="t1", last_error="bad BMC")
    assert judge_provision(after, expected="manageable", before=before) is Verdict.FAILED


def test_a_request_back_to_the_same_state_counts_once_it_moved() -> None:
    before = Mark.of(node(provision_state="manageable"))
    same = node(provision_state="manageable")
    assert judge_provision(same, expected="manageable", before=before) is Verdict.WAITING
    moved = node(provision_state="manageable", provision_updated_at="t9")
    assert judge_provision(moved, expected="manageable", before=before) is Verdict.REACHED


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({"target_power_state": "power on"}, Verdict.WAITING),
        ({"power_state": "power on"}, Verdict.REACHED),
        ({"power_state": "power off"}, Verdict.WAITING),
        ({"power_state": "power off", "last_error": "BMC said no"}, Verdict.FAILED),
        ({"power_state": "error"}, Verdict.FAILED),
    ],
)
def test_judge_power(fields: dict[str, Any], verdict: Verdict) -> None:
    assert judge_power(node(**fields), expected="power on", before=BEFORE) is verdict


def test_describe_and_failure_message() -> None:
    busy = node(provision_state="deploying", target_provision_state="active")
    assert describe(busy) == "deploying → active"
    powering = node(target_power_state="power on")
    assert describe(powering) == "available, power off → power on"
    failed = node(provision_state="deploy failed", last_error="disk on fire")
    assert failure_message("n1", failed, wanted="active") == (
        "node n1 ended in 'deploy failed': disk on fire"
    )
    wrong = node(provision_state="enroll")
    assert failure_message("n1", wrong, wanted="manageable") == (
        "node n1 ended in 'enroll' instead of 'manageable': no error recorded"
    )


def reporting(**report: Any) -> dict[str, Any]:
    """A node deploying whose agent last reported ``report``."""
    return node(
        provision_state="wait call-back",
        target_provision_state="active",
        driver_internal_info={"agent_url": "http://10.0.0.5:9999", "agent_progress": report},
    )


WRITING = {"id": "c1", "name": "write_image", "done": 120 * MIB, "total": 256 * MIB}


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (120 * MIB, "120.0 MiB"),
        (12.3 * MIB, "12.3 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (2**60, "1024.0 PiB"),
    ],
)
def test_size_text(count: float, text: str) -> None:
    assert size_text(count) == text


@pytest.mark.parametrize(
    ("report", "text"),
    [
        ({**WRITING, "rate": 12.3 * MIB}, "write_image 120.0 MiB of 256.0 MiB (47%), 12.3 MiB/s"),
        ({**WRITING, "total": None, "rate": 12.3 * MIB}, "write_image 120.0 MiB, 12.3 MiB/s"),
        ({**WRITING, "total": 0, "rate": 1.0}, "write_image 120.0 MiB, 1 B/s"),
        ({**WRITING, "rate": 0.0}, "write_image 120.0 MiB of 256.0 MiB (47%)"),
        (WRITING, "write_image 120.0 MiB of 256.0 MiB (47%)"),  # no rate at all
        (
            {"name": "write_image", "done": 0, "total": 256 * MIB, "rate": 0},
            "write_image 0 B of 256.0 MiB (0%)",
        ),
        ({"done": 5 * MIB, "total": 10 * MIB}, "5.0 MiB of 10.0 MiB (50%)"),  # no name
        ({"name": "erase_metadata"}, "erase_metadata"),  # no byte count
        ({"name": "write_image", "done": "lots", "total": True, "rate": -3}, "write_image"),
    ],
)
def test_agent_progress_says_what_is_known(report: dict[str, Any], text: str) -> None:
    progress = AgentProgress.of(reporting(**report))
    assert progress is not None
    assert str(progress) == text


@pytest.mark.parametrize(
    "fields",
    [
        {},  # an older API version: no driver_internal_info
        {"driver_internal_info": None},
        {"driver_internal_info": {}},
        {"driver_internal_info": {"agent_progress": None}},
        {"driver_internal_info": {"agent_progress": "47%"}},
        {"driver_internal_info": {"agent_progress": {"rate": 5.0}}},  # neither name nor bytes
    ],
)
def test_no_usable_progress_shows_nothing(fields: dict[str, Any]) -> None:
    assert AgentProgress.of(node(**fields)) is None
    assert ProgressLine.of(node(**fields)).text == "available"


@pytest.mark.parametrize(
    ("done", "percent"),
    [(0, 0), (6, 1), (470, 47), (994, 99), (999, 99), (1000, 100), (1200, 100)],
)
def test_percent_reaches_100_only_when_all_is_done(done: int, percent: int) -> None:
    progress = AgentProgress.of(reporting(name="write_image", done=done, total=1000))
    assert progress is not None and progress.percent == percent


def test_progress_line_joins_state_and_agent_while_busy() -> None:
    line = ProgressLine.of(reporting(**WRITING, rate=12.3 * MIB))
    assert line.text == (
        "wait call-back → active · write_image 120.0 MiB of 256.0 MiB (47%), 12.3 MiB/s"
    )
    assert line.step == ("wait call-back → active", "write_image")
    rested = {**reporting(**WRITING), "provision_state": "deploy failed"}
    rested["target_provision_state"] = None
    assert ProgressLine.of(rested).text == "deploy failed"  # a leftover report


def test_worth_printing_news_at_once_numbers_now_and_then() -> None:
    first = ProgressLine.of(reporting(**WRITING))
    more = ProgressLine.of(reporting(**{**WRITING, "done": 130 * MIB}))
    configdrive = ProgressLine.of(reporting(name="write_configdrive", done=1, total=2))
    active = ProgressLine.of(node(provision_state="active"))
    assert worth_printing(first, last=None, elapsed=0)
    assert not worth_printing(more, last=first, elapsed=1)
    assert worth_printing(more, last=first, elapsed=5)
    assert not worth_printing(first, last=first, elapsed=60)  # nothing new
    assert worth_printing(configdrive, last=first, elapsed=0)
    assert worth_printing(active, last=configdrive, elapsed=0)


@pytest.mark.parametrize(
    ("fields", "busy"),
    [
        ({}, False),
        ({"provision_state": "deploy failed"}, False),
        ({"provision_state": "deploying"}, True),
        ({"provision_state": "wait call-back"}, True),
        ({"provision_state": "clean wait"}, True),
        ({"provision_state": "cleaning"}, True),
        ({"target_provision_state": "active"}, True),
        ({"target_power_state": "power on"}, True),
    ],
)
def test_is_busy(fields: dict[str, Any], busy: bool) -> None:
    assert is_busy(node(**fields)) is busy


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({"provision_state": "deploying", "target_provision_state": "active"}, Verdict.WAITING),
        ({"provision_state": "active"}, Verdict.REACHED),
        ({"provision_state": "deploy failed", "last_error": "old news"}, Verdict.FAILED),
        ({"provision_state": "enroll", "last_error": "bad BMC"}, Verdict.FAILED),
        ({"provision_state": "active", "last_error": "old news"}, Verdict.REACHED),
    ],
)
def test_judge_rest(fields: dict[str, Any], verdict: Verdict) -> None:
    before = Mark.of(node(provision_state="deploying", last_error="old news"))
    assert judge_rest(node(**fields), before=before) is verdict


def deployed(current: dict[str, Any]) -> Verdict:
    return Verdict.REACHED if current["provision_state"] == "active" else Verdict.WAITING


def follow_deploy(fake_api: FakeIronic, *, clock: Callable[[], float]) -> None:
    """wait_for a deploy through four agent reports, to active."""
    fake_api.nodes["u1"] = {"uuid": "u1", "name": "n1", **node()}
    fake_api.play(
        "n1",
        *(reporting(**{**WRITING, "done": n * MIB, "rate": 12.3 * MIB}) for n in (10, 20, 30)),
        reporting(name="write_configdrive", done=MIB, total=None, rate=0),
        {**node(provision_state="active"), "driver_internal_info": {}},
    )
    client = ApiClient(BASE, transport=fake_api.transport())
    verdict, current = wait_for(client, "n1", judge=deployed, timeout=0, clock=clock)
    assert (verdict, current["provision_state"]) == (Verdict.REACHED, "active")


def test_wait_for_prints_steps_not_every_poll(
    fake_api: FakeIronic, capsys: pytest.CaptureFixture[str]
) -> None:
    follow_deploy(fake_api, clock=lambda: 0.0)
    assert capsys.readouterr().err.splitlines() == [
        "n1: wait call-back → active · write_image 10.0 MiB of 256.0 MiB (4%), 12.3 MiB/s",
        "n1: wait call-back → active · write_configdrive 1.0 MiB",
        "n1: active",
    ]


def test_wait_for_prints_new_numbers_after_a_while(
    fake_api: FakeIronic, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = itertools.count(step=10.0)  # every look at the clock: 10 s later
    follow_deploy(fake_api, clock=lambda: next(ticks))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" · ")[-1] for line in lines] == [
        "write_image 10.0 MiB of 256.0 MiB (4%), 12.3 MiB/s",
        "write_image 20.0 MiB of 256.0 MiB (8%), 12.3 MiB/s",
        "write_image 30.0 MiB of 256.0 MiB (12%), 12.3 MiB/s",
        "write_configdrive 1.0 MiB",
        "n1: active",
    ]


def test_a_held_node_is_not_busy() -> None:
    held = node(provision_state="clean hold", target_provision_state="manageable")
    assert not is_busy(held)
    assert judge_rest(held, before=BEFORE) is Verdict.REACHED


def test_a_step_the_bmc_carries_out_shows_its_progress_when_no_agent_reports() -> None:
    updating = node(
        provision_state="service wait",
        target_provision_state="active",
        driver_internal_info={
            "step_progress": {
                "step": "firmware.update", "target": "bmc", "percent": 40, "state": "Running",
            }
        },
    )  # fmt: skip
    line = ProgressLine.of(updating)
    assert line.text.endswith(" · firmware.update bmc 40% (Running)"), line.text
    assert line.step[1] == "firmware.update bmc"
    # the agent's report, when there is one, is what the line shows
    both = {**updating, "driver_internal_info": {
        **updating["driver_internal_info"], "agent_progress": WRITING,
    }}  # fmt: skip
    assert ProgressLine.of(both).step[1] == "write_image"
    unnamed = node(**{**updating, "driver_internal_info": {"step_progress": {"percent": 5}}})
    assert ProgressLine.of(unnamed).text == ProgressLine.of(node(**{
        **updating, "driver_internal_info": {},
    })).text  # fmt: skip
