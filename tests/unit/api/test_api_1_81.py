"""What API 1.61 to 1.81 added, each gated as Ironic gates it, through the real app
and conductor: retired nodes (1.61), indicators (1.63), network_type (1.64), lessee
(1.65), network_data (1.66), VIFs on portgroups (1.67), agent_verify_ca (1.68),
deploy_steps (1.69), disable_ramdisk (1.70), agent_status (1.72), the deploy verb
(1.73), BIOS registry fields (1.74), boot mode (1.75, 1.76), driver fields (1.77),
history (1.78), inventory (1.81)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from api_harness import Api, build, fault_of

from metalcast.db import repository as repo
from metalcast.drivers.base import DriverContext, StepResult, step
from metalcast.drivers.fake import FakeBmcState, fake_factories
from metalcast.drivers.fake.provisioning import FakeDeploy
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry

URL = "http://10.0.0.5:9999"


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


def provision(api: Api, node: str, target: str, **body: Any) -> None:
    response = api.put(f"/v1/nodes/{node}/states/provision", {"target": target, **body})
    assert response.status_code == 202, response.text
    settle(api)


def state_of(api: Api, node: str) -> str:
    state: str = api.get(f"/v1/nodes/{node}").json()["provision_state"]
    return state


def manageable(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    node = api.node(name=name, **fields)
    provision(api, name, "manage")
    assert state_of(api, name) == "manageable"
    return node


def set_state(api: Api, uuid: str, state: str) -> None:
    with api.db.begin() as conn:
        repo.update_node(conn, repo.get_node(conn, uuid).id, {"provision_state": state})


def patch(api: Api, node: str, path: str, value: Any, **kw: Any) -> Any:
    return api.patch(f"/v1/nodes/{node}", [{"op": "add", "path": path, "value": value}], **kw)


# -------------------------------------------------------------------- 1.61 retired


def test_retired_is_hidden_below_1_61_and_set_from_it(api: Api) -> None:
    manageable(api, "r")
    assert "retired" not in api.get("/v1/nodes/r", version="1.60").json()
    assert patch(api, "r", "/retired", True, version="1.60").status_code == 406
    response = patch(api, "r", "/retired", True, version="1.61")
    assert response.status_code == 200, response.text
    assert response.json()["retired"] is True
    assert patch(api, "r", "/retired_reason", "old", version="1.61").status_code == 200
    shown = api.get("/v1/nodes/r", version="1.61").json()
    assert (shown["retired"], shown["retired_reason"]) == (True, "old")
    assert patch(api, "r", "/retired", "maybe").status_code == 400
    listed = api.get("/v1/nodes?retired=true&fields=name").json()["nodes"]
    assert [n["name"] for n in listed] == ["r"]
    # clearing the flag clears the reason, as in Ironic
    cleared = patch(api, "r", "/retired", False).json()
    assert (cleared["retired"], cleared["retired_reason"]) == (False, None)


def test_a_reason_needs_the_flag_and_available_nodes_cannot_retire(api: Api) -> None:
    manageable(api, "r")
    response = patch(api, "r", "/retired_reason", "why")
    assert response.status_code == 400
    assert "retired_reason field can only be set when retired is True" in fault_of(response)
    provision(api, "r", "provide")
    assert state_of(api, "r") == "available"
    response = patch(api, "r", "/retired", True)
    assert response.status_code == 409
    assert "provision state 'available'" in fault_of(response)
    assert api.get("/v1/nodes/r").json()["retired"] is False


def test_a_retired_node_is_not_provided_and_cleaning_ends_manageable(api: Api) -> None:
    manageable(api, "r")
    both = [
        {"op": "add", "path": "/retired", "value": True},
        {"op": "add", "path": "/retired_reason", "value": "end of life"},
    ]
    assert api.patch("/v1/nodes/r", both).status_code == 200
    response = api.put("/v1/nodes/r/states/provision", {"target": "provide"})
    assert response.status_code == 400
    assert "can't be performed on node" in fault_of(response)
    assert "because it is retired" in fault_of(response)
    assert state_of(api, "r") == "manageable"
    # an active node retired: undeploying cleans it into manageable, not available
    assert patch(api, "r", "/retired", False).status_code == 200
    provision(api, "r", "provide")
    provision(api, "r", "active")
    assert state_of(api, "r") == "active"
    assert patch(api, "r", "/retired", True).status_code == 200
    provision(api, "r", "deleted")
    node = api.get("/v1/nodes/r").json()
    assert (node["provision_state"], node["target_provision_state"]) == ("manageable", None)
    assert node["last_error"] is None


# -------------------------------------------------------------- 1.63 indicators


def test_indicators_of_fake_management(api: Api) -> None:
    node = api.node(name="i")
    listed = api.get("/v1/nodes/i/management/indicators").json()["indicators"]
    assert [(i["name"], i["component"], i["readonly"]) for i in listed] == [
        ("led-0@chassis", "chassis", True),
        ("led@system", "system", False),
    ]
    assert listed[1]["states"] == ["blinking", "off", "on"]
    assert listed[1]["links"][0]["href"].endswith(
        f"/v1/nodes/{node['uuid']}/management/indicators/led@system"
    )
    path = "/v1/nodes/i/management/indicators/led@system"
    assert api.get(path).json() == {"state": "on"}
    assert api.put(path, {"state": "blinking"}).status_code == 204
    assert api.get(path).json() == {"state": "blinking"}
    # served at every version, as Ironic (which checks none for them)
    assert api.get(path, version="1.1").json() == {"state": "blinking"}


@pytest.mark.parametrize(
    ("indicator", "body", "message"),
    [
        ("led-0@chassis", {"state": "off"}, "is read-only"),
        ("led@system", {"state": "unknown"}, "cannot be 'unknown'"),
        ("led@system", {"state": "purple"}, "Acceptable values are"),
        ("led@system", {}, "'state' is a required property"),
        ("led@disk", {"state": "on"}, "has no indicator led@disk"),
        ("led", {"state": "on"}, 'Malformed indicator name "led"'),
    ],
)
def test_bad_indicator_requests_are_400(
    api: Api, indicator: str, body: dict[str, Any], message: str
) -> None:
    api.node(name="i")
    response = api.put(f"/v1/nodes/i/management/indicators/{indicator}", body)
    assert response.status_code == 400
    assert message in fault_of(response)
    assert api.get("/v1/nodes/i/management/indicators/led@system").json() == {"state": "on"}


def test_ipmi_has_no_indicators_as_in_ironic(api: Api) -> None:
    info = {"ipmi_address": "192.0.2.1", "ipmi_username": "u", "ipmi_password": "p"}
    api.node(name="bmc", driver="ipmi", driver_info=info)
    response = api.get("/v1/nodes/bmc/management/indicators")
    assert response.status_code == 400
    assert "has no indicators" in fault_of(response)
    response = api.put("/v1/nodes/bmc/management/indicators/led@system", {"state": "on"})
    assert response.status_code == 400


def test_unknown_indicator_reads_are_400(api: Api) -> None:
    api.node(name="i")
    for name in ("led@disk", "nope@system", "noat"):
        response = api.get(f"/v1/nodes/i/management/indicators/{name}")
        assert response.status_code == 400, name


# ---------------------------------------------------------- 1.64 network_type


def test_network_type_needs_1_64(api: Api) -> None:
    node = api.node(name="p")
    llc = {"network_type": "unmanaged"}
    body = {"address": "52:54:00:00:00:01", "node_uuid": node["uuid"]}
    made = api.post("/v1/ports", {**body, "local_link_connection": llc}, version="1.63")
    assert made.status_code == 406
    made = api.post("/v1/ports", {**body, "local_link_connection": llc}, version="1.64")
    assert made.status_code == 201, made.text
    uuid = made.json()["uuid"]
    assert made.json()["local_link_connection"] == llc
    bad = {**body, "address": "52:54:00:00:00:02", "local_link_connection": {"network_type": "x"}}
    response = api.post("/v1/ports", bad)
    assert response.status_code == 400
    assert "network_type must be one of managed, unmanaged" in fault_of(response)
    change = [{"op": "add", "path": "/local_link_connection/network_type", "value": "managed"}]
    assert api.patch(f"/v1/ports/{uuid}", change, version="1.63").status_code == 406
    # a patch of another key keeps the port's network_type at an older version
    other = [{"op": "add", "path": "/extra/a", "value": "b"}]
    assert api.patch(f"/v1/ports/{uuid}", other, version="1.63").status_code == 200
    response = api.patch(f"/v1/ports/{uuid}", change, version="1.64")
    assert response.status_code == 200
    assert response.json()["local_link_connection"] == {"network_type": "managed"}


# --------------------------------------------------- 1.65 lessee, 1.66 network_data


@pytest.mark.parametrize(
    ("field", "value", "version"),
    [("lessee", "p2", "1.65"), ("network_data", {"links": []}, "1.66")],
)
def test_node_fields_of_1_65_and_1_66(api: Api, field: str, value: Any, version: str) -> None:
    api.node(name="n")
    before = f"1.{int(version.split('.')[1]) - 1}"
    assert field not in api.get("/v1/nodes/n", version=before).json()
    assert patch(api, "n", f"/{field}", value, version=before).status_code == 406
    response = patch(api, "n", f"/{field}", value, version=version)
    assert response.status_code == 200, response.text
    assert response.json()[field] == value


# ------------------------------------------------------ 1.67 VIFs on portgroups


def test_vifs_attach_to_a_named_portgroup_from_1_67(api: Api) -> None:
    node = api.node(name="v", network_interface="fake")
    group = api.post("/v1/portgroups", {"node_uuid": node["uuid"], "name": "pg"}).json()
    port = api.post("/v1/ports", {"address": "52:54:00:00:00:01", "node_uuid": node["uuid"]}).json()
    both = {"id": "vif-1", "port_uuid": port["uuid"], "portgroup_uuid": group["uuid"]}
    response = api.post("/v1/nodes/v/vifs", both, version="1.67")
    assert response.status_code == 400
    assert "Cannot specify both port_uuid and portgroup_uuid" in fault_of(response)
    # before 1.67 the port wins, as in Ironic
    assert api.post("/v1/nodes/v/vifs", both, version="1.66").status_code == 204
    to_group = {"id": "vif-2", "portgroup_uuid": group["uuid"]}
    assert api.post("/v1/nodes/v/vifs", to_group).status_code == 204
    shown = api.get(f"/v1/portgroups/{group['uuid']}?fields=internal_info").json()
    assert shown["internal_info"]["tenant_vif_port_id"] == "vif-2"
    vifs = api.get("/v1/nodes/v/vifs").json()["vifs"]
    assert sorted(v["id"] for v in vifs) == ["vif-1", "vif-2"]
    again = api.post("/v1/nodes/v/vifs", {"id": "vif-3", "portgroup_uuid": group["uuid"]})
    assert again.status_code == 409
    other = api.post("/v1/nodes/v/vifs", {"id": "vif-3", "portgroup_uuid": "pg-x"})
    assert other.status_code == 400
    assert api.delete("/v1/nodes/v/vifs/vif-2").status_code == 204
    assert [v["id"] for v in api.get("/v1/nodes/v/vifs").json()["vifs"]] == ["vif-1"]


# ---------------------------------------------- 1.68, 1.72 heartbeat fields


@pytest.mark.parametrize(
    ("fields", "version", "message"),
    [
        ({"agent_verify_ca": "PEM"}, "1.67", 'Field "agent_verify_ca" not recognised'),
        ({"agent_status": "start"}, "1.71", 'Fields "agent_status" and "agent_status_message"'),
        ({"agent_status_message": "hi"}, "1.71", 'Fields "agent_status" and'),
        ({"agent_status": "done"}, "1.72", "Acceptable values are"),
    ],
)
def test_newer_heartbeat_fields_are_400_before_their_version(
    api: Api, fields: dict[str, str], version: str, message: str
) -> None:
    node = api.node(name="h")
    set_state(api, node["uuid"], "wait call-back")
    body = {"callback_url": URL, **fields}
    response = api.post("/v1/heartbeat/h", body, version=version)
    assert response.status_code == 400
    assert message in fault_of(response)


def test_newer_heartbeat_fields_are_taken_from_their_version(api: Api) -> None:
    node = api.node(name="h")
    set_state(api, node["uuid"], "wait call-back")
    body = {
        "callback_url": URL,
        "agent_verify_ca": "-----BEGIN CERTIFICATE-----",
        "agent_status": "end",
        "agent_status_message": "installed",
    }
    assert api.post("/v1/heartbeat/h", body, version="1.72").status_code == 202


# ------------------------------------------- 1.69 deploy_steps, 1.73 deploy verb


def test_deploy_steps_need_1_69_and_run_in_the_deploy(api: Api) -> None:
    manageable(api, "m")
    provision(api, "m", "provide")
    settings = [{"name": "hyperthreading", "value": "disabled"}]
    steps = [
        {
            "interface": "bios",
            "step": "apply_configuration",
            "args": {"settings": settings},
            "priority": 90,
        }
    ]
    body = {"target": "active", "deploy_steps": steps}
    assert api.put("/v1/nodes/m/states/provision", body, version="1.68").status_code == 406
    unknown = {**body, "deploy_steps": [{**steps[0], "step": "flash"}]}
    response = api.put("/v1/nodes/m/states/provision", unknown, version="1.69")
    assert response.status_code == 400
    assert "has no deploy step 'bios.flash'" in fault_of(response)
    assert state_of(api, "m") == "available"
    response = api.put("/v1/nodes/m/states/provision", body, version="1.69")
    assert response.status_code == 202, response.text
    settle(api)
    assert state_of(api, "m") == "active"
    bios = api.get("/v1/nodes/m/bios/hyperthreading", version="1.69").json()
    assert bios["hyperthreading"]["value"] == "disabled"
    provision(api, "m", "undeploy")
    assert state_of(api, "m") == "available"
    # the 1.73 verb deploys, with an empty list of steps
    provision(api, "m", "deploy", deploy_steps=[])
    assert state_of(api, "m") == "active"
    provision(api, "m", "undeploy")
    assert state_of(api, "m") == "available"


# -------------------------------------------------------- 1.70 disable_ramdisk


class InBandDeploy(FakeDeploy):
    """The fake deploy with a clean step that runs in the ramdisk."""

    @step(priority=0, requires_ramdisk=True)
    def inband_wipe(self, ctx: DriverContext) -> StepResult:
        return StepResult.DONE


@pytest.fixture
def inband(tmp_path: Path) -> Iterator[Api]:
    hardware = dataclasses.replace(
        FAKE_HARDWARE,
        supported=MappingProxyType({**FAKE_HARDWARE.supported, "deploy": (InBandDeploy,)}),
    )
    registry = DriverRegistry([hardware], factories=fake_factories(FakeBmcState()))
    yield from build(tmp_path, "noauth", registry=registry)


def test_disable_ramdisk_needs_1_70_and_steps_that_run_without_it(inband: Api) -> None:
    api = inband
    manageable(api, "c")
    oob = [{"interface": "management", "step": "reset_bmc", "args": {}}]
    body = {"target": "clean", "clean_steps": oob, "disable_ramdisk": True}
    assert api.put("/v1/nodes/c/states/provision", body, version="1.69").status_code == 406
    inband_step = [{"interface": "deploy", "step": "inband_wipe", "args": {}}]
    response = api.put(
        "/v1/nodes/c/states/provision", {**body, "clean_steps": [*oob, *inband_step]}
    )
    assert response.status_code == 400
    assert "deploy.inband_wipe" in fault_of(response)
    assert "disable_ramdisk" in fault_of(response)
    assert state_of(api, "c") == "manageable"
    provision(api, "c", "clean", clean_steps=oob, disable_ramdisk=True)
    node = api.get("/v1/nodes/c").json()
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)
    assert "cleaning_disable_ramdisk" not in node["driver_internal_info"]
    # without the flag, the same in-band step runs
    provision(api, "c", "clean", clean_steps=inband_step)
    assert state_of(api, "c") == "manageable"
    # servicing without the ramdisk is Ironic's 1.108 (test_api_1_115)
    service = {"target": "service", "service_steps": oob, "disable_ramdisk": True}
    assert api.put("/v1/nodes/c/states/provision", service, version="1.107").status_code == 406


# ----------------------------------------------------------- 1.74 BIOS registry

REGISTRY = {
    "attribute_type",
    "allowable_values",
    "lower_bound",
    "max_length",
    "min_length",
    "read_only",
    "reset_required",
    "unique",
    "upper_bound",
}


def test_bios_registry_fields_from_1_74(api: Api) -> None:
    manageable(api, "b")
    one = api.get("/v1/nodes/b/bios/hyperthreading", version="1.73").json()["hyperthreading"]
    assert not REGISTRY & set(one)
    one = api.get("/v1/nodes/b/bios/hyperthreading", version="1.74").json()["hyperthreading"]
    assert set(one) >= REGISTRY
    assert {one[name] for name in REGISTRY} == {None}  # no registry is read
    assert api.get("/v1/nodes/b/bios?detail=true", version="1.73").status_code == 406
    assert api.get("/v1/nodes/b/bios?fields=name", version="1.73").status_code == 406
    listed = api.get("/v1/nodes/b/bios").json()["bios"]
    assert not REGISTRY & set(listed[0])
    detailed = api.get("/v1/nodes/b/bios?detail=true").json()["bios"]
    assert set(detailed[0]) >= REGISTRY
    chosen = api.get("/v1/nodes/b/bios?fields=name,read_only").json()["bios"]
    assert set(chosen[0]) == {"name", "read_only", "links"}
    assert api.get("/v1/nodes/b/bios?fields=nope").status_code == 400
    assert api.get("/v1/nodes/b/bios?fields=name&detail=true").status_code == 400
    assert api.get("/v1/nodes/b/bios?colour=red").status_code == 400


# ---------------------------------------------------- 1.75, 1.76 boot mode


def test_boot_mode_fields_from_1_75_and_endpoints_from_1_76(api: Api) -> None:
    api.node(name="m")
    assert "boot_mode" not in api.get("/v1/nodes/m", version="1.74").json()
    assert "boot_mode" in api.get("/v1/nodes/m", version="1.75").json()
    assert "secure_boot" not in api.get("/v1/nodes/m/states", version="1.74").json()
    for path, body in (("boot_mode", {"target": "bios"}), ("secure_boot", {"target": False})):
        response = api.put(f"/v1/nodes/m/states/{path}", body, version="1.75")
        assert response.status_code == 404
        assert "starting with the API version 1.76" in fault_of(response)
        assert api.put(f"/v1/nodes/m/states/{path}", body, version="1.76").status_code == 202
        settle(api)
    assert api.get("/v1/nodes/m").json()["boot_mode"] == "bios"


# ------------------------------------------------------------ 1.77 driver fields


def test_driver_fields_from_1_77(api: Api) -> None:
    assert api.get("/v1/drivers?fields=name", version="1.76").status_code == 406
    assert api.get("/v1/drivers/fake-hardware?fields=name", version="1.76").status_code == 406
    listed = api.get("/v1/drivers?fields=name,default_deploy_interface").json()["drivers"]
    fake = next(d for d in listed if d["name"] == "fake-hardware")
    assert fake == {
        "name": "fake-hardware",
        "default_deploy_interface": "fake",
        "links": fake["links"],
    }
    one = api.get("/v1/drivers/fake-hardware?fields=hosts").json()
    assert set(one) == {"hosts", "links"}
    response = api.get("/v1/drivers/fake-hardware?fields=colour")
    assert response.status_code == 400
    assert 'Field(s) "colour" are not valid' in fault_of(response)
    assert api.get("/v1/drivers?fields=name&detail=true").status_code == 400


# ------------------------------------------------- 1.78 history, 1.81 inventory


def test_history_and_inventory_are_not_found_before_their_version(api: Api) -> None:
    api.node(name="h")
    assert api.get("/v1/nodes/h/history", version="1.77").status_code == 404
    assert api.get("/v1/nodes/h/history", version="1.78").status_code == 200
    event = "/v1/nodes/h/history/0f5a1c0e-54c1-4a40-9f38-9ba6b1a3f1c2"
    assert api.get(event, version="1.77").status_code == 404
    assert api.get("/v1/nodes/h/inventory", version="1.80").status_code == 404
    response = api.get("/v1/nodes/h/inventory", version="1.81")
    assert response.status_code == 404  # no inspection yet, but the endpoint exists
    assert "inventory" in fault_of(response).lower()


def test_the_maximum_is_ironic_39s_1_115(api: Api) -> None:
    response = api.get("/v1/nodes", version="1.116")
    assert response.status_code == 406
    assert response.headers["X-OpenStack-Ironic-API-Maximum-Version"] == "1.115"
    assert (
        api.get("/v1/nodes", version="latest").headers["X-OpenStack-Ironic-API-Version"] == "1.115"
    )


@pytest.mark.parametrize("field", ["retired", "protected", "maintenance", "automated_clean"])
def test_node_flags_take_ironics_string_spellings(api: Api, field: str) -> None:
    # python-ironicclient's `node set --retired` sends "True", which Ironic takes
    node = api.node(name="f")
    set_state(api, node["uuid"], "active" if field == "protected" else "manageable")
    response = patch(api, "f", f"/{field}", "True")
    assert response.status_code == 200, response.text
    assert response.json()[field] is True
    assert patch(api, "f", f"/{field}", "off").json()[field] is False
    response = patch(api, "f", f"/{field}", "maybe")
    assert response.status_code == 400
    assert "is not a boolean" in fault_of(response)
