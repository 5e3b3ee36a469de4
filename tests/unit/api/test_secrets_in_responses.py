"""No response shows a secret: nodes in every view and microversion, PATCH,
ports, portgroups, chassis, volume targets, validate, history and error bodies."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

from metalcast.db import repository as repo
from metalcast.secrecy import MASK

BMC_PASSWORD = "Bmc-Pass-0a1b2c"
NUMERIC = 987654321012
URL_PASSWORD = "Url-Pass-3d4e5f"
TOKEN = "Extra-Token-6a7b8c"
SECRETS = (BMC_PASSWORD, str(NUMERIC), URL_PASSWORD, TOKEN)
IMAGE = f"http://mirror:{URL_PASSWORD}@images.example/os.raw"


def _node(api: Api) -> dict[str, Any]:
    return api.node(
        name="secretive",
        driver_info={
            "ipmi_username": "admin",
            "bmc": {"auth": {"ipmi_password": BMC_PASSWORD}},
            "redfish_password": NUMERIC,
        },
        instance_info={"image_source": IMAGE, "image_checksum": "a" * 64},
        extra={"vault": [{"auth_token": TOKEN}]},
        properties={"cpus": 2},
    )


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("version", ["1.1", "1.8", "1.37", "1.51"])
def test_node_views_mask_secrets_at_every_version(api: Api, version: str) -> None:
    created = _node(api)
    _clean(str(created))
    paths = ["/v1/nodes/secretive", "/v1/nodes/detail", f"/v1/nodes/{created['uuid']}"]
    if version >= "1.8":
        paths.append("/v1/nodes?fields=uuid,driver_info,instance_info,extra")
    for path in paths:
        response = api.get(path, version=version)
        assert response.status_code == 200, (path, response.text)
        _clean(response.text)
    shown = api.get("/v1/nodes/secretive").json()
    assert shown["driver_info"] == {
        "ipmi_username": "admin",
        "bmc": {"auth": {"ipmi_password": MASK}},
        "redfish_password": MASK,
    }
    assert shown["instance_info"]["image_source"] == "http://mirror:******@images.example/os.raw"
    assert shown["extra"] == {"vault": [{"auth_token": MASK}]}


def _stored(api: Api, field: str) -> Any:
    with api.db.read() as conn:
        value = getattr(repo.get_node(conn, "secretive"), field)
    return api.service.rt.secret_box.reveal(value)


def test_patch_keeps_what_stays_masked(api: Api) -> None:
    _node(api)
    shown = api.get("/v1/nodes/secretive").json()
    ops = [
        {"op": "replace", "path": "/driver_info/ipmi_username", "value": "root"},
        # the whole object as the client read it, one value changed
        {"op": "replace", "path": "/instance_info", "value": {**shown["instance_info"], "x": 1}},
        # a masked value put elsewhere is what the client saw, not the secret
        {"op": "add", "path": "/extra/copied", "value": shown["driver_info"]["redfish_password"]},
    ]
    response = api.patch("/v1/nodes/secretive", ops)
    assert response.status_code == 200, response.text
    _clean(response.text)
    assert _stored(api, "driver_info")["bmc"]["auth"]["ipmi_password"] == BMC_PASSWORD
    assert _stored(api, "driver_info")["ipmi_username"] == "root"
    assert _stored(api, "instance_info")["image_source"] == IMAGE
    assert _stored(api, "extra")["copied"] == MASK


def test_replacing_a_secret_stores_the_new_one(api: Api) -> None:
    _node(api)
    ops = [{"op": "replace", "path": "/driver_info/redfish_password", "value": "New-Pass-9"}]
    assert api.patch("/v1/nodes/secretive", ops).status_code == 200
    assert _stored(api, "driver_info")["redfish_password"] == "New-Pass-9"


def test_ports_portgroups_chassis_and_volume_targets_mask_secret_keys(api: Api) -> None:
    node = _node(api)
    secret = {"switch": {"auth_token": TOKEN}, "note": f"see {IMAGE}"}
    port = api.post(
        "/v1/ports", {"address": "52:54:00:aa:bb:01", "node_uuid": node["uuid"], "extra": secret}
    )
    group = api.post("/v1/portgroups", {"node_uuid": node["uuid"], "extra": secret})
    chassis = api.post("/v1/chassis", {"extra": secret})
    target = api.post(
        "/v1/volume/targets",
        {
            "node_uuid": node["uuid"],
            "volume_type": "iscsi",
            "boot_index": 0,
            "volume_id": "v1",
            "properties": {"auth_password": TOKEN},
        },
    )
    for response in (port, group, chassis, target):
        assert response.status_code == 201, response.text
        _clean(response.text)
    assert port.json()["extra"] == {
        "switch": {"auth_token": MASK},
        "note": "see http://mirror:******@images.example/os.raw",
    }
    for path in ("/v1/ports/detail", "/v1/portgroups/detail", "/v1/chassis/detail"):
        _clean(api.get(path).text)
    _clean(api.get("/v1/volume/targets?detail=True").text)


def test_error_bodies_never_echo_a_secret(api: Api) -> None:
    _node(api)
    api.put("/v1/nodes/secretive/states/provision", {"target": "manage"})
    wrong_type = api.put(
        "/v1/nodes/secretive/states/provision", {"target": "rescue", "rescue_password": NUMERIC}
    )
    assert wrong_type.status_code == 400
    _clean(wrong_type.text)
    not_a_drive = api.put(
        "/v1/nodes/secretive/states/provision",
        {"target": "active", "configdrive": [{"admin_pass": BMC_PASSWORD}]},
    )
    assert not_a_drive.status_code == 400
    _clean(not_a_drive.text)
    bad_patch = api.patch("/v1/nodes/secretive", [f"password={TOKEN}"])
    assert bad_patch.status_code == 400
    _clean(bad_patch.text)


def test_validate_and_history_are_scrubbed(api: Api) -> None:
    _node(api)
    ops = [{"op": "replace", "path": "/instance_info/image_source", "value": "ftp:" + IMAGE[5:]}]
    assert api.patch("/v1/nodes/secretive", ops).status_code == 200
    _clean(api.get("/v1/nodes/secretive/validate").text)
    with api.db.begin() as conn:
        node = repo.get_node(conn, "secretive")
        repo.add_history(conn, node.id, event=f"fetching {IMAGE}", event_type="deploy")
    history = api.get("/v1/nodes/secretive/history?detail=True")
    _clean(history.text)
    assert "http://mirror:******@images.example/os.raw" in history.text
    assert fault_of(api.get("/v1/nodes/none")) == "Node none could not be found."
