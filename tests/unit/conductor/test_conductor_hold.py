"""Clean and service hold (Ironic 1.85): a ``hold`` step, ``unhold``, ``abort``."""

from __future__ import annotations

from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import ChangeProvisionState, ProvisionRequest
from metalcast.conductor.flows.cleaning import run_cleaning
from metalcast.conductor.task import acquire
from metalcast.errors import InvalidInput
from metalcast.states import Event, InvalidTransition

METADATA = {"interface": "deploy", "step": "erase_devices_metadata"}
ERASE = {"interface": "deploy", "step": "erase_devices"}
HOLD = {"interface": "deploy", "step": "hold"}


def act(env: Env, node_id: int, verb: str, **options: Any) -> None:
    env.service.execute(
        ChangeProvisionState(node_id, ProvisionRequest(verb, **options)), context=ALICE
    )


def history(env: Env, node_id: int) -> list[str]:
    return [row.event for row in env.history(node_id)]


def test_a_hold_step_holds_cleaning_until_unhold_then_it_goes_on(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "clean", clean_steps=[METADATA, HOLD, ERASE])

    held = env.wait_settled(node.id)
    assert (held.provision_state, held.target_provision_state) == ("clean hold", "manageable")
    assert held.clean_step is not None and held.clean_step["step"] == "hold"
    assert held.driver_internal_info["clean_step_index"] == 1

    act(env, node.id, "unhold")
    done = env.wait_settled(node.id)
    assert (done.provision_state, done.last_error, done.clean_step) == ("manageable", None, None)
    moves = [e for e in history(env, node.id) if "→" in e]
    assert any("cleaning → clean hold (hold)" in e for e in moves), moves
    assert any("clean hold → clean wait (unhold)" in e for e in moves), moves
    assert any("clean wait → cleaning (resume)" in e for e in moves), moves


def test_abort_from_clean_hold_fails_cleaning_naming_the_step(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "clean", clean_steps=[HOLD, ERASE])
    assert env.wait_settled(node.id).provision_state == "clean hold"

    act(env, node.id, "abort")
    done = env.wait_settled(node.id)
    assert done.provision_state == "clean failed"
    assert done.last_error == (
        "By request of alice, the clean operation was aborted during or after the "
        "completion of step 'deploy.hold'."
    )
    assert done.clean_step is None and "clean_steps" not in done.driver_internal_info
    act(env, node.id, "manage")
    assert env.wait_settled(node.id).provision_state == "manageable"


def test_unhold_of_a_node_not_held_is_refused(env: Env) -> None:
    node = env.create("manageable")
    with pytest.raises(InvalidTransition, match="'unhold' can not be performed"):
        act(env, node.id, "unhold")


def test_a_hold_step_takes_no_arguments(env: Env) -> None:
    node = env.create("manageable")
    with pytest.raises(InvalidInput, match="reserved step 'hold' takes no arguments"):
        act(env, node.id, "clean", clean_steps=[{**HOLD, "args": {"seconds": 5}}])
    assert env.node(node.id).provision_state == "manageable"


def test_automated_cleaning_never_holds(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "provide")
    assert env.wait_settled(node.id).provision_state == "available"


def test_a_service_hold_step_holds_servicing_until_unhold(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "active")
    assert env.wait_settled(node.id).provision_state == "active"
    service = {"interface": "deploy", "step": "fake_service"}
    act(env, node.id, "service", service_steps=[HOLD, service])
    assert env.wait_settled(node.id).provision_state == "service hold"

    act(env, node.id, "unhold")
    done = env.wait_settled(node.id)
    assert (done.provision_state, done.service_step) == ("active", None)


def test_abort_during_a_step_that_cannot_be_interrupted_waits_for_it(env: Env) -> None:
    node = env.create(
        "manageable",
        driver_info={"fake_wait": "clean"},
        target_raid_config={"logical_disks": [{"size_gb": 10, "raid_level": "1"}]},
    )
    raid = {"interface": "raid", "step": "create_configuration"}
    act(env, node.id, "clean", clean_steps=[raid, ERASE])
    assert env.wait_settled(node.id).provision_state == "clean wait"

    act(env, node.id, "abort")
    marked = env.wait_settled(node.id)
    assert marked.provision_state == "clean wait", "the RAID step may not be cut short"
    assert marked.clean_step is not None and marked.clean_step["abort_after"] is True
    assert any("cannot be interrupted" in e for e in history(env, node.id))

    # the step reports done (the conductor resumes cleaning): cleaning ends as aborted
    with acquire(env.service.rt, node.id, user="alice", purpose="resume") as task:
        task.process_event(Event.RESUME)
        run_cleaning(task)
    done = env.wait_settled(node.id)
    assert done.provision_state == "clean failed"
    assert done.last_error == (
        "By request, the clean operation was aborted during or after the completion "
        "of step 'raid.create_configuration'."
    )
    assert done.clean_step is None and "clean_steps" not in done.driver_internal_info


def test_abort_from_service_hold_fails_servicing_saying_who(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "active")
    assert env.wait_settled(node.id).provision_state == "active"
    act(env, node.id, "service", service_steps=[HOLD])
    assert env.wait_settled(node.id).provision_state == "service hold"

    act(env, node.id, "abort")
    done = env.wait_settled(node.id)
    assert done.provision_state == "service failed"
    assert done.last_error == "Servicing aborted by alice."
