"""What API 1.53 to 1.60 added besides allocations: Smart NIC ports (1.53), external
events (1.54), deploy templates (1.55), config drives as objects (1.56) with
``vendor_data`` (1.59); each gated as Ironic gates it."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

PORT_ID = "0f5a1c0e-54c1-4a40-9f38-9ba6b1a3f1c2"
EVENT = {
    "event": "network.bind_port",
    "port_id": PORT_ID,
    "mac_address": "52:54:00:12:34:56",
    "status": "ACTIVE",
    "device_id": "9c3c86d0-9b6a-4b0c-8a08-1cf3c4a0f7a1",
    "binding:host_id": "4d1e5bc8-7d4b-4a3a-b6b0-0b0f8a8a4c0e",
    "binding:vnic_type": "baremetal",
}
STEP = {"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 150}


# ------------------------------------------------------------------- 1.53 Smart NIC


def test_is_smartnic_needs_1_53(api: Api) -> None:
    node = api.node(name="n1")
    body = {"address": "52:54:00:00:00:01", "node_uuid": node["uuid"], "is_smartnic": True}
    assert api.post("/v1/ports", body, version="1.52").status_code == 406
    made = api.post("/v1/ports", body, version="1.53")
    assert made.status_code == 201, made.text
    assert made.json()["is_smartnic"] is True
    port = made.json()["uuid"]
    assert "is_smartnic" not in api.get(f"/v1/ports/{port}", version="1.52").json()


# ---------------------------------------------------------------------- 1.54 events


def test_events_are_checked_and_accepted(api: Api) -> None:
    assert api.post("/v1/events", {"events": [EVENT]}, version="1.53").status_code == 404
    response = api.post("/v1/events", {"events": [EVENT]}, version="1.54")
    assert response.status_code == 204
    assert response.content == b""
    minimal = {k: EVENT[k] for k in ("event", "port_id", "mac_address", "status")}
    assert api.post("/v1/events", {"events": [minimal, minimal]}).status_code == 204


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "'events' must hold at least one event"),
        ([{**EVENT, "event": "network.explode"}], "Acceptable values are: network.bind_port"),
        ([{**EVENT, "port_id": "nope"}], "Expected field 'port_id' to be a UUID in canonical form"),
        ([{**EVENT, "mac_address": "nope"}], "Expected a MAC address"),
        (
            [{**EVENT, "device_id": "nope"}],
            "Expected field 'device_id' to be a UUID in canonical form",
        ),
        ([{**EVENT, "colour": "red"}], "Unknown field(s) for event (events[0]): colour"),
        ([{k: v for k, v in EVENT.items() if k != "status"}], "'status' is a required"),
        (["bind"], "Event 0 is not an object"),
    ],
)
def test_malformed_events_are_refused(api: Api, events: list[Any], message: str) -> None:
    response = api.post("/v1/events", {"events": events})
    assert response.status_code == 400
    assert message in fault_of(response)


def test_events_are_for_admins(secured: Api) -> None:
    member = secured.as_("member", "p1")
    assert member.post("/v1/events", {"events": [EVENT]}).status_code == 403
    assert secured.as_("admin").post("/v1/events", {"events": [EVENT]}).status_code == 204


# ------------------------------------------------------------ 1.55 deploy templates


def template(api: Api, **body: Any) -> dict[str, Any]:
    body = {"name": "CUSTOM_HYPERTHREADING_ON", "steps": [STEP], **body}
    response = api.post("/v1/deploy_templates", body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_deploy_templates_need_1_55(api: Api) -> None:
    assert api.get("/v1/deploy_templates", version="1.54").status_code == 404
    body = {"name": "CUSTOM_A", "steps": [STEP]}
    assert api.post("/v1/deploy_templates", body, version="1.54").status_code == 405
    assert api.post("/v1/deploy_templates", body, version="1.55").status_code == 201


def test_a_deploy_template_round_trips(api: Api) -> None:
    made = template(api, extra={"k": "v"}, steps=[{**STEP, "priority": "10"}])
    assert made["steps"] == [{**STEP, "priority": 10}]  # a digit string is an integer
    assert made["extra"] == {"k": "v"}
    shown = api.get("/v1/deploy_templates/CUSTOM_HYPERTHREADING_ON").json()
    assert shown == api.get(f"/v1/deploy_templates/{made['uuid']}").json()
    listed = api.get("/v1/deploy_templates").json()["deploy_templates"]
    assert [set(t) for t in listed] == [{"uuid", "name", "links"}]
    detailed = api.get("/v1/deploy_templates?detail=True").json()["deploy_templates"]
    assert detailed[0]["steps"] == made["steps"]
    patch = [
        {"op": "replace", "path": "/steps/0/priority", "value": 20},
        {"op": "replace", "path": "/name", "value": "CUSTOM_HT_OFF"},
    ]
    patched = api.patch(f"/v1/deploy_templates/{made['uuid']}", patch)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["steps"][0]["priority"]) == ("CUSTOM_HT_OFF", 20)
    assert api.delete("/v1/deploy_templates/CUSTOM_HT_OFF").status_code == 204
    assert api.get("/v1/deploy_templates/CUSTOM_HT_OFF").status_code == 404


def test_step_arguments_that_look_secret_are_masked(api: Api) -> None:
    step = {**STEP, "args": {"admin_password": "s3cret", "level": 3}}
    made = template(api, steps=[step])
    assert made["steps"][0]["args"] == {"admin_password": "******", "level": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "lower_case", "steps": [STEP]}, "a deploy template is named like a trait"),
        ({"name": "CUSTOM_A"}, "'steps' is a required property"),
        ({"name": "CUSTOM_A", "steps": []}, "a non-empty list is required"),
        ({"name": "CUSTOM_A", "steps": [{**STEP, "interface": "power-ish"}]}, "steps[0].interface"),
        ({"name": "CUSTOM_A", "steps": [{**STEP, "priority": -1}]}, "steps[0].priority"),
        ({"name": "CUSTOM_A", "steps": [{**STEP, "priority": 2**40}]}, "steps[0].priority"),
        ({"name": "CUSTOM_A", "steps": [{**STEP, "step": ""}]}, "steps[0].step"),
        ({"name": "CUSTOM_A", "steps": [{**STEP, "args": []}]}, "steps[0].args"),
        ({"name": "CUSTOM_A", "steps": [{"interface": "bios"}]}, "missing: args, priority, step"),
        ({"name": "CUSTOM_A", "steps": [STEP, STEP]}, "Duplicates: interface: bios, step: apply"),
        ({"name": "CUSTOM_A", "steps": [STEP], "descr": "x"}, "Unknown field(s)"),
        ({"name": "CUSTOM_A", "steps": [STEP], "description": "x" * 256}, "longer than 255"),
    ],
)
def test_invalid_deploy_templates_are_refused(api: Api, body: dict[str, Any], message: str) -> None:
    response = api.post("/v1/deploy_templates", body)
    assert response.status_code == 400
    assert message in fault_of(response)
    assert api.get("/v1/deploy_templates").json() == {"deploy_templates": []}


def test_deploy_template_names_are_unique(api: Api) -> None:
    template(api)
    again = api.post("/v1/deploy_templates", {"name": "CUSTOM_HYPERTHREADING_ON", "steps": [STEP]})
    assert again.status_code == 409
    assert fault_of(again) == "A deploy template with name CUSTOM_HYPERTHREADING_ON already exists."


def test_deploy_templates_are_for_admins(secured: Api) -> None:
    template(secured.as_("admin"))
    member = secured.as_("member", "p1")
    assert member.get("/v1/deploy_templates").status_code == 403
    assert (
        member.post("/v1/deploy_templates", {"name": "CUSTOM_B", "steps": [STEP]}).status_code
        == 403
    )


# ---------------------------------------------------- 1.56 / 1.59 config drive forms


def _deploy(api: Api, configdrive: object, version: str) -> Any:
    return api.put(
        "/v1/nodes/n1/states/provision",
        {"target": "active", "configdrive": configdrive},
        version=version,
    )


def _available(api: Api) -> None:
    created = api.post("/v1/nodes", {"driver": "fake-hardware", "name": "n1"}, version="1.10")
    assert created.status_code == 201, created.text


def test_a_config_drive_object_needs_1_56_and_vendor_data_1_59(api: Api) -> None:
    _available(api)
    early = _deploy(api, {"meta_data": {"hostname": "h"}}, "1.55")
    assert early.status_code == 400
    assert "only supported starting with API version 1.56" in fault_of(early)
    vendor = _deploy(api, {"vendor_data": {"a": 1}}, "1.58")
    assert vendor.status_code == 400
    assert "vendor_data in configdrive is only supported starting with API version 1.59" in (
        fault_of(vendor)
    )
    assert _deploy(api, {"vendor_data": {"a": 1}}, "1.59").status_code == 202


@pytest.mark.parametrize(
    "configdrive",
    [
        {"meta_data": "not an object"},
        {"user_data": 5},
        {"colour": {}},
        "not base64 and not a URL!",
    ],
)
def test_malformed_config_drives_are_refused_before_anything_happens(
    api: Api, configdrive: object
) -> None:
    _available(api)
    response = _deploy(api, configdrive, "1.60")
    assert response.status_code == 400
    assert "Invalid configdrive format" in fault_of(response)
    assert api.get("/v1/nodes/n1").json()["provision_state"] == "available"
