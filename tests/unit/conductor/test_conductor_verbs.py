"""Every provision verb's happy path, on fake hardware and a real SQLite database."""

from __future__ import annotations

from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import ChangeProvisionState, ProvisionRequest, SetMaintenance
from metalcast.errors import InvalidInput
from metalcast.secrecy import shadow
from metalcast.states import InvalidTransition


def act(env: Env, node_id: int, verb: str, **options: Any) -> None:
    env.service.execute(
        ChangeProvisionState(node_id, ProvisionRequest(verb, **options)), context=ALICE
    )


def test_manage_verifies_the_bmc_and_records_power(env: Env) -> None:
    node = env.create("enroll")
    act(env, node.id, "manage")
    done = env.wait_settled(node.id)
    assert done.provision_state == "manageable"
    assert done.target_provision_state is None
    assert done.power_state == "power off"
    events = [h.event for h in env.history(node.id)]
    assert "enroll → verifying (manage) by alice" in events
    assert "verifying → manageable (done) by alice" in events


def test_provide_runs_automated_cleaning(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "provide")
    done = env.wait_settled(node.id)
    assert done.provision_state == "available"
    assert done.clean_step is None
    assert "clean_steps" not in done.driver_internal_info
    events = [h.event for h in env.history(node.id)]
    assert "manageable → cleaning (provide) by alice" in events
    assert "cleaning → available (done) by alice" in events


def test_provide_without_automated_cleaning(env: Env) -> None:
    node = env.create("manageable", automated_clean=False)
    act(env, node.id, "provide")
    assert env.wait_settled(node.id).provision_state == "available"


def test_manual_clean_returns_to_manageable(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "clean", clean_steps=[{"interface": "deploy", "step": "erase_devices"}])
    assert env.wait_settled(node.id).provision_state == "manageable"


def test_manual_clean_rejects_unknown_step_before_writing(env: Env) -> None:
    node = env.create("manageable")
    with pytest.raises(InvalidInput, match=r"no clean step 'deploy\.nope'"):
        act(env, node.id, "clean", clean_steps=[{"interface": "deploy", "step": "nope"}])
    after = env.node(node.id)
    assert after.provision_state == "manageable"
    assert after.reservation is None


def test_deploy_stores_configdrive_and_powers_on(env: Env) -> None:
    node = env.create("available", instance_uuid="6f1fe3c6-6bb7-4a53-9c2b-6e0f0f0c2a11")
    act(env, node.id, "active", configdrive="H4sIAAAA")
    done = env.wait_settled(node.id)
    assert done.provision_state == "active"
    assert done.power_state == "power on"
    # stored encrypted; the conductor decrypts it to build the drive
    assert "H4sIAAAA" not in done.instance_info["configdrive"]
    assert env.secret_box.reveal(done.instance_info)["configdrive"] == "H4sIAAAA"
    assert done.instance_uuid == "6f1fe3c6-6bb7-4a53-9c2b-6e0f0f0c2a11"


def test_undeploy_tears_down_cleans_and_clears_instance(env: Env) -> None:
    node = env.create("available", instance_uuid="6f1fe3c6-6bb7-4a53-9c2b-6e0f0f0c2a11")
    act(env, node.id, "active")
    env.wait_settled(node.id)
    act(env, node.id, "deleted")
    done = env.wait_settled(node.id)
    assert done.provision_state == "available"
    assert done.instance_uuid is None
    assert done.instance_info == {}
    assert done.power_state == "power off"
    events = [h.event for h in env.history(node.id)]
    assert "deleting → cleaning (clean) by alice" in events


def test_rebuild_from_active(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "active")
    env.wait_settled(node.id)
    act(env, node.id, "rebuild")
    assert env.wait_settled(node.id).provision_state == "active"


def test_inspect_merges_properties(env: Env) -> None:
    node = env.create("manageable", properties={"vendor": "acme"})
    act(env, node.id, "inspect")
    done = env.wait_settled(node.id)
    assert done.provision_state == "manageable"
    assert done.properties["vendor"] == "acme"
    assert done.properties["cpus"] == 4
    assert done.inspection_finished_at is not None


def test_adopt(env: Env) -> None:
    node = env.create("manageable")
    act(env, node.id, "adopt")
    assert env.wait_settled(node.id).provision_state == "active"


def test_rescue_and_unrescue(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "active")
    env.wait_settled(node.id)
    with pytest.raises(InvalidInput, match="rescue_password"):
        act(env, node.id, "rescue")
    act(env, node.id, "rescue", rescue_password="s3cret")
    rescued = env.wait_settled(node.id)
    assert rescued.provision_state == "rescue"
    # only the hash is kept (sealed), never the password
    assert "rescue_password" not in rescued.instance_info
    hashed = env.secret_box.reveal(rescued.instance_info["hashed_rescue_password"])
    assert shadow.verify("s3cret", hashed)
    act(env, node.id, "unrescue")
    done = env.wait_settled(node.id)
    assert done.provision_state == "active"
    assert "rescue_password" not in done.instance_info
    assert "hashed_rescue_password" not in done.instance_info


def test_service_runs_service_steps(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "active")
    env.wait_settled(node.id)
    act(env, node.id, "service", service_steps=[{"interface": "deploy", "step": "fake_service"}])
    done = env.wait_settled(node.id)
    assert done.provision_state == "active"
    assert done.service_step is None


def test_available_to_manageable_is_synchronous(env: Env) -> None:
    node = env.create("available")
    act(env, node.id, "manage")
    after = env.node(node.id)
    assert after.provision_state == "manageable"
    assert after.reservation is None


def test_invalid_transition_writes_nothing(env: Env) -> None:
    node = env.create("enroll")
    with pytest.raises(InvalidTransition):
        act(env, node.id, "active")
    assert env.node(node.id).provision_state == "enroll"
    assert len(env.history(node.id)) == 1  # "created"


def test_unknown_verb(env: Env) -> None:
    node = env.create("enroll")
    with pytest.raises(InvalidInput, match="not a valid provision state target"):
        act(env, node.id, "explode")


def test_maintenance_blocks_deploy(env: Env) -> None:
    node = env.create("available")
    env.service.execute(SetMaintenance(node.id, True, reason="disk swap"), context=ALICE)
    with pytest.raises(InvalidInput, match="maintenance"):
        act(env, node.id, "active")
