"""What the conductor does for the features of API 1.32 to 1.51: volume connectors and
targets, the BIOS settings cache, reset_interfaces, protected nodes, port physical
networks, and unique names whoever calls."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import (
    ChangePowerState,
    ChangeProvisionState,
    CreateNode,
    CreatePort,
    CreatePortgroup,
    CreateVolumeConnector,
    CreateVolumeTarget,
    DestroyNode,
    DestroyVolumeConnector,
    DestroyVolumeTarget,
    ProvisionRequest,
    UpdateNode,
    UpdatePort,
    UpdateVolumeConnector,
    UpdateVolumeTarget,
)
from metalcast.db import bios, volumes
from metalcast.db.models import Node
from metalcast.db.rows import Page
from metalcast.drivers import noop
from metalcast.drivers.base import DriverContext
from metalcast.drivers.fake import fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import Conflict, FatalDriverError, InvalidInput, NodeProtected
from metalcast.states import PowerState

MAC1, MAC2 = "52:54:00:00:00:01", "52:54:00:00:00:02"


def act(env: Env, node_id: int, verb: str, **options: Any) -> Node:
    env.service.execute(
        ChangeProvisionState(node_id, ProvisionRequest(verb, **options)), context=ALICE
    )
    return env.wait_settled(node_id)


def managed(env: Env, **values: Any) -> Node:
    """A node verified by ``manage``: powered off, BIOS settings cached."""
    node = env.create("enroll", **values)
    done = act(env, node.id, "manage")
    assert done.provision_state == "manageable"
    assert done.power_state == PowerState.OFF
    return done


# ------------------------------------------------------------------------- volumes


def test_volume_connector_changes_need_the_node_powered_off(env: Env) -> None:
    node = managed(env)
    connector = env.service.execute(
        CreateVolumeConnector(
            {"node_id": node.id, "type": "iqn", "connector_id": "iqn.2017-07.org:a"}
        ),
        context=ALICE,
    )
    updated = env.service.execute(
        UpdateVolumeConnector(connector.id, {"extra": {"k": "v"}}), context=ALICE
    )
    assert updated.extra == {"k": "v"}
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    assert env.wait_settled(node.id).power_state == PowerState.ON
    # Ironic's message (ironic-tempest-plugin matches it), then what to do
    refused = (
        f'The requested action "volume connector update" can not be performed on node '
        f'"{node.uuid}" while it is in state "power on": power it off first'
    )
    with pytest.raises(InvalidInput, match=re.escape(refused)):
        env.service.execute(UpdateVolumeConnector(connector.id, {"extra": {}}), context=ALICE)
    with pytest.raises(InvalidInput, match='"volume connector deletion" can not be performed'):
        env.service.execute(DestroyVolumeConnector(connector.id), context=ALICE)
    # creating is not restricted (as in Ironic)
    env.service.execute(
        CreateVolumeConnector(
            {"node_id": node.id, "type": "wwpn", "connector_id": "50:00:00:00:00:00:00:01"}
        ),
        context=ALICE,
    )


def test_unknown_power_state_is_not_off(env: Env) -> None:
    node = env.create("manageable")  # never verified: power state unknown
    target = env.service.execute(
        CreateVolumeTarget(
            {"node_id": node.id, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"}
        ),
        context=ALICE,
    )
    with pytest.raises(InvalidInput, match='while it is in state "None"'):
        env.service.execute(DestroyVolumeTarget(target.id), context=ALICE)


def test_volume_uniqueness(env: Env) -> None:
    a, b = managed(env), managed(env)
    values = {"node_id": a.id, "type": "iqn", "connector_id": "iqn.x"}
    env.service.execute(CreateVolumeConnector(values), context=ALICE)
    with pytest.raises(Conflict, match=r"type iqn and connector ID iqn\.x already exists"):
        env.service.execute(CreateVolumeConnector({**values, "node_id": b.id}), context=ALICE)
    target = {"node_id": a.id, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"}
    first = env.service.execute(CreateVolumeTarget(target), context=ALICE)
    with pytest.raises(Conflict, match="boot index '0' for the same node"):
        env.service.execute(CreateVolumeTarget({**target, "volume_id": "v2"}), context=ALICE)
    other = env.service.execute(CreateVolumeTarget({**target, "boot_index": 1}), context=ALICE)
    with pytest.raises(Conflict, match="boot index '0'"):
        env.service.execute(UpdateVolumeTarget(other.id, {"boot_index": 0}), context=ALICE)
    moved = env.service.execute(UpdateVolumeTarget(first.id, {"node_id": b.id}), context=ALICE)
    assert moved.node_id == b.id


def test_moving_a_target_needs_the_new_node_off_too(env: Env) -> None:
    a, b = managed(env), managed(env)
    target = env.service.execute(
        CreateVolumeTarget(
            {"node_id": a.id, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"}
        ),
        context=ALICE,
    )
    env.service.execute(ChangePowerState(b.id, "power on", timeout=None), context=ALICE)
    env.wait_settled(b.id)
    with pytest.raises(InvalidInput, match=f'on node "{b.uuid}" while it is in state "power on"'):
        env.service.execute(UpdateVolumeTarget(target.id, {"node_id": b.id}), context=ALICE)


def test_destroying_a_node_removes_its_volume_resources_and_bios_settings(env: Env) -> None:
    node = managed(env)
    env.service.execute(
        CreateVolumeConnector({"node_id": node.id, "type": "ip", "connector_id": "192.0.2.1"}),
        context=ALICE,
    )
    env.service.execute(
        CreateVolumeTarget(
            {"node_id": node.id, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"}
        ),
        context=ALICE,
    )
    with env.db.read() as conn:
        assert bios.list_settings(conn, node.id) != []
    env.service.execute(DestroyNode(node.id), context=ALICE)
    with env.db.read() as conn:
        assert bios.list_settings(conn, node.id) == []
        assert volumes.list_volume_targets(conn, Page()) == []
    again = managed(env)  # the same connector ID is free again
    env.service.execute(
        CreateVolumeConnector({"node_id": again.id, "type": "ip", "connector_id": "192.0.2.1"}),
        context=ALICE,
    )


# ------------------------------------------------------------------------------ BIOS


def _settings(env: Env, node_id: int) -> dict[str, str | None]:
    with env.db.read() as conn:
        return {s.name: s.value for s in bios.list_settings(conn, node_id)}


def test_bios_settings_are_cached_at_verify_and_after_cleaning(env: Env) -> None:
    node = managed(env)
    assert _settings(env, node.id) == {
        "boot_mode": "uefi",
        "hyperthreading": "enabled",
        "secure_boot": "disabled",
    }
    step = {
        "interface": "bios",
        "step": "apply_configuration",
        "args": {"settings": [{"name": "hyperthreading", "value": "disabled"}]},
    }
    assert act(env, node.id, "clean", clean_steps=[step]).provision_state == "manageable"
    assert _settings(env, node.id)["hyperthreading"] == "disabled"


class UnreadableBIOS(noop.NoBIOS):
    """A BIOS interface whose BMC refuses to report settings."""

    name = "unreadable"

    def get_settings(self, ctx: DriverContext) -> dict[str, str]:
        raise FatalDriverError("the BMC refused", operation="get_settings")


def test_a_failed_bios_read_does_not_fail_verification(env: Env) -> None:
    hw = dataclasses.replace(
        FAKE_HARDWARE, supported={**FAKE_HARDWARE.supported, "bios": (UnreadableBIOS,)}
    )
    service = env.make(
        registry=DriverRegistry([hw], factories=fake_factories(env.bmc)), hostname="conductor-2"
    )
    node = service.execute(CreateNode({"driver": "fake-hardware"}), context=ALICE)
    service.execute(ChangeProvisionState(node.id, ProvisionRequest("manage")), context=ALICE)
    assert env.wait_settled(node.id).provision_state == "manageable"
    assert _settings(env, node.id) == {}


def test_no_bios_interface_caches_nothing(env: Env) -> None:
    node = managed(env, bios_interface="no-bios")
    assert _settings(env, node.id) == {}


# ----------------------------------------------------------------- reset_interfaces

MINIMAL = dataclasses.replace(
    FAKE_HARDWARE,
    name="fake-minimal",
    supported={**FAKE_HARDWARE.supported, "bios": (noop.NoBIOS,), "rescue": (noop.NoRescue,)},
)


@pytest.fixture
def two_types(env: Env) -> Env:
    registry = DriverRegistry([FAKE_HARDWARE, MINIMAL], factories=fake_factories(env.bmc))
    return dataclasses.replace(env, service=env.make(registry=registry, hostname="conductor-2"))


def test_driver_change_keeps_interfaces_and_names_an_unsupported_one(two_types: Env) -> None:
    env = two_types
    node = env.create("manageable")
    assert (node.bios_interface, node.rescue_interface) == ("fake", "fake")
    with pytest.raises(InvalidInput, match="does not support bios_interface 'fake'"):
        env.service.execute(UpdateNode(node.id, {"driver": "fake-minimal"}), context=ALICE)
    updated = env.service.execute(
        UpdateNode(
            node.id,
            {
                "driver": "fake-minimal",
                "bios_interface": "no-bios",
                "rescue_interface": "no-rescue",
            },
        ),
        context=ALICE,
    )
    assert updated.driver == "fake-minimal"
    assert updated.console_interface == "fake"  # kept


def test_reset_interfaces_takes_the_new_defaults(two_types: Env) -> None:
    env = two_types
    node = env.create("manageable", console_interface="no-console", raid_interface="no-raid")
    updated = env.service.execute(
        UpdateNode(
            node.id, {"driver": "fake-minimal", "raid_interface": "no-raid"}, reset_interfaces=True
        ),
        context=ALICE,
    )
    assert updated.bios_interface == "no-bios"
    assert updated.console_interface == "fake"  # reset to the default
    assert updated.raid_interface == "no-raid"  # given: kept
    with pytest.raises(InvalidInput, match="only be used when changing the node's driver"):
        env.service.execute(
            UpdateNode(node.id, {"extra": {}}, reset_interfaces=True), context=ALICE
        )


# ------------------------------------------------------------------- protected nodes


def test_protected_nodes_cannot_be_undeployed_or_rebuilt(env: Env) -> None:
    node = env.create("available")
    assert act(env, node.id, "active").provision_state == "active"
    env.service.execute(UpdateNode(node.id, {"protected": True}), context=ALICE)
    for verb in ("deleted", "undeploy", "rebuild"):
        with pytest.raises(NodeProtected, match="protected and cannot be undeployed"):
            env.service.execute(
                ChangeProvisionState(node.id, ProvisionRequest(verb)), context=ALICE
            )
    env.service.execute(UpdateNode(node.id, {"protected": False}), context=ALICE)
    assert act(env, node.id, "rebuild").provision_state == "active"


# ---------------------------------------------------------------- unique node values


def test_a_taken_name_is_refused_by_the_conductor(env: Env) -> None:
    env.create("enroll", name="taken", instance_uuid="00000000-0000-0000-0000-000000000001")
    node = env.create("enroll", name="free")
    with pytest.raises(Conflict, match="A node with name taken already exists"):
        env.service.execute(UpdateNode(node.id, {"name": "taken"}), context=ALICE)
    with pytest.raises(Conflict, match="instance_uuid"):
        env.service.execute(
            UpdateNode(node.id, {"instance_uuid": "00000000-0000-0000-0000-000000000001"}),
            context=ALICE,
        )
    assert env.node(node.id).name == "free"


# ------------------------------------------------------------ port physical networks


def test_ports_of_a_portgroup_share_a_physical_network(env: Env) -> None:
    node = env.create("manageable")
    group = env.service.execute(
        CreatePortgroup({"node_id": node.id, "name": "bond0"}), context=ALICE
    )
    first = {"node_id": node.id, "portgroup_id": group.id, "physical_network": "physnet1"}
    env.service.execute(CreatePort({**first, "address": MAC1}), context=ALICE)
    with pytest.raises(Conflict, match="physical network physnet2 cannot become a member"):
        env.service.execute(
            CreatePort({**first, "address": MAC2, "physical_network": "physnet2"}), context=ALICE
        )
    loose = env.service.execute(
        CreatePort({"node_id": node.id, "address": MAC2, "physical_network": "physnet2"}),
        context=ALICE,
    )
    with pytest.raises(Conflict, match="physical network physnet1"):
        env.service.execute(UpdatePort(loose.id, {"portgroup_id": group.id}), context=ALICE)
    joined = env.service.execute(
        UpdatePort(loose.id, {"portgroup_id": group.id, "physical_network": "physnet1"}),
        context=ALICE,
    )
    assert joined.portgroup_id == group.id


# ----------------------------------------------------------------------- deploy_step


def test_deploy_step_shows_the_deploy_while_it_waits(env: Env) -> None:
    node = env.create("available", driver_info={"fake_wait": "deploy"})
    waiting = act(env, node.id, "active")
    assert waiting.provision_state == "wait call-back"
    assert waiting.deploy_step is not None
    assert (waiting.deploy_step["interface"], waiting.deploy_step["step"]) == ("deploy", "deploy")
    env.service.execute(ChangeProvisionState(node.id, ProvisionRequest("abort")), context=ALICE)
    aborted = env.wait_settled(node.id)
    assert aborted.provision_state == "deploy failed"
    assert aborted.deploy_step is None
    plain = env.create("available")
    assert act(env, plain.id, "active").deploy_step is None
