"""Node records, ports, VIFs, traits, management calls and the local client."""

from __future__ import annotations

import pytest
from conductor_env import ALICE, Env

from metalcast.conductor.flows import ProvisionOptions
from metalcast.errors import Conflict, InvalidInput, NodeProtected, NotFound
from metalcast.rpc.client import InterfaceValidation, ProvisionRequest
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import MASK

MAC1, MAC2 = "52:54:00:00:00:01", "52:54:00:00:00:02"


def test_create_fills_interfaces_seals_secrets_and_records_history(env: Env) -> None:
    node = env.service.create_node(
        {"driver": "fake-hardware", "name": "n1", "driver_info": {"ipmi_password": "pw"}},
        context=ALICE,
    )
    assert node.provision_state == "enroll"
    assert node.power_interface == "fake"
    assert node.network_interface == "noop"
    assert str(node.driver_info["ipmi_password"]).startswith("fernet:")
    assert env.secret_box.reveal(node.driver_info)["ipmi_password"] == "pw"
    [created] = env.history(node.id)
    assert created.event_type == "created"
    assert created.user == "alice"


def test_create_rejects_unknown_driver_and_interface(env: Env) -> None:
    with pytest.raises(InvalidInput, match="Unknown hardware type 'ipmi-nope'"):
        env.service.create_node({"driver": "ipmi-nope"}, context=ALICE)
    with pytest.raises(InvalidInput, match="does not support implementation 'nope'"):
        env.service.create_node(
            {"driver": "fake-hardware", "power_interface": "nope"}, context=ALICE
        )


def test_update_keeps_masked_secrets(env: Env) -> None:
    node = env.create("enroll", driver_info={"ipmi_password": "pw", "ipmi_address": "a"})
    updated = env.service.update_node(
        node.id, {"driver_info": {"ipmi_password": MASK, "ipmi_address": "b"}}, context=ALICE
    )
    revealed = env.secret_box.reveal(updated.driver_info)
    assert revealed == {"ipmi_password": "pw", "ipmi_address": "b"}


def test_interface_change_needs_an_allowed_state_or_maintenance(env: Env) -> None:
    node = env.create("available")
    env.service.change_provision_state(node.id, "active", ProvisionOptions(), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match=r"Cannot change rescue_interface of node .* 'active'"):
        env.service.update_node(node.id, {"rescue_interface": "no-rescue"}, context=ALICE)
    env.service.set_maintenance(node.id, True, reason="swap", context=ALICE)
    updated = env.service.update_node(node.id, {"rescue_interface": "no-rescue"}, context=ALICE)
    assert updated.rescue_interface == "no-rescue"


def test_destroy_rules(env: Env) -> None:
    node = env.create("available")
    env.service.change_provision_state(node.id, "active", ProvisionOptions(), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match=r"in state 'active'; undeploy it first \(or put it in"):
        env.service.destroy_node(node.id, context=ALICE)
    env.service.update_node(node.id, {"protected": True}, context=ALICE)
    env.service.set_maintenance(node.id, True, reason=None, context=ALICE)
    with pytest.raises(NodeProtected, match="protected"):
        env.service.destroy_node(node.id, context=ALICE)
    env.service.update_node(node.id, {"protected": False}, context=ALICE)
    env.service.destroy_node(node.id, context=ALICE)
    with pytest.raises(NotFound):
        env.node(node.id)


def test_ports_vifs_and_active_nodes(env: Env) -> None:
    node = env.create("available")
    port = env.service.create_port({"node_id": node.id, "address": MAC1}, context=ALICE)
    with pytest.raises(Conflict, match="already exists"):
        env.service.create_port({"node_id": node.id, "address": MAC1}, context=ALICE)
    env.service.vif_attach(node.id, {"id": "vif-1"}, context=ALICE)
    assert env.service.vif_list(node.id, context=ALICE) == [{"id": "vif-1"}]
    with pytest.raises(Conflict, match="not enough free physical ports"):
        env.service.vif_attach(node.id, {"id": "vif-2"}, context=ALICE)
    env.service.change_provision_state(node.id, "active", ProvisionOptions(), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match="while it is active; put it in maintenance first"):
        env.service.create_port({"node_id": node.id, "address": MAC2}, context=ALICE)
    with pytest.raises(Conflict):
        env.service.destroy_port(port.id, context=ALICE)
    env.service.vif_detach(node.id, "vif-1", context=ALICE)
    with pytest.raises(InvalidInput, match="not attached"):
        env.service.vif_detach(node.id, "vif-1", context=ALICE)
    env.service.destroy_port(port.id, context=ALICE)


