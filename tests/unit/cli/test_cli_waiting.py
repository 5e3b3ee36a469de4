"""Deciding when a waited-for request has finished."""

from __future__ import annotations

from typing import Any

import pytest

from metalcast.cli.waiting import (
    Mark,
    Verdict,
    describe,
    failure_message,
    judge_power,
    judge_provision,
)


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
