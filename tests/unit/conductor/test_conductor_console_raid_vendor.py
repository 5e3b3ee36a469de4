"""What the conductor does for the node console, RAID configurations and driver-level
vendor passthru: under the lock, through the driver interfaces, recorded in history."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import (
    ChangePowerState,
    ChangeProvisionState,
    ConsoleInfo,
    DriverVendorMethods,
    DriverVendorPassthru,
    GetConsole,
    ProvisionRequest,
    RaidLogicalDiskProperties,
    SetConsoleMode,
    SetTargetRaidConfig,
)
from metalcast.conductor.interfaces import OperationFailed
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.drivers import noop
from metalcast.drivers.fake import fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput, NotFound

ROOT = {"size_gb": 40, "raid_level": "1+0", "is_root_volume": True}
TARGET: dict[str, Any] = {"logical_disks": [ROOT, {"size_gb": "MAX", "raid_level": "0"}]}


def events(env: Env, node: Node, event_type: str) -> list[str]:
    return [e.event for e in env.history(node.id) if e.event_type == event_type]


def console(env: Env, node: Node, enabled: bool) -> Node:
    env.service.execute(SetConsoleMode(node.id, enabled), context=ALICE)
    return env.wait_settled(node.id)


# --------------------------------------------------------------------------- console


def test_console_on_and_off(env: Env) -> None:
    node = env.create(last_error="an old failure")
    assert env.service.execute(GetConsole(node.id), context=ALICE) == ConsoleInfo(False, None)

    done = console(env, node, True)
    assert done.console_enabled is True
    assert done.last_error is None
    assert done.reservation is None
    shown = env.service.execute(GetConsole(node.id), context=ALICE)
    assert shown.enabled is True
    assert shown.info == {}

    console(env, node, True)  # already enabled: nothing happens
    assert events(env, node, "console") == ["console enabled by alice"]
    assert console(env, node, False).console_enabled is False
    assert events(env, node, "console")[-1] == "console disabled by alice"


def test_console_failure_keeps_the_state_and_records_why(env: Env) -> None:
    node = env.create(driver_info={"fake_fail": ["console"]})
    done = console(env, node, True)
    assert done.console_enabled is False
    assert done.provision_state == "manageable"
    assert done.reservation is None
    assert done.last_error == (
        f"Failed to enable the console of node {node.uuid}: console interface (fake) failed "
        "to start console: fake-hardware: injected failure in console"
    )
    assert events(env, node, "console") == [done.last_error]


def test_no_console_is_refused_before_anything_is_written(env: Env) -> None:
    node = env.create(console_interface="no-console")
    with pytest.raises(InvalidInput, match="its console_interface is 'no-console'"):
        env.service.execute(SetConsoleMode(node.id, True), context=ALICE)
    after = env.node(node.id)
    assert (after.reservation, after.console_enabled) == (None, False)
    assert env.service.rt.workers.busy == 0
    # a disabled console is not checked (Ironic looks at console_enabled first); an
    # enabled one of a node whose interface became no-console is
    assert env.service.execute(GetConsole(node.id), context=ALICE) == ConsoleInfo(False, None)
    with env.db.begin() as conn:
        repo.update_node(conn, node.id, {"console_enabled": True})
    with pytest.raises(InvalidInput, match="does not support console"):
        env.service.execute(GetConsole(node.id), context=ALICE)


def test_console_needs_valid_driver_info(env: Env) -> None:
    node = env.create(driver_info={"fake_latency": -1})
    with pytest.raises(OperationFailed, match="fake_latency") as info:
        env.service.execute(SetConsoleMode(node.id, True), context=ALICE)
    assert info.value.status_code == 400
    assert env.node(node.id).reservation is None


# ------------------------------------------------------------------------------ RAID


def test_target_raid_config_is_checked_by_the_raid_interface(env: Env) -> None:
    node = env.create()
    env.service.execute(SetTargetRaidConfig(node.id, TARGET), context=ALICE)
    assert env.node(node.id).target_raid_config == TARGET
    with pytest.raises(InvalidInput, match=r"logical_disks\.0\.raid_level"):
        bad = {"logical_disks": [{**ROOT, "raid_level": "10"}]}
        env.service.execute(SetTargetRaidConfig(node.id, bad), context=ALICE)
    assert env.node(node.id).target_raid_config == TARGET
    env.service.execute(SetTargetRaidConfig(node.id, {}), context=ALICE)
    after = env.node(node.id)
    assert (after.target_raid_config, after.reservation) == ({}, None)
    assert events(env, node, "raid") == [
        "target RAID configuration set to 2 logical disk(s): RAID 1+0 of 40 GiB, RAID 0 of "
        "MAX GiB by alice",
        "target RAID configuration cleared by alice",
    ]


def test_no_raid_is_not_found(env: Env) -> None:
    node = env.create(raid_interface="no-raid")
    with pytest.raises(NotFound, match="does not support raid"):
        env.service.execute(SetTargetRaidConfig(node.id, TARGET), context=ALICE)
    env.service.execute(SetTargetRaidConfig(node.id, {}), context=ALICE)


def clean(env: Env, node: Node, step: str) -> Node:
    steps = [{"interface": "raid", "step": step, "args": {}}]
    env.service.execute(
        ChangeProvisionState(node.id, ProvisionRequest("clean", clean_steps=steps)), context=ALICE
    )
    return env.wait_settled(node.id)


def test_raid_steps_record_what_they_applied(env: Env) -> None:
    node = env.create(properties={"cpus": 4, "local_gb": 10})
    env.service.execute(SetTargetRaidConfig(node.id, TARGET), context=ALICE)

    done = clean(env, node, "create_configuration")
    assert done.provision_state == "manageable", done.last_error
    assert done.raid_config == {**TARGET, "last_updated": env.clock.now().isoformat()}
    assert done.properties == {"cpus": 4, "local_gb": 40}
    assert done.clean_step is None

    done = clean(env, node, "delete_configuration")
    assert done.raid_config == {}
    assert done.properties["local_gb"] == 40  # deleting does not shrink the disk
    assert events(env, node, "raid")[-2:] == [
        "RAID configuration is 2 logical disk(s): RAID 1+0 of 40 GiB, RAID 0 of MAX GiB",
        "RAID configuration was deleted",
    ]


def test_logical_disk_properties_of_the_default_raid_interface(env: Env) -> None:
    properties = env.service.execute(RaidLogicalDiskProperties("fake-hardware"), context=ALICE)
    assert properties["raid_level"].endswith("Required.")
    with pytest.raises(NotFound, match="Driver nope could not be found"):
        env.service.execute(RaidLogicalDiskProperties("nope"), context=ALICE)


NO_EXTRAS = dataclasses.replace(
    FAKE_HARDWARE,
    name="fake-bare",
    supported={**FAKE_HARDWARE.supported, "raid": (noop.NoRAID,), "vendor": (noop.NoVendor,)},
)


def test_hardware_types_without_raid_or_vendor(env: Env) -> None:
    registry = DriverRegistry([NO_EXTRAS], factories=fake_factories(env.bmc))
    service = env.make(registry=registry, hostname="conductor-2")
    with pytest.raises(NotFound, match="default raid interface is 'no-raid'"):
        service.execute(RaidLogicalDiskProperties("fake-bare"), context=ALICE)
    assert service.execute(DriverVendorMethods("fake-bare"), context=ALICE) == {}
    with pytest.raises(InvalidInput, match="methods: none"):
        service.execute(
            DriverVendorPassthru("fake-bare", "list_bmcs", args={}, http_method="POST"),
            context=ALICE,
        )


# ------------------------------------------------------------ driver vendor passthru


def test_driver_vendor_passthru_reads_the_fake_bmc(env: Env) -> None:
    node = env.create()
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    env.wait_settled(node.id)
    methods = env.service.execute(DriverVendorMethods("fake-hardware"), context=ALICE)
    assert methods["list_bmcs"]["http_methods"] == ["GET", "POST"]
    result = env.service.execute(
        DriverVendorPassthru("fake-hardware", "list_bmcs", args={}, http_method="GET"),
        context=ALICE,
    )
    assert result[node.uuid]["power_state"] == "power on"
    with pytest.raises(InvalidInput, match="does not support HTTP DELETE"):
        env.service.execute(
            DriverVendorPassthru("fake-hardware", "list_bmcs", args={}, http_method="DELETE"),
            context=ALICE,
        )
    with pytest.raises(NotFound):
        env.service.execute(DriverVendorMethods("nope"), context=ALICE)


def test_console_tokens_open_one_node_until_they_expire(env: Env) -> None:
    from metalcast.conductor.console import check_token, issue_token

    one, other = env.create(), env.create()
    token = issue_token(env.service.rt, one.uuid, expires=4102444800)  # 2100
    assert check_token(env.service.rt, one.id, token)
    assert not check_token(env.service.rt, other.id, token)
    stale = issue_token(env.service.rt, one.uuid, expires=1)
    assert not check_token(env.service.rt, one.id, stale)
    stamp, _, signature = token.partition(".")
    assert not check_token(env.service.rt, one.id, f"{int(stamp) + 1}.{signature}")
    assert not check_token(env.service.rt, one.id, "garbage")


def test_console_output_and_input_of_a_console_without_a_log(env: Env) -> None:
    from metalcast.calls import ReadConsole, WriteConsole

    node = console(env, env.create(), True)
    chunk = env.service.execute(ReadConsole(node.id), context=ALICE)
    assert (chunk.data, chunk.open) == ("", False)
    with pytest.raises(OperationFailed, match="takes no input"):
        env.service.execute(WriteConsole(node.id, "eA=="), context=ALICE)
    with pytest.raises(InvalidInput, match="base64"):
        env.service.execute(WriteConsole(node.id, "not base64!"), context=ALICE)
