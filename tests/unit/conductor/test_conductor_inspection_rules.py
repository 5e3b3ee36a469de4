"""Inspection rules applied to a node under its lock: stored rules, evaluated on an
inventory, change the node's fields, capabilities, traits and ports, record it in the
history without values, and never show a rule the node's secrets."""

from __future__ import annotations

from typing import Any

from conductor_env import Env

from metalcast.conductor.inspection_rules import apply_rules, node_view
from metalcast.conductor.task import acquire
from metalcast.db import inspection_rules as rules_repo
from metalcast.db import repository as repo
from metalcast.db.models import Node

INVENTORY: dict[str, Any] = {
    "system_vendor": {"manufacturer": "metalcast", "serial_number": "MCL100-AB12CD34"},
    "bmc_address": "10.1.2.3",
    "memory": {"physical_mb": 2048},
    "interfaces": [{"mac_address": "52:54:00:6d:63:00"}],
}
LAB = {"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "metalcast"]}}


def _rule(env: Env, actions: list[dict[str, Any]], **values: Any) -> None:
    with env.db.begin() as conn:
        rules_repo.create_inspection_rule(conn, {"actions": actions, **values})


def _node(env: Env) -> Node:
    node = env.create(
        driver_info={"ipmi_address": "127.0.0.1", "ipmi_password": "hunter2"},
        properties={"capabilities": "boot_mode:bios"},
    )
    with env.db.begin() as conn:
        repo.create_port(conn, {"address": "52:54:00:6d:63:00", "node_id": node.id})
    return node


def test_rules_change_the_node_and_its_history_says_so(env: Env) -> None:
    node = _node(env)
    _rule(
        env,
        [
            {"op": "add-trait", "args": {"name": "CUSTOM_LAB"}},
            {
                "op": "set-capability",
                "args": {"name": "vendor", "value": "{inventory[system_vendor][manufacturer]}"},
            },
            {
                "op": "set-attribute",
                "args": {"path": "/driver_info/ipmi_address", "value": "{inventory[bmc_address]}"},
            },
            {
                "op": "set-attribute",
                "args": {
                    "path": "/properties/memory_mb",
                    "value": "{inventory[memory][physical_mb]}",
                },
            },
            {"op": "set-port-attribute", "args": ["52:54:00:6D:63:00", "/extra/seen", True]},
        ],
        conditions=[LAB],
    )
    _rule(
        env, [{"op": "add-trait", "args": ["CUSTOM_NEVER"]}], conditions=[{**LAB, "invert": True}]
    )
    sealed = env.node(node.id).driver_info["ipmi_password"]
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, INVENTORY, {})
    assert outcome.failure is None
    found = env.node(node.id)
    assert found.driver_info["ipmi_address"] == "10.1.2.3"
    assert found.driver_info["ipmi_password"] == sealed != "hunter2"  # kept as stored
    assert found.properties == {
        "capabilities": "boot_mode:bios,vendor:metalcast",
        "memory_mb": 2048,
    }
    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == ["CUSTOM_LAB"]
        assert repo.ports_of_node(conn, node.id)[0].extra == {"seen": True}
    event = env.history(node.id)[-1]
    assert event.event.startswith("Inspection rules applied: rule ")
    assert (
        "added trait CUSTOM_LAB" in event.event and "set /driver_info/ipmi_address" in event.event
    )
    assert "10.1.2.3" not in event.event


def test_a_fail_action_changes_nothing_and_says_why(env: Env) -> None:
    node = _node(env)
    _rule(env, [{"op": "add-trait", "args": ["CUSTOM_FIRST"]}], priority=50)
    _rule(env, [{"op": "fail", "args": ["only {inventory[memory][physical_mb]} MiB"]}], priority=10)
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, INVENTORY, {})
    assert outcome.failure is not None and outcome.failure.endswith(
        "failed the node: only 2048 MiB"
    )
    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == []


def test_a_rule_that_cannot_apply_is_a_failure_not_a_crash(env: Env) -> None:
    node = _node(env)
    _rule(env, [{"op": "set-attribute", "args": {"path": "/driver", "value": "no-such-driver"}}])
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, INVENTORY, {})
    assert outcome.failure is not None and "no-such-driver" in outcome.failure
    assert env.node(node.id).driver == "fake-hardware"
    _rule(env, [{"op": "set-port-attribute", "args": ["52:54:00:ff:ff:ff", "/extra/x", 1]}])
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, INVENTORY, {})
    assert outcome.failure is not None


def test_rules_never_see_the_nodes_secrets(env: Env) -> None:
    node = _node(env)
    _rule(
        env,
        [
            {
                "op": "set-attribute",
                "args": {"path": "/extra/leak", "value": "{node[driver_info][ipmi_password]}"},
            }
        ],
        sensitive=True,
    )
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        assert node_view(task)["driver_info"]["ipmi_password"] == "******"
        apply_rules(task, INVENTORY, {})
    assert env.node(node.id).extra["leak"] == "******"


def test_plugin_data_comes_back_changed(env: Env) -> None:
    node = _node(env)
    _rule(env, [{"op": "set-plugin-data", "args": {"path": "ruled", "value": True}}])
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, INVENTORY, {"given": 1})
    assert outcome.plugin_data == {"given": 1, "ruled": True}


def test_hostile_inventory_text_cannot_become_a_node_name(env: Env) -> None:
    node = _node(env)
    _rule(
        env,
        [{"op": "set-attribute", "args": ["/name", "{inventory[system_vendor][product_name]}"]}],
    )
    hostile = {**INVENTORY, "system_vendor": {"product_name": "evil\x1b[2J name"}}
    with acquire(env.service.rt, node.id, user="alice", purpose="inspect") as task:
        outcome = apply_rules(task, hostile, {})
    assert outcome.failure is not None and "printable" in outcome.failure
    assert env.node(node.id).name is None
