"""evaluate(): Ironic's inspection-rule conditions and actions on inspection data."""

from __future__ import annotations

from typing import Any

import pytest

from metalcast.inspection_rules.engine import (
    AddTrait,
    DeleteField,
    ExtendField,
    Fail,
    PluginData,
    RemoveTrait,
    Rule,
    RuleFailed,
    SetCapability,
    SetField,
    SetPortField,
    UnsetCapability,
    evaluate,
)

INVENTORY: dict[str, Any] = {
    "cpu": {"count": 4, "model_name": "QEMU Virtual CPU", "architecture": "x86_64"},
    "memory": {"physical_mb": 2048},
    "system_vendor": {
        "manufacturer": "metalcast",
        "product_name": "lab-q35",
        "serial_number": "MCL100-AB",
    },
    "interfaces": [
        {"name": "eth0", "mac_address": "52:54:00:6d:63:00", "ipv4_address": "192.168.77.10"},
        {"name": "eth1", "mac_address": "52:54:00:6d:63:80", "ipv4_address": None},
    ],
    "disks": [{"name": "/dev/vda", "size": 2 * 1024**3}, {"name": "/dev/vdb", "size": 3 * 1024**3}],
    "bmc_address": "10.0.0.5",
    "bmc": {"user": "root", "password": "hunter2"},
}
NODE: dict[str, Any] = {
    "uuid": "0e1f3b7e-0000-4000-8000-000000000001",
    "driver": "ipmi",
    "driver_info": {"ipmi_address": "127.0.0.1"},
    "properties": {"capabilities": "boot_mode:bios"},
    "traits": ["CUSTOM_OLD"],
}


def rule(
    actions: list[dict[str, Any]],
    conditions: list[dict[str, Any]] | None = None,
    *,
    uuid: str = "r1",
    priority: int = 0,
    sensitive: bool = False,
) -> Rule:
    return Rule.from_mapping(
        {
            "uuid": uuid,
            "actions": actions,
            "conditions": conditions or [],
            "priority": priority,
            "sensitive": sensitive,
        }
    )


def run(*rules: Rule, plugin_data: dict[str, Any] | None = None) -> list[Any]:
    return evaluate(list(rules), NODE, INVENTORY, plugin_data or {})


TRAIT = {"op": "add-trait", "args": {"name": "CUSTOM_HIT"}}


