"""What API 1.33 to 1.51 added besides volume resources: node BIOS settings (1.40),
reset_interfaces (1.45) and the version gates of the features between 1.32 and 1.51,
through the real app and conductor."""

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


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


def provision(api: Api, node: str, target: str, **body: Any) -> None:
    response = api.put(f"/v1/nodes/{node}/states/provision", {"target": target, **body})
    assert response.status_code == 202, response.text
    settle(api)


def deployed(api: Api, name: str) -> None:
    """An active node (created before 1.11, so it starts available)."""
    body = {"driver": "fake-hardware", "name": name}
    assert api.post("/v1/nodes", body, version="1.10").status_code == 201
    provision(api, name, "active")
    assert api.get(f"/v1/nodes/{name}").json()["provision_state"] == "active"


# ------------------------------------------------------------------------------ BIOS


def test_bios_settings_are_served_from_the_cache_filled_at_manage(api: Api) -> None:
    node = api.node(name="b")
    assert api.get("/v1/nodes/b/bios").json() == {"bios": []}  # not read yet
    provision(api, "b", "manage")
    settings = api.get("/v1/nodes/b/bios").json()["bios"]
    assert [(s["name"], s["value"]) for s in settings] == [
        ("boot_mode", "uefi"),
        ("hyperthreading", "enabled"),
        ("secure_boot", "disabled"),
    ]
    first = settings[0]
    assert set(first) == {"name", "value", "created_at", "updated_at", "links"}
    assert first["links"][0]["href"] == (
        f"http://testserver/v1/nodes/{node['uuid']}/bios/boot_mode"
    )
    one = api.get("/v1/nodes/b/bios/hyperthreading").json()
    assert one["hyperthreading"]["value"] == "enabled"
    missing = api.get("/v1/nodes/b/bios/nope")
    assert missing.status_code == 404
    assert "nope" in fault_of(missing)


def test_bios_settings_follow_cleaning(api: Api) -> None:
    api.node(name="b")
    provision(api, "b", "manage")
    step = {
        "interface": "bios",
        "step": "apply_configuration",
        "args": {"settings": [{"name": "secure_boot", "value": "enabled"}]},
    }
    provision(api, "b", "clean", clean_steps=[step])
    setting = api.get("/v1/nodes/b/bios/secure_boot").json()["secure_boot"]
    assert setting["value"] == "enabled"
    assert setting["updated_at"] is not None


def test_bios_needs_1_40(api: Api) -> None:
    api.node(name="b")
    assert api.get("/v1/nodes/b/bios", version="1.39").status_code == 404
    assert api.get("/v1/nodes/b/bios", version="1.40").status_code == 200
    assert api.get("/v1/nodes/nope/bios").status_code == 404


def test_bios_follows_the_nodes_visibility(secured: Api) -> None:
    secured.as_("admin").node(name="foreign", owner="p2")
    secured.as_("admin").node(name="mine", owner="p1")
    reader = secured.as_("reader", "p1")
    assert reader.get("/v1/nodes/foreign/bios").status_code == 404
    assert reader.get("/v1/nodes/mine/bios").status_code == 200


# ------------------------------------------------------------------ reset_interfaces

MINIMAL = dataclasses.replace(
    FAKE_HARDWARE,
    name="fake-minimal",
    supported={**FAKE_HARDWARE.supported, "bios": (noop.NoBIOS,), "rescue": (noop.NoRescue,)},
)


@pytest.fixture
def two_types(tmp_path: Path) -> Iterator[Api]:
    registry = DriverRegistry([FAKE_HARDWARE, MINIMAL], factories=fake_factories(FakeBmcState()))
    yield from build(tmp_path, "noauth", registry=registry)


CHANGE_DRIVER = [{"op": "replace", "path": "/driver", "value": "fake-minimal"}]


def test_driver_change_naming_an_unsupported_interface_is_400(two_types: Api) -> None:
    api = two_types
    api.node(name="n")
    response = api.patch("/v1/nodes/n", CHANGE_DRIVER)
    assert response.status_code == 400
    assert "bios_interface 'fake'" in fault_of(response)
    assert "reset_interfaces" in fault_of(response)
    assert api.get("/v1/nodes/n").json()["driver"] == "fake-hardware"


def test_reset_interfaces_resets_those_not_given(two_types: Api) -> None:
    api = two_types
    api.node(name="n", console_interface="no-console", raid_interface="no-raid")
    patch = [*CHANGE_DRIVER, {"op": "replace", "path": "/raid_interface", "value": "no-raid"}]
    response = api.patch("/v1/nodes/n?reset_interfaces=True", patch)
    assert response.status_code == 200, response.text
    node = response.json()
    assert node["driver"] == "fake-minimal"
    assert node["bios_interface"] == "no-bios"
    assert node["rescue_interface"] == "no-rescue"
    assert node["console_interface"] == "fake"  # reset to the new default
    assert node["raid_interface"] == "no-raid"  # named in the patch: kept


def test_reset_interfaces_rules(two_types: Api) -> None:
    api = two_types
    api.node(name="n")
    extra = [{"op": "add", "path": "/extra/a", "value": 1}]
    response = api.patch("/v1/nodes/n?reset_interfaces=True", extra)
    assert response.status_code == 400
    assert "only be used when changing the node's driver" in fault_of(response)
    response = api.patch("/v1/nodes/n?reset_interfaces=True", CHANGE_DRIVER, version="1.44")
    assert response.status_code == 406
    assert api.patch("/v1/nodes/n?reset_interfaces=maybe", CHANGE_DRIVER).status_code == 400


