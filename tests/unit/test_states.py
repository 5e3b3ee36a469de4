"""The provision state table: structural properties operators rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalcast import states
from metalcast.config import ConductorSettings
from metalcast.states import (
    FAILURE,
    FAILURE_OF,
    HOLD,
    STABLE,
    TRANSITIONS,
    WAIT,
    WORK,
    Event,
    InvalidTransition,
    ProvisionState,
    advance,
    reachable,
)

PS = ProvisionState
OPERATOR_VERBS = frozenset(states.VERBS.values())


def test_every_state_is_reachable_from_enroll() -> None:
    assert reachable(PS.ENROLL, TRANSITIONS) == set(ProvisionState)


def test_state_sets_partition_the_states() -> None:
    groups = [STABLE - {PS.ERROR}, WORK, WAIT, HOLD, FAILURE]
    assert sum(len(g) for g in groups) == len(ProvisionState)
    assert set().union(*groups) == set(ProvisionState)


@pytest.mark.parametrize("state", sorted(FAILURE))
def test_every_failure_state_has_an_operator_exit(state: ProvisionState) -> None:
    exits = [t for t in TRANSITIONS if t.source == state and t.event in OPERATOR_VERBS]
    assert exits, f"{state} is a dead end"


@pytest.mark.parametrize("state", sorted(WAIT))
def test_every_wait_state_has_a_timeout_setting_and_can_fail_or_abort(
    state: ProvisionState,
) -> None:
    setting = states.WAIT_TIMEOUT_SETTING[state]
    assert setting in ConductorSettings.model_fields
    assert advance(state, Event.FAIL) == FAILURE_OF[state]
    assert advance(state, Event.ABORT) == FAILURE_OF[state]


@pytest.mark.parametrize("state", sorted(HOLD))
def test_every_hold_state_can_be_unheld_or_aborted(state: ProvisionState) -> None:
    assert advance(state, Event.UNHOLD) in WAIT
    assert advance(state, Event.ABORT) == FAILURE_OF[state]


@pytest.mark.parametrize("state", sorted(WORK | WAIT))
def test_every_work_and_wait_state_has_a_failure_state_it_can_reach(state: ProvisionState) -> None:
    failed = FAILURE_OF[state]
    direct = {t.target for t in TRANSITIONS if t.source == state}
    assert failed in direct


def test_wire_strings_are_ironics() -> None:
    assert PS.DEPLOYWAIT.value == "wait call-back"
    assert states.VERBS["active"] is Event.DEPLOY
    assert states.VERBS["deleted"] is Event.DELETE


def test_invalid_transition_says_what_is_allowed() -> None:
    with pytest.raises(InvalidTransition) as info:
        advance(PS.ENROLL, Event.DEPLOY)
    assert "enroll" in info.value.message
    assert "manage" in info.value.message
    assert info.value.status_code == 400


def test_table_has_no_duplicate_edges() -> None:
    keys = [(t.source, t.event) for t in TRANSITIONS]
    assert len(keys) == len(set(keys))


@given(st.lists(st.sampled_from(list(Event)), max_size=40))
def test_any_walk_from_enroll_can_still_reach_available_and_active(walk: list[Event]) -> None:
    state = PS.ENROLL
    for event in walk:
        try:
            state = advance(state, event)
        except InvalidTransition:
            continue
        assert state in ProvisionState
    onward = reachable(state, TRANSITIONS)
    assert PS.AVAILABLE in onward
    assert PS.ACTIVE in onward


@given(st.sampled_from(list(ProvisionState)), st.sampled_from(list(Event)))
def test_advance_agrees_with_the_table(state: ProvisionState, event: Event) -> None:
    edges = {(t.source, t.event): t.target for t in TRANSITIONS}
    if (state, event) in edges:
        assert advance(state, event) == edges[(state, event)]
    else:
        with pytest.raises(InvalidTransition):
            advance(state, event)


def test_docs_state_diagram_is_generated_from_the_table() -> None:
    from pathlib import Path

    doc = Path(__file__).parents[2] / "docs" / "states.md"
    assert states.mermaid() in doc.read_text(), "run scripts/state-diagram"