def hits(*conditions: dict[str, Any]) -> bool:
    return run(rule([TRAIT], list(conditions))) == [AddTrait(rule="r1", name="CUSTOM_HIT")]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 4]}}, True),
        ({"op": "eq", "args": [["{inventory[cpu][count]}", 4]]}, True),
        ({"op": "ne", "args": {"values": ["{inventory[cpu][count]}", 2]}}, True),
        ({"op": "gt", "args": {"values": ["{inventory[memory][physical_mb]}", 1024]}}, True),
        ({"op": "lt", "args": {"values": [1, 2, 3]}}, True),
        ({"op": "lt", "args": {"values": [1, 3, 2]}}, False),
        ({"op": "ge", "args": {"values": [2, 2]}}, True),
        ({"op": "le", "args": {"values": [3, 2]}}, False),
        ({"op": "eq", "args": {"values": ["4", 4], "force_strings": True}}, True),
        ({"op": "eq", "args": {"values": ["4", 4]}}, False),
        (
            {
                "op": "in-net",
                "args": {"address": "{inventory[bmc_address]}", "subnet": "10.0.0.0/8"},
            },
            True,
        ),
        (
            {"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "fd00::/8"}},
            False,
        ),
        (
            {"op": "in-net", "args": ["{inventory[interfaces][1][ipv4_address]}", "0.0.0.0/0"]},
            False,
        ),
        (
            {
                "op": "matches",
                "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "metal.*"},
            },
            True,
        ),
        (
            {
                "op": "matches",
                "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "metal"},
            },
            False,
        ),
        (
            {
                "op": "contains",
                "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "(?i)CAST"},
            },
            True,
        ),
        ({"op": "is-empty", "args": {"value": "{inventory[interfaces][1][ipv4_address]}"}}, True),
        ({"op": "is-empty", "args": {"value": "{inventory[cpu]}"}}, False),
        ({"op": "is-none", "args": {"value": "{inventory[interfaces][1][ipv4_address]}"}}, True),
        ({"op": "is-true", "args": {"value": "{plugin_data[auto_discovered]}"}}, False),
        ({"op": "is-true", "args": {"value": "Yes"}}, True),
        ({"op": "is-false", "args": {"value": 0}}, True),
        ({"op": "is-false", "args": {"value": None}}, True),
        (
            {
                "op": "one-of",
                "args": {
                    "value": "{inventory[cpu][architecture]}",
                    "values": ["x86_64", "aarch64"],
                },
            },
            True,
        ),
        (
            {
                "op": "!one-of",
                "args": {"value": "{inventory[cpu][architecture]}", "values": ["aarch64"]},
            },
            True,
        ),
        ({"op": "eq", "args": {"values": [1, 1]}, "invert": True}, False),
        ({"op": "eq", "args": {"values": ["{node[driver]}", "ipmi"]}}, True),
        ({"op": "eq", "args": {"values": ["{node.driver}", "ipmi"]}}, True),
        # an unresolvable reference stays the text it was, as in Ironic
        ({"op": "eq", "args": {"values": ["{inventory[nope]}", "{inventory[nope]}"]}}, True),
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    assert hits(condition) is expected


def test_all_conditions_must_hold() -> None:
    yes = {"op": "eq", "args": {"values": [1, 1]}}
    no = {"op": "eq", "args": {"values": [1, 2]}}
    assert hits(yes, yes)
    assert not hits(yes, no)
    assert hits()  # no condition: always


@pytest.mark.parametrize(
    ("multiple", "expected"), [("any", True), ("all", False), ("first", True), ("last", False)]
)
def test_a_loop_condition_combines_its_items(multiple: str, expected: bool) -> None:
    condition = {
        "op": "is-empty",
        "args": {"value": "{item[ipv4_address]}"},
        "loop": [{"ipv4_address": ""}, {"ipv4_address": "10.0.0.1"}],
        "multiple": multiple,
    }
    assert hits(condition) is expected


def test_a_loop_over_inventory_data() -> None:
    condition = {
        "op": "contains",
        "args": {"value": "{item}", "regex": "^52:54:00:6d:63:80$"},
        "loop": [
            "{inventory[interfaces][0][mac_address]}",
            "{inventory[interfaces][1][mac_address]}",
        ],
    }
    assert hits(condition)


def test_actions_become_changes_in_order() -> None:
    actions: list[dict[str, Any]] = [
        {
            "op": "set-attribute",
            "args": {"path": "/driver_info/ipmi_address", "value": "{inventory[bmc_address]}"},
        },
        {"op": "set-attribute", "args": ["properties.cpus", "{inventory[cpu][count]}"]},
        {"op": "extend-attribute", "args": {"path": "/extra/tags", "value": "lab", "unique": True}},
        {"op": "del-attribute", "args": {"path": "/extra/old"}},
        {
            "op": "set-capability",
            "args": {"name": "vendor", "value": "{inventory[system_vendor][manufacturer]}"},
        },
        {"op": "unset-capability", "args": ["boot_mode"]},
        {"op": "add-trait", "args": ["CUSTOM_LAB"]},
        {"op": "remove-trait", "args": {"name": "CUSTOM_OLD"}},
        {"op": "set-port-attribute", "args": ["port-1", "/extra/switch", "sw1"]},
        {"op": "set-plugin-data", "args": {"path": "seen.by", "value": "rules"}},
    ]
    assert run(rule(actions)) == [
        SetField(rule="r1", path=("driver_info", "ipmi_address"), value="10.0.0.5"),
        SetField(rule="r1", path=("properties", "cpus"), value=4),
        ExtendField(rule="r1", path=("extra", "tags"), value="lab", unique=True),
        DeleteField(rule="r1", path=("extra", "old")),
        SetCapability(rule="r1", name="vendor", value="metalcast"),
        UnsetCapability(rule="r1", name="boot_mode"),
        AddTrait(rule="r1", name="CUSTOM_LAB"),
        RemoveTrait(rule="r1", name="CUSTOM_OLD"),
        SetPortField(rule="r1", port="port-1", path=("extra", "switch"), value="sw1"),
        PluginData(rule="r1", action="set", path=("seen", "by"), value="rules"),
    ]


def test_text_around_a_reference_is_formatted() -> None:
    action = {
        "op": "set-attribute",
        "args": {
            "path": "/extra/id",
            "value": "{inventory[system_vendor][serial_number]}-{inventory[cpu][count]}",
        },
    }
    assert run(rule([action])) == [SetField(rule="r1", path=("extra", "id"), value="MCL100-AB-4")]


def test_higher_priority_runs_first_and_later_rules_see_earlier_changes() -> None:
    first = rule(
        [{"op": "set-attribute", "args": {"path": "/properties/role", "value": "compute"}}],
        uuid="high",
        priority=50,
    )
    second = rule(
        [TRAIT],
        [{"op": "eq", "args": {"values": ["{node[properties][role]}", "compute"]}}],
        uuid="low",
        priority=1,
    )
    changes = evaluate([second, first], NODE, INVENTORY, {})
    assert [c.rule for c in changes] == ["high", "low"]


def test_plugin_data_changes_are_seen_by_later_rules() -> None:
    mark = rule(
        [{"op": "set-plugin-data", "args": {"path": "auto_discovered", "value": True}}], priority=2
    )
    check = rule(
        [TRAIT], [{"op": "is-true", "args": ["{plugin_data[auto_discovered]}"]}], uuid="r2"
    )
    changes = evaluate([check, mark], NODE, INVENTORY, {})
    assert changes[-1] == AddTrait(rule="r2", name="CUSTOM_HIT")


def test_fail_ends_the_evaluation() -> None:
    stop = rule(
        [
            {
                "op": "fail",
                "args": {"msg": "too little memory: {inventory[memory][physical_mb]} MiB"},
            }
        ],
        priority=9,
    )
    later = rule([TRAIT], uuid="r2")
    assert run(stop, later) == [Fail(rule="r1", message="too little memory: 2048 MiB")]


def test_an_action_loop_repeats_the_action() -> None:
    action = {
        "op": "add-trait",
        "args": {"name": "{item}"},
        "loop": ["CUSTOM_A", "CUSTOM_B"],
    }
    assert [c.name for c in run(rule([action]))] == ["CUSTOM_A", "CUSTOM_B"]


def test_secrets_are_masked_unless_the_rule_is_sensitive() -> None:
    action = {
        "op": "set-attribute",
        "args": {"path": "/extra/bmc", "value": "{inventory[bmc][password]}"},
    }
    whole = {"op": "set-attribute", "args": {"path": "/extra/all", "value": "{inventory[bmc]}"}}
    masked = run(rule([action, whole]))
    assert [c.value for c in masked] == ["***", {"user": "root", "password": "***"}]
    shown = run(rule([action], sensitive=True))
    assert shown[0].value == "hunter2"


def test_references_cannot_reach_attributes() -> None:
    action = {"op": "set-attribute", "args": {"path": "/extra/x", "value": "{inventory.__class__}"}}
    assert run(rule([action]))[0].value == "{inventory.__class__}"
    format_spec = {
        "op": "set-attribute",
        "args": {"path": "/extra/x", "value": "{inventory[cpu]!r:>99999}"},
    }
    assert run(rule([format_spec]))[0].value == "{inventory[cpu]!r:>99999}"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {
                "op": "set-attribute",
                "args": {"path": "{item}", "value": 1},
                "loop": ["provision_state"],
            },
            "may change only",
        ),
        ({"op": "add-trait", "args": {"name": "{inventory[cpu][model_name]}"}}, "is not a trait"),
        (
            {"op": "extend-attribute", "args": {"path": "/driver", "value": "x"}},
            "cannot extend str",
        ),
    ],
)
def test_actions_that_cannot_apply_fail_the_rule(item: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleFailed, match=message) as caught:
        run(rule([item], uuid="bad"))
    assert caught.value.rule == "bad"


def test_conditions_that_cannot_be_evaluated_fail_the_rule() -> None:
    broken = {"op": "lt", "args": {"values": ["{inventory[cpu][model_name]}", 3]}}
    with pytest.raises(RuleFailed, match="condition lt"):
        run(rule([TRAIT], [broken]))
    bad_net = {
        "op": "in-net",
        "args": {"address": "10.0.0.1", "subnet": "{inventory[cpu][model_name]}"},
    }
    with pytest.raises(RuleFailed, match="in-net"):
        run(rule([TRAIT], [bad_net]))


def test_other_phases_do_not_run() -> None:
    other = Rule(uuid="x", actions=(TRAIT,), phase="later")
    assert evaluate([other], NODE, INVENTORY, {}) == []


def test_the_inputs_are_not_changed() -> None:
    node: dict[str, Any] = {"properties": {}, "traits": []}
    data: dict[str, Any] = {}
    evaluate(
        [rule([{"op": "set-attribute", "args": {"path": "/properties/x", "value": 1}},
               {"op": "set-plugin-data", "args": {"path": "y", "value": 2}}])],
        node, INVENTORY, data,
    )  # fmt: skip
    assert node == {"properties": {}, "traits": []} and data == {}