def test_port_in_portgroup_of_another_node(env: Env) -> None:
    a, b = env.create("manageable"), env.create("manageable")
    group = env.service.create_portgroup({"node_id": b.id, "name": "bond0"}, context=ALICE)
    with pytest.raises(InvalidInput, match="portgroup of its own node"):
        env.service.create_port(
            {"node_id": a.id, "address": MAC1, "portgroup_id": group.id}, context=ALICE
        )
    port = env.service.create_port(
        {"node_id": b.id, "address": MAC1, "portgroup_id": group.id}, context=ALICE
    )
    with pytest.raises(InvalidInput, match="contains ports"):
        env.service.destroy_portgroup(group.id, context=ALICE)
    env.service.update_port(port.id, {"portgroup_id": None}, context=ALICE)
    env.service.destroy_portgroup(group.id, context=ALICE)


def test_traits(env: Env) -> None:
    node = env.create("manageable")
    env.service.set_traits(node.id, ["CUSTOM_A", "CUSTOM_B"], replace=True, context=ALICE)
    env.service.set_traits(node.id, ["CUSTOM_C"], replace=False, context=ALICE)
    env.service.remove_traits(node.id, ["CUSTOM_A"], context=ALICE)
    from metalcast.db import repository as repo

    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == ["CUSTOM_B", "CUSTOM_C"]
    env.service.remove_traits(node.id, None, context=ALICE)
    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == []


def test_management_calls(env: Env) -> None:
    node = env.create("manageable")
    assert "pxe" in env.service.get_supported_boot_devices(node.id, context=ALICE)
    env.service.set_boot_device(node.id, "pxe", persistent=True, context=ALICE)
    assert env.service.get_boot_device(node.id, context=ALICE) == {
        "boot_device": "pxe",
        "persistent": True,
    }
    with pytest.raises(InvalidInput, match="Invalid boot device 'floppy'"):
        env.service.set_boot_device(node.id, "floppy", persistent=False, context=ALICE)
    env.service.inject_nmi(node.id, context=ALICE)
    assert isinstance(env.service.get_sensors_data(node.id, context=ALICE), dict)
    assert "set_power_state" in env.service.vendor_methods(node.id, context=ALICE)
    with pytest.raises(InvalidInput, match="Unsupported vendor passthru method"):
        env.service.vendor_passthru(node.id, "nope", {}, context=ALICE)


def test_local_client_validate_and_drivers(env: Env) -> None:
    client = LocalConductorClient(env.service)
    node = env.create("manageable", driver_info={"fake_fail": "validate"})
    results = client.validate(node.id, context=ALICE)
    assert results["power"].result is False
    assert "injected failure in validate" in (results["power"].reason or "")
    good = env.create("manageable")
    assert client.validate(good.id, context=ALICE)["power"] == InterfaceValidation(True, None)
    types = {t.name: t for t in client.list_hardware_types()}
    assert set(types) == {"fake-hardware", "ipmi", "redfish"}
    hw = types["fake-hardware"]
    assert hw.hosts == ["conductor-1"]
    assert "fake_fail" in client.driver_properties("fake-hardware")
    with pytest.raises(NotFound):
        client.driver_properties("nope")
    client.change_provision_state(good.id, ProvisionRequest(verb="provide"), context=ALICE)
    assert env.wait_settled(good.id).provision_state == "available"
    assert client.is_accepting_work()
