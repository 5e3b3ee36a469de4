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
