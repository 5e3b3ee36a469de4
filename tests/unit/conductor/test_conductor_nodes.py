"""Node records, ports, VIFs, traits, management calls and the local client."""

from __future__ import annotations

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import (
    ChangeProvisionState,
    CreateNode,
    CreatePort,
    CreatePortgroup,
    DestroyNode,
    DestroyPort,
    DestroyPortgroup,
    DriverProperties,
    GetBootDevice,
    GetSensorsData,
    GetSupportedBootDevices,
    InjectNmi,
    InterfaceValidation,
    IsAcceptingWork,
    ListHardwareTypes,
    ProvisionRequest,
    RemoveTraits,
    SetBootDevice,
    SetMaintenance,
    SetTraits,
    UpdateNode,
    UpdatePort,
    Validate,
    VendorMethods,
    VendorPassthru,
    VifAttach,
    VifDetach,
    VifList,
)
from metalcast.errors import Conflict, InvalidInput, NodeProtected, NotFound
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import MASK

MAC1, MAC2 = "52:54:00:00:00:01", "52:54:00:00:00:02"


def test_create_fills_interfaces_seals_secrets_and_records_history(env: Env) -> None:
    node = env.service.execute(
        CreateNode(
            {"driver": "fake-hardware", "name": "n1", "driver_info": {"ipmi_password": "pw"}}
        ),
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
        env.service.execute(CreateNode({"driver": "ipmi-nope"}), context=ALICE)
    with pytest.raises(InvalidInput, match="does not support implementation 'nope'"):
        env.service.execute(
            CreateNode({"driver": "fake-hardware", "power_interface": "nope"}), context=ALICE
        )


def test_update_keeps_masked_secrets(env: Env) -> None:
    node = env.create("enroll", driver_info={"ipmi_password": "pw", "ipmi_address": "a"})
    updated = env.service.execute(
        UpdateNode(node.id, {"driver_info": {"ipmi_password": MASK, "ipmi_address": "b"}}),
        context=ALICE,
    )
    revealed = env.secret_box.reveal(updated.driver_info)
    assert revealed == {"ipmi_password": "pw", "ipmi_address": "b"}


def test_interface_change_needs_an_allowed_state_or_maintenance(env: Env) -> None:
    node = env.create("available")
    env.service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match=r"Cannot change rescue_interface of node .* 'active'"):
        env.service.execute(UpdateNode(node.id, {"rescue_interface": "no-rescue"}), context=ALICE)
    env.service.execute(SetMaintenance(node.id, True, reason="swap"), context=ALICE)
    updated = env.service.execute(
        UpdateNode(node.id, {"rescue_interface": "no-rescue"}), context=ALICE
    )
    assert updated.rescue_interface == "no-rescue"


def test_destroy_rules(env: Env) -> None:
    node = env.create("available")
    env.service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match=r"in state 'active'; undeploy it first \(or put it in"):
        env.service.execute(DestroyNode(node.id), context=ALICE)
    env.service.execute(UpdateNode(node.id, {"protected": True}), context=ALICE)
    env.service.execute(SetMaintenance(node.id, True, reason=None), context=ALICE)
    with pytest.raises(NodeProtected, match="protected"):
        env.service.execute(DestroyNode(node.id), context=ALICE)
    env.service.execute(UpdateNode(node.id, {"protected": False}), context=ALICE)
    env.service.execute(DestroyNode(node.id), context=ALICE)
    with pytest.raises(NotFound):
        env.node(node.id)


def test_ports_vifs_and_active_nodes(env: Env) -> None:
    node = env.create("available", network_interface="fake")  # records VIFs on ports
    port = env.service.execute(CreatePort({"node_id": node.id, "address": MAC1}), context=ALICE)
    with pytest.raises(Conflict, match="already exists"):
        env.service.execute(CreatePort({"node_id": node.id, "address": MAC1}), context=ALICE)
    env.service.execute(VifAttach(node.id, {"id": "vif-1"}), context=ALICE)
    assert env.service.execute(VifList(node.id), context=ALICE) == [{"id": "vif-1"}]
    with pytest.raises(InvalidInput, match="not enough free physical ports"):
        env.service.execute(VifAttach(node.id, {"id": "vif-2"}), context=ALICE)
    env.service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    env.wait_settled(node.id)
    with pytest.raises(Conflict, match="while it is active; put it in maintenance first"):
        env.service.execute(CreatePort({"node_id": node.id, "address": MAC2}), context=ALICE)
    with pytest.raises(Conflict):
        env.service.execute(DestroyPort(port.id), context=ALICE)
    env.service.execute(VifDetach(node.id, "vif-1"), context=ALICE)
    with pytest.raises(InvalidInput, match="not attached"):
        env.service.execute(VifDetach(node.id, "vif-1"), context=ALICE)
    env.service.execute(DestroyPort(port.id), context=ALICE)


