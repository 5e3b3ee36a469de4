"""The three Ironic features below 1.51 served last: node console (1.1), node RAID and
RAID logical disk properties (1.12), driver vendor passthru (1.1), through the real
app and the in-process conductor."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, build, fault_of

from metalcast.drivers import noop
from metalcast.drivers.fake import FakeBmcState, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry

ROOT = {"size_gb": 100, "raid_level": "1", "is_root_volume": True}
DATA = {"size_gb": "MAX", "raid_level": "5", "volume_name": "data"}
TARGET = {"logical_disks": [ROOT, DATA]}


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


def history(api: Api, node: str) -> list[str]:
    return [e["event"] for e in api.get(f"/v1/nodes/{node}/history").json()["history"]]


# --------------------------------------------------------------------------- console


def test_console_is_enabled_and_disabled_asynchronously(api: Api) -> None:
    node = api.node(name="c")
    assert api.get("/v1/nodes/c/states/console").json() == {
        "console_enabled": False,
        "console_info": None,
    }

    response = api.put("/v1/nodes/c/states/console", {"enabled": True})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == (
        f"http://testserver/v1/nodes/{node['uuid']}/states/console"
    )
    settle(api)
    console = api.get("/v1/nodes/c/states/console").json()
    assert console == {
        "console_enabled": True,
        "console_info": {},  # as Ironic's fake console
    }
    assert api.get("/v1/nodes/c").json()["console_enabled"] is True
    assert api.get("/v1/nodes/c/states").json()["console_enabled"] is True
    # where ironic-tempest-plugin's client asks, which Ironic's router serves too
    assert api.get(f"/v1/nodes/states/console/{node['uuid']}").json() == console
    assert "console enabled by admin" in " ".join(history(api, "c"))

    # Ironic accepts the string forms of a boolean too
    assert api.put("/v1/nodes/c/states/console", {"enabled": "false"}).status_code == 202
    settle(api)
    assert api.get("/v1/nodes/c/states/console").json()["console_enabled"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "'enabled' is a required property"),
        ({"enabled": None}, "'enabled' is a required property"),
        ({"enabled": "maybe"}, "Invalid value for enabled: 'maybe'"),
        ({"enabled": 1}, "Invalid value for 'enabled': 1"),
        ({"enabled": True, "mode": "vnc"}, "Unknown field(s) for console request: mode"),
        ([True], "must be a JSON object"),
    ],
)
def test_console_request_validation(api: Api, body: Any, expected: str) -> None:
    api.node(name="c")
    response = api.put("/v1/nodes/c/states/console", body)
    assert response.status_code == 400
    assert expected in fault_of(response)


def test_a_node_without_console_says_so(api: Api) -> None:
    api.node(name="nc", console_interface="no-console")
    for enabled in (True, False):
        response = api.put("/v1/nodes/nc/states/console", {"enabled": enabled})
        assert response.status_code == 400
        message = fault_of(response)
        assert "does not support console: its console_interface is 'no-console'" in message
        assert "(fake-hardware: fake)" in message
    assert api.get("/v1/nodes/nc").json()["reservation"] is None
    # a disabled console is not checked on GET: Ironic looks at console_enabled first
    assert api.get("/v1/nodes/nc/states/console").json() == {
        "console_enabled": False,
        "console_info": None,
    }


def test_a_console_failure_is_recorded_in_last_error(api: Api) -> None:
    api.node(name="cf", driver_info={"fake_fail": "console"})
    assert api.put("/v1/nodes/cf/states/console", {"enabled": True}).status_code == 202
    settle(api)
    node = api.get("/v1/nodes/cf").json()
    assert node["console_enabled"] is False
    assert node["provision_state"] == "enroll"
    assert node["last_error"].startswith("Failed to enable the console of node")
    assert "injected failure in console" in node["last_error"]
    assert node["last_error"] in history(api, "cf")


def test_console_follows_the_nodes_owner(secured: Api) -> None:
    secured.as_("admin").node(name="mine", owner="p1", lessee="p2")
    assert secured.as_("member", "p1").get("/v1/nodes/mine/states/console").status_code == 200
    body = {"enabled": True}
    assert secured.as_("member", "p1").put("/v1/nodes/mine/states/console", body).status_code == 202
    assert secured.as_("member", "p2").put("/v1/nodes/mine/states/console", body).status_code == 403
    assert secured.as_("reader", "p1").get("/v1/nodes/mine/states/console").status_code == 403
    assert secured.as_("member", "p3").get("/v1/nodes/mine/states/console").status_code == 404
    settle(secured)


# ------------------------------------------------------------------------------ RAID


def test_target_raid_config_is_validated_stored_and_cleared(api: Api) -> None:
    api.node(name="r")
    response = api.put("/v1/nodes/r/states/raid", TARGET)
    assert response.status_code == 204, response.text
    assert api.get("/v1/nodes/r").json()["target_raid_config"] == TARGET
    states = api.get("/v1/nodes/r/states").json()
    assert (states["target_raid_config"], states["raid_config"]) == (TARGET, None)
    assert "target RAID configuration set to 2 logical disk(s)" in " ".join(history(api, "r"))

    assert api.put("/v1/nodes/r/states/raid", {}).status_code == 204
    assert api.get("/v1/nodes/r").json()["target_raid_config"] == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"logical_disks": [{"raid_level": "1"}]}, "logical_disks.0.size_gb: Field required"),
        ({"logical_disks": [{**ROOT, "raid_level": "3"}]}, "logical_disks.0.raid_level"),
        ({"logical_disks": [{**ROOT, "size_gb": -1}]}, "positive integer (GiB) or 'MAX'"),
        ({"logical_disks": [ROOT, ROOT]}, "at most one logical disk may be the root volume"),
        ({"disks": []}, "logical_disks: Field required"),
        ([ROOT], "must be a JSON object: the target RAID configuration"),
        (None, "must be a JSON object: the target RAID configuration"),
    ],
)
def test_invalid_target_raid_config_is_400(api: Api, body: Any, expected: str) -> None:
    api.node(name="r")
    response = api.put("/v1/nodes/r/states/raid", body)
    assert response.status_code == 400
    assert expected in fault_of(response)
    assert api.get("/v1/nodes/r").json()["target_raid_config"] is None


def test_raid_needs_1_12(api: Api) -> None:
    api.node(name="r")
    assert api.put("/v1/nodes/r/states/raid", TARGET, version="1.11").status_code == 406
    assert api.put("/v1/nodes/r/states/raid", TARGET, version="1.12").status_code == 204
    assert api.put("/v1/nodes/nope/states/raid", TARGET).status_code == 404


def test_a_node_without_raid_is_404_as_in_ironic(api: Api) -> None:
    api.node(name="nr", raid_interface="no-raid")
    response = api.put("/v1/nodes/nr/states/raid", TARGET)
    assert response.status_code == 404
    assert "its raid_interface is 'no-raid'" in fault_of(response)
    assert api.put("/v1/nodes/nr/states/raid", {}).status_code == 204  # clearing needs no RAID


def clean(api: Api, node: str, step: str, **args: Any) -> dict[str, Any]:
    steps = [{"interface": "raid", "step": step, "args": args}]
    body = {"target": "clean", "clean_steps": steps}
    assert api.put(f"/v1/nodes/{node}/states/provision", body).status_code == 202
    settle(api)
    result: dict[str, Any] = api.get(f"/v1/nodes/{node}").json()
    return result


def test_manual_cleaning_applies_and_deletes_the_raid_configuration(api: Api) -> None:
    api.node(name="r")
    assert api.put("/v1/nodes/r/states/provision", {"target": "manage"}).status_code == 202
    settle(api)
    assert api.put("/v1/nodes/r/states/raid", TARGET).status_code == 204

    node = clean(api, "r", "create_configuration")
    assert node["provision_state"] == "manageable", node["last_error"]
    applied = node["raid_config"]
    assert applied["logical_disks"] == TARGET["logical_disks"]
    assert applied["last_updated"].startswith(node["provision_updated_at"][:10])
    assert node["properties"]["local_gb"] == 100  # from the root volume

    node = clean(api, "r", "create_configuration", create_nonroot_volumes=False)
    assert node["raid_config"]["logical_disks"] == [ROOT]

    node = clean(api, "r", "delete_configuration")
    assert node["raid_config"] == {}
    assert node["target_raid_config"] == TARGET  # the target stays until changed


def test_creating_without_a_target_fails_the_cleaning(api: Api) -> None:
    api.node(name="r")
    assert api.put("/v1/nodes/r/states/provision", {"target": "manage"}).status_code == 202
    settle(api)
    node = clean(api, "r", "create_configuration")
    assert node["provision_state"] == "clean failed"
    assert "has no target RAID configuration" in node["last_error"]


def test_raid_follows_the_nodes_owner(secured: Api) -> None:
    secured.as_("admin").node(name="mine", owner="p1", lessee="p2")
    path = "/v1/nodes/mine/states/raid"
    assert secured.as_("member", "p1").put(path, TARGET).status_code == 204
    assert secured.as_("member", "p2").put(path, TARGET).status_code == 403
    assert secured.as_("reader", "p1").put(path, TARGET).status_code == 403


# ---------------------------------------------------------- logical disk properties

NO_RAID = dataclasses.replace(
    FAKE_HARDWARE,
    name="fake-no-raid",
    supported={**FAKE_HARDWARE.supported, "raid": (noop.NoRAID,), "vendor": (noop.NoVendor,)},
)


@pytest.fixture
def two_types(tmp_path: Path) -> Iterator[Api]:
    registry = DriverRegistry([FAKE_HARDWARE, NO_RAID], factories=fake_factories(FakeBmcState()))
    yield from build(tmp_path, "noauth", registry=registry)


def test_logical_disk_properties(two_types: Api) -> None:
    api = two_types
    path = "/v1/drivers/fake-hardware/raid/logical_disk_properties"
    properties = api.get(path).json()
    assert properties["size_gb"].startswith("Size in GiB")
    assert properties["raid_level"].endswith("Required.")
    assert "is_root_volume" in properties
    assert api.get(path, version="1.11").status_code == 406
    assert api.get("/v1/drivers/nope/raid/logical_disk_properties").status_code == 404
    response = api.get("/v1/drivers/fake-no-raid/raid/logical_disk_properties")
    assert response.status_code == 404
    assert "does not support RAID" in fault_of(response)


def test_driver_properties_and_raid_disk_properties_by_version(two_types: Api) -> None:
    # as Ironic (ironic-tempest-plugin's TestDriverMicroversions): a hardware type's
    # properties at every version, 404 for an unknown one; RAID logical disk
    # properties 406 below 1.12, before the driver is looked up
    api = two_types
    for version in ("1.1", "1.11", "1.60"):
        response = api.get("/v1/drivers/fake-hardware/properties", version=version)
        assert response.status_code == 200, version
        assert "fake_fail" in response.json()
        response = api.get("/v1/drivers/testdriver/properties", version=version)
        assert response.status_code == 404
        assert fault_of(response) == (
            "Could not find the following driver(s) or hardware type(s): testdriver."
        )
    raid = "raid/logical_disk_properties"
    for driver in ("fake-hardware", "testdriver"):
        for version in ("1.2", "1.11"):
            response = api.get(f"/v1/drivers/{driver}/{raid}", version=version)
            assert response.status_code == 406, (driver, version)
            assert "1.12" in fault_of(response)
    assert api.get(f"/v1/drivers/fake-hardware/{raid}", version="1.12").status_code == 200
    assert api.get(f"/v1/drivers/testdriver/{raid}", version="1.12").status_code == 404


# ------------------------------------------------------------ driver vendor passthru


def test_driver_vendor_passthru(api: Api) -> None:
    node = api.node(name="v")
    assert api.put("/v1/nodes/v/states/power", {"target": "power on"}).status_code == 202
    settle(api)
    methods = api.get("/v1/drivers/fake-hardware/vendor_passthru/methods").json()
    assert methods["list_bmcs"]["http_methods"] == ["GET", "POST"]
    assert methods["list_bmcs"]["async"] is False

    response = api.get("/v1/drivers/fake-hardware/vendor_passthru?method=list_bmcs")
    assert response.status_code == 200
    assert response.json()[node["uuid"]]["power_state"] == "power on"
    for method in ("GET", "POST"):
        response = api.request(method, "/v1/drivers/fake-hardware/vendor_passthru/list_bmcs")
        assert response.status_code == 200
        assert node["uuid"] in response.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("PUT", "vendor_passthru/list_bmcs", {}, 400, "does not support HTTP PUT; use GET, POST"),
        ("POST", "vendor_passthru/nope", {}, 400, "methods: list_bmcs"),
        ("POST", "vendor_passthru", {}, 400, "Method not specified"),
        ("POST", "vendor_passthru/list_bmcs", [1], 400, "must be a JSON object"),
        ("POST", "vendor_passthru/list_bmcs", {"a": 1}, 400, "takes no arguments"),
    ],
)
def test_driver_vendor_passthru_errors(
    api: Api, method: str, path: str, body: Any, status: int, expected: str
) -> None:
    response = api.request(method, f"/v1/drivers/fake-hardware/{path}", body)
    assert response.status_code == status
    assert expected in fault_of(response)


def test_driver_vendor_passthru_of_unknown_or_vendorless_drivers(two_types: Api) -> None:
    api = two_types
    assert api.get("/v1/drivers/nope/vendor_passthru/methods").status_code == 404
    assert api.post("/v1/drivers/nope/vendor_passthru/list_bmcs", {}).status_code == 404
    assert api.get("/v1/drivers/fake-no-raid/vendor_passthru/methods").json() == {}
    response = api.post("/v1/drivers/fake-no-raid/vendor_passthru/list_bmcs", {})
    assert response.status_code == 400
    assert "methods: none" in fault_of(response)


def test_driver_vendor_passthru_is_for_system_admins(secured: Api) -> None:
    path = "/v1/drivers/fake-hardware/vendor_passthru/methods"
    assert secured.as_("admin").get(path).status_code == 200
    assert secured.as_("member").get(path).status_code == 403
    assert secured.as_("admin", "p1").get(path).status_code == 403
    raid = "/v1/drivers/fake-hardware/raid/logical_disk_properties"
    assert secured.as_("reader").get(raid).status_code == 200
    # Ironic shows drivers to system readers only
    assert secured.as_("reader", "p1").get(raid).status_code == 403
