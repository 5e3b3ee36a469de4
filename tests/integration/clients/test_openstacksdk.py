"""openstacksdk's baremetal proxy, unmodified, against `metalcast server`."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(metalcast_url: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=metalcast_url,
        load_yaml_config=False,
        load_envvars=False,
    )


def test_lifecycle_through_the_sdk(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-1", provision_state="enroll"
    )
    assert node.provision_state == "enroll"
    conn.baremetal.create_port(node_id=node.id, address="52:54:00:bb:00:01")

    for verb, state in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
        ("deleted", "available"),
    ]:
        node = conn.baremetal.set_node_provision_state(node, verb, wait=True, timeout=60)
        assert node.provision_state == state
        assert node.last_error is None

    listed = {n.name: n for n in conn.baremetal.nodes(details=True)}
    assert listed["sdk-1"].provision_state == "available"


def test_sdk_creates_in_server_default_and_in_manageable(
    conn: openstack.connection.Connection,
) -> None:
    plain = conn.baremetal.create_node(driver="fake-hardware", name="sdk-default")
    assert plain.provision_state == "enroll"
    # asking for manageable makes the SDK create, then manage and wait itself
    managed = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-managed", provision_state="manageable"
    )
    assert managed.provision_state == "manageable"
    assert conn.baremetal.get_node("sdk-managed").power_state == "power off"


def test_update_power_and_validate(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-2", provision_state="enroll"
    )
    node = conn.baremetal.update_node(node, extra={"rack": "r1"}, description="spare")
    assert node.extra == {"rack": "r1"}
    assert conn.baremetal.get_node("sdk-2").description == "spare"

    conn.baremetal.set_node_power_state(node, "power on", wait=True, timeout=60)
    assert conn.baremetal.get_node(node.id).power_state == "power on"

    result = conn.baremetal.validate_node(node, required=("power", "management"))
    assert result["power"].result is True


def test_errors_are_sdk_exceptions(conn: openstack.connection.Connection) -> None:
    with pytest.raises(exceptions.NotFoundException):
        conn.baremetal.get_node("no-such-node")
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-3", provision_state="enroll"
    )
    with pytest.raises(exceptions.ConflictException):
        conn.baremetal.create_node(driver="fake-hardware", name="sdk-3", provision_state="enroll")
    with pytest.raises(exceptions.BadRequestException):
        conn.baremetal.set_node_provision_state(node, "active")


# ---- features openstacksdk refused before the maximum reached 1.51 and 1.60 --------


def test_version_discovery_offers_1_60(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(driver="fake-hardware", name="sdk-version")
    assert conn.baremetal.get_node(node.id).owner is None  # 1.50 field, negotiated


def test_traits_through_the_sdk(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(driver="fake-hardware", name="sdk-traits")
    conn.baremetal.set_node_traits(node, ["CUSTOM_GPU", "CUSTOM_RAID"])
    conn.baremetal.add_node_trait(node, "CUSTOM_SSD")
    conn.baremetal.remove_node_trait(node, "CUSTOM_RAID")
    assert sorted(conn.baremetal.get_node(node.id).traits) == ["CUSTOM_GPU", "CUSTOM_SSD"]


def test_rescue_and_unrescue_through_the_sdk(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-rescue", provision_state="available"
    )
    node = conn.baremetal.set_node_provision_state(node, "active", wait=True, timeout=60)
    node = conn.baremetal.set_node_provision_state(
        node, "rescue", rescue_password="Rescue-Sdk-Pass-4f1e", wait=True, timeout=60
    )
    assert node.provision_state == "rescue"
    # the SDK knows no target state to wait for after unrescue: wait for active
    conn.baremetal.set_node_provision_state(node, "unrescue")
    [node] = conn.baremetal.wait_for_nodes_provision_state([node], "active", timeout=60)
    assert node.provision_state == "active"
    assert node.last_error is None


def test_config_drive_on_rebuild_through_the_sdk(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(
        driver="fake-hardware", name="sdk-rebuild", provision_state="available"
    )
    node = conn.baremetal.set_node_provision_state(node, "active", wait=True, timeout=60)
    node = conn.baremetal.set_node_provision_state(
        node, "rebuild", config_drive="http://example.com/cd.iso", wait=True, timeout=60
    )
    assert node.provision_state == "active"


def test_volume_connector_through_the_sdk(conn: openstack.connection.Connection) -> None:
    node = conn.baremetal.create_node(driver="fake-hardware", name="sdk-volume")
    created = conn.baremetal.create_volume_connector(
        node_id=node.id, type="iqn", connector_id="iqn.2017-07.org.openstack:sdk"
    )
    assert created.node_id == node.id
    listed = list(conn.baremetal.volume_connectors(details=True, node=node.id))
    assert [(c.id, c.type, c.connector_id) for c in listed] == [
        (created.id, "iqn", "iqn.2017-07.org.openstack:sdk")
    ]
    with pytest.raises(exceptions.ConflictException):
        conn.baremetal.create_volume_connector(
            node_id=node.id, type="iqn", connector_id="iqn.2017-07.org.openstack:sdk"
        )