def test_a_noop_network_records_no_vifs(env: Env) -> None:
    node = env.create("available", network_interface="noop")  # no port at all
    env.service.execute(VifAttach(node.id, {"id": "vif-1"}), context=ALICE)
    env.service.execute(VifAttach(node.id, {"id": "vif-1"}), context=ALICE)
    assert env.service.execute(VifList(node.id), context=ALICE) == []
    env.service.execute(VifDetach(node.id, "vif-1"), context=ALICE)
    env.service.execute(VifDetach(node.id, "never-attached"), context=ALICE)
    with pytest.raises(InvalidInput, match="needs an 'id'"):
        env.service.execute(VifAttach(node.id, {"vif": "x"}), context=ALICE)
    assert env.node(node.id).reservation is None


def test_port_in_portgroup_of_another_node(env: Env) -> None:
    a, b = env.create("manageable"), env.create("manageable")
    group = env.service.execute(CreatePortgroup({"node_id": b.id, "name": "bond0"}), context=ALICE)
    with pytest.raises(InvalidInput, match="portgroup of its own node"):
        env.service.execute(
            CreatePort({"node_id": a.id, "address": MAC1, "portgroup_id": group.id}), context=ALICE
        )
    port = env.service.execute(
        CreatePort({"node_id": b.id, "address": MAC1, "portgroup_id": group.id}), context=ALICE
    )
    with pytest.raises(InvalidInput, match="contains ports"):
        env.service.execute(DestroyPortgroup(group.id), context=ALICE)
    env.service.execute(UpdatePort(port.id, {"portgroup_id": None}), context=ALICE)
    env.service.execute(DestroyPortgroup(group.id), context=ALICE)


def test_traits(env: Env) -> None:
    node = env.create("manageable")
    env.service.execute(SetTraits(node.id, ["CUSTOM_A", "CUSTOM_B"], replace=True), context=ALICE)
    env.service.execute(SetTraits(node.id, ["CUSTOM_C"], replace=False), context=ALICE)
    env.service.execute(RemoveTraits(node.id, ["CUSTOM_A"]), context=ALICE)
    from metalcast.db import repository as repo

    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == ["CUSTOM_B", "CUSTOM_C"]
    env.service.execute(RemoveTraits(node.id, None), context=ALICE)
    with env.db.read() as conn:
        assert repo.get_traits(conn, node.id) == []


def test_management_calls(env: Env) -> None:
    node = env.create("manageable")
    assert "pxe" in env.service.execute(GetSupportedBootDevices(node.id), context=ALICE)
    env.service.execute(SetBootDevice(node.id, "pxe", persistent=True), context=ALICE)
    assert env.service.execute(GetBootDevice(node.id), context=ALICE) == {
        "boot_device": "pxe",
        "persistent": True,
    }
    with pytest.raises(InvalidInput, match="Invalid boot device 'floppy'"):
        env.service.execute(SetBootDevice(node.id, "floppy", persistent=False), context=ALICE)
    env.service.execute(InjectNmi(node.id), context=ALICE)
    assert isinstance(env.service.execute(GetSensorsData(node.id), context=ALICE), dict)
    assert "set_power_state" in env.service.execute(VendorMethods(node.id), context=ALICE)
    with pytest.raises(InvalidInput, match="Unsupported vendor passthru method"):
        env.service.execute(VendorPassthru(node.id, "nope", {}), context=ALICE)


def test_local_client_validate_and_drivers(env: Env) -> None:
    client = LocalConductorClient(env.service)
    node = env.create("manageable", driver_info={"fake_fail": "validate"})
    results = client.call(Validate(node.id), context=ALICE)
    assert results["power"].result is False
    assert "injected failure in validate" in (results["power"].reason or "")
    good = env.create("manageable")
    assert client.call(Validate(good.id), context=ALICE)["power"] == InterfaceValidation(True, None)
    types = {t.name: t for t in client.call(ListHardwareTypes(), context=ALICE)}
    assert set(types) == {"fake-hardware", "ipmi", "redfish"}
    hw = types["fake-hardware"]
    assert hw.hosts == ["conductor-1"]
    assert "fake_fail" in client.call(DriverProperties("fake-hardware"), context=ALICE)
    with pytest.raises(NotFound):
        client.call(DriverProperties("nope"), context=ALICE)
    client.call(ChangeProvisionState(good.id, ProvisionRequest(verb="provide")), context=ALICE)
    assert env.wait_settled(good.id).provision_state == "available"
    assert client.call(IsAcceptingWork(), context=ALICE)
