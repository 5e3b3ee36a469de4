"""RAID interface ``agent``: what software RAID accepts when a target is set, the
clean steps that hand the agent its commands, and what is recorded of its report."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from driver_ctx import MakeCtx

from metalcast.drivers.base import AgentCommand, AgentPhase, StepResult
from metalcast.drivers.raid_agent import AgentRAID, applied_config, check_software, raid_root
from metalcast.errors import InvalidInput

ROOT: dict[str, Any] = {
    "size_gb": "MAX",
    "raid_level": "1",
    "is_root_volume": True,
    "controller": "software",
}
DATA: dict[str, Any] = {"size_gb": 10, "raid_level": "0", "controller": "software"}
UUID = "0a1b2c3d:4e5f6071:8293a4b5:c6d7e8f9"


def refused(config: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        AgentRAID().validate_raid_config(config)
    assert caught.value.status_code == 400
    return caught.value.message


def test_software_raid_1_0_and_1_plus_0_are_accepted() -> None:
    ten = {"size_gb": 20, "raid_level": "1+0", "controller": "software", "volume_name": "d.1"}
    check_software({"logical_disks": [ROOT, DATA, ten]})
    with_disks = {
        **ROOT,
        "physical_disks": ["/dev/sda", {"serial": "S2", "rotational": False}],
        "number_of_physical_disks": 2,
    }
    check_software({"logical_disks": [with_disks]})


def test_a_hardware_controller_or_none_is_refused_with_what_to_set() -> None:
    message = refused({"logical_disks": [{**ROOT, "controller": "RAID.Integrated.1-1"}]})
    assert "logical_disks.0: controller must be 'software'" in message
    assert "controller must be 'software'" in refused(
        {"logical_disks": [{k: v for k, v in ROOT.items() if k != "controller"}]}
    )


@pytest.mark.parametrize("level", ["5", "6", "JBOD", "5+0"])
def test_levels_software_raid_does_not_build(level: str) -> None:
    message = refused({"logical_disks": [{**DATA, "raid_level": level}]})
    assert f"raid_level '{level}' is not a software RAID level: use '0', '1', '1+0'" in message


def test_the_root_volume_must_be_a_mirror() -> None:
    message = refused({"logical_disks": [{**ROOT, "raid_level": "0"}]})
    assert "the root volume must be RAID '1'" in message


def test_too_few_disks_for_the_level() -> None:
    assert "RAID 1+0 needs at least 4 physical disks, not 2" in refused(
        {"logical_disks": [{**DATA, "raid_level": "1+0", "number_of_physical_disks": 2}]}
    )
    assert "RAID 1 needs at least 2 physical disks, not 1" in refused(
        {"logical_disks": [{**ROOT, "physical_disks": ["/dev/vda"]}]}
    )
    assert "differs from the number of physical_disks" in refused(
        {
            "logical_disks": [
                {**ROOT, "physical_disks": ["/dev/vda", "/dev/vdb"], "number_of_physical_disks": 3}
            ]
        }
    )


def test_physical_disks_are_device_names_or_known_hints() -> None:
    assert "physical disk 'sda; rm' is not a device name" in refused(
        {"logical_disks": [{**ROOT, "physical_disks": ["sda; rm", "/dev/sdb"]}]}
    )
    assert "not colour" in refused(
        {"logical_disks": [{**ROOT, "physical_disks": [{"colour": "red"}, {"name": "/dev/sdb"}]}]}
    )


def test_sharing_disks_and_disk_kinds_are_refused_rather_than_ignored() -> None:
    message = refused(
        {"logical_disks": [{**DATA, "share_physical_disks": True, "disk_type": "ssd"}]}
    )
    assert "share_physical_disks, disk_type is not supported" in message


def test_volume_names_reach_mdadm_only_when_plain() -> None:
    assert "volume_name must be 1 to 32 letters" in refused(
        {"logical_disks": [{**ROOT, "volume_name": "--force"}]}
    )


def test_every_problem_is_named_and_the_schema_comes_first() -> None:
    message = refused({"logical_disks": [{**ROOT, "raid_level": "0"}, {**DATA, "raid_level": "6"}]})
    assert "logical_disks.0: the root volume" in message
    assert "logical_disks.1: raid_level '6'" in message
    assert "size_gb" in refused({"logical_disks": [{**ROOT, "size_gb": 0}]})


def test_create_hands_the_agent_the_selected_logical_disks(make_ctx: MakeCtx) -> None:
    base = make_ctx(args={"create_nonroot_volumes": False})
    target = {"logical_disks": [ROOT, DATA]}
    ctx = dataclasses.replace(base, node=dataclasses.replace(base.node, target_raid_config=target))
    outcome = AgentRAID().perform_step(ctx, "create_configuration")
    assert outcome.result is StepResult.WAIT
    assert outcome.agent is not None
    assert outcome.agent.phase is AgentPhase.CLEAN
    assert outcome.agent.commands == (
        AgentCommand("delete_raid_configuration"),
        AgentCommand("create_raid_configuration", {"logical_disks": [ROOT]}),
    )
    kept = dataclasses.replace(ctx, args={"delete_existing": False})
    outcome = AgentRAID().perform_step(kept, "create_configuration")
    assert outcome.agent is not None
    assert [c.name for c in outcome.agent.commands] == ["create_raid_configuration"]
    with pytest.raises(InvalidInput, match="'delete_existing' must be true or false"):
        AgentRAID().perform_step(
            dataclasses.replace(ctx, args={"delete_existing": 1}), "create_configuration"
        )


def test_create_without_a_target_says_how_to_set_one(make_ctx: MakeCtx) -> None:
    with pytest.raises(InvalidInput, match="has no target RAID configuration; set one first"):
        AgentRAID().perform_step(make_ctx(), "create_configuration")


def test_delete_hands_the_agent_its_command(make_ctx: MakeCtx) -> None:
    outcome = AgentRAID().perform_step(make_ctx(), "delete_configuration")
    assert outcome.agent is not None
    assert outcome.agent.commands == (AgentCommand("delete_raid_configuration"),)


def test_applied_is_what_was_asked_with_what_the_agent_built() -> None:
    sent = {"logical_disks": [ROOT]}
    reported = {
        "logical_disks": [
            {
                **ROOT,
                "size_gb": 1,
                "volume_name": "root",
                "physical_disks": ["/dev/vda", "/dev/vdb"],
                "md_uuid": UUID,
                "controller": "hardware?",  # the agent does not get to change this
                "extra": "x" * 100,
            }
        ]
    }
    assert applied_config(sent, reported) == {
        "logical_disks": [
            {
                **ROOT,
                "size_gb": 1,
                "volume_name": "root",
                "physical_disks": ["/dev/vda", "/dev/vdb"],
                "md_uuid": UUID,
            }
        ]
    }


@pytest.mark.parametrize(
    "reported",
    [
        {},
        {"logical_disks": []},
        {"logical_disks": [{"md_uuid": "not-a-uuid"}]},
        {"logical_disks": [{"md_uuid": UUID}, {"md_uuid": UUID}]},
    ],
)
def test_a_report_that_does_not_match_what_was_asked_is_refused(reported: Any) -> None:
    with pytest.raises(InvalidInput):
        applied_config({"logical_disks": [ROOT]}, reported)


def test_a_hostile_report_keeps_only_what_is_well_formed() -> None:
    reported = {
        "logical_disks": [
            {"md_uuid": UUID, "size_gb": True, "physical_disks": ["/dev/vda\n"], "volume_name": 7}
        ]
    }
    assert applied_config({"logical_disks": [ROOT]}, reported) == {
        "logical_disks": [{**ROOT, "md_uuid": UUID}]
    }


def test_the_root_volume_to_deploy_onto() -> None:
    assert raid_root({"logical_disks": [DATA, {**ROOT, "md_uuid": UUID}]}) == UUID
    assert raid_root({"logical_disks": [{**ROOT, "md_uuid": "../x"}]}) is None
    assert raid_root({"logical_disks": [{**ROOT, "controller": "hw", "md_uuid": UUID}]}) is None
    assert raid_root({"logical_disks": [{**DATA, "md_uuid": UUID}]}) is None
    assert raid_root({}) is None