# -------------------------------------------------------------- gates from 1.32 to 1.51


def test_inspect_wait_is_inspecting_before_1_39_and_abortable_from_1_41(api: Api) -> None:
    api.node(name="i", driver_info={"fake_wait": "inspect"})
    provision(api, "i", "manage")
    provision(api, "i", "inspect")
    assert api.get("/v1/nodes/i").json()["provision_state"] == "inspect wait"
    assert api.get("/v1/nodes/i", version="1.38").json()["provision_state"] == "inspecting"
    states = api.get("/v1/nodes/i/states", version="1.38").json()
    assert states["provision_state"] == "inspecting"
    abort = {"target": "abort"}
    assert api.put("/v1/nodes/i/states/provision", abort, version="1.40").status_code == 406
    assert api.put("/v1/nodes/i/states/provision", abort, version="1.41").status_code == 202
    settle(api)
    assert api.get("/v1/nodes/i").json()["provision_state"] == "inspect failed"


def test_configdrive_on_rebuild_needs_1_35(api: Api) -> None:
    deployed(api, "r")
    body = {"target": "rebuild", "configdrive": "http://example.com/cd.iso"}
    response = api.put("/v1/nodes/r/states/provision", body, version="1.34")
    assert response.status_code == 400
    assert "1.35" in fault_of(response)
    assert api.put("/v1/nodes/r/states/provision", body, version="1.35").status_code == 202
    settle(api)
    node = api.get("/v1/nodes/r").json()
    assert node["provision_state"] == "active"
    assert node["instance_info"]["configdrive"] == "******"


def test_protected_nodes_cannot_be_undeployed_rebuilt_or_deleted(api: Api) -> None:
    deployed(api, "p")
    assert api.patch("/v1/nodes/p", [{"op": "replace", "path": "/protected", "value": True}])
    for verb in ("deleted", "rebuild"):
        response = api.put("/v1/nodes/p/states/provision", {"target": verb})
        assert response.status_code == 403, verb
        assert "protected" in fault_of(response)
    api.put("/v1/nodes/p/maintenance", {"reason": "x"})
    assert api.delete("/v1/nodes/p").status_code == 403


def test_conductors_need_1_49(api: Api) -> None:
    assert api.get("/v1/conductors", version="1.48").status_code == 404
    assert api.get("/v1/conductors/cond-1", version="1.48").status_code == 404
    assert api.get("/v1/conductors", version="1.49").status_code == 200
    assert "conductors" not in api.get("/v1", version="1.48").json()


@pytest.mark.parametrize(
    ("field", "version"),
    [
        ("storage_interface", "1.33"),
        ("traits", "1.37"),
        ("rescue_interface", "1.38"),
        ("bios_interface", "1.40"),
        ("fault", "1.42"),
        ("deploy_step", "1.44"),
        ("conductor_group", "1.46"),
        ("automated_clean", "1.47"),
        ("protected", "1.48"),
        ("conductor", "1.49"),
        ("owner", "1.50"),
        ("description", "1.51"),
    ],
)
def test_node_fields_show_from_their_version(api: Api, field: str, version: str) -> None:
    api.node(name="f")
    minor = int(version.split(".")[1])
    assert field not in api.get("/v1/nodes/f", version=f"1.{minor - 1}").json()
    assert field in api.get("/v1/nodes/f", version=version).json()


def test_physical_network_shows_from_1_34(api: Api) -> None:
    api.node(name="n")
    port = api.post(
        "/v1/ports", {"node_uuid": "n", "address": "52:54:00:00:00:01"}, version="1.34"
    ).json()
    assert "physical_network" in port
    assert "physical_network" not in api.get(f"/v1/ports/{port['uuid']}", version="1.33").json()


# ------------------------------------------------------------------- fixed behaviour


def test_portgroup_pages_are_full_for_non_admins(secured: Api) -> None:
    admin = secured.as_("admin")
    admin.node(name="foreign", owner="p2")
    admin.node(name="mine", owner="p1")
    for i in range(3):
        admin.post("/v1/portgroups", {"node_uuid": "foreign", "name": f"theirs{i}"})
    mine = [
        admin.post("/v1/portgroups", {"node_uuid": "mine", "name": f"mine{i}"}).json()
        for i in range(3)
    ]
    member = secured.as_("member", "p1")
    page = member.get("/v1/portgroups?limit=2").json()
    assert [g["uuid"] for g in page["portgroups"]] == [g["uuid"] for g in mine[:2]]
    assert "next" in page
    rest = member.get(f"/v1/portgroups?limit=2&marker={mine[1]['uuid']}").json()
    assert [g["uuid"] for g in rest["portgroups"]] == [mine[2]["uuid"]]


def test_duplicate_name_is_409_from_the_conductor(api: Api) -> None:
    api.node(name="taken")
    api.node(name="free")
    response = api.patch("/v1/nodes/free", [{"op": "replace", "path": "/name", "value": "taken"}])
    assert response.status_code == 409
    assert fault_of(response) == "A node with name taken already exists."
