"""/v1/volume: connectors and targets (1.32), through the real app and conductor."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

IQN = "iqn.2017-07.org.openstack:02:10190a4153e"


def managed(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    """A node verified by ``manage``: powered off."""
    node = api.node(name=name, **fields)
    assert api.put(f"/v1/nodes/{name}/states/provision", {"target": "manage"}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    assert api.get(f"/v1/nodes/{name}").json()["power_state"] == "power off"
    return node


def connector(api: Api, node: str, connector_id: str = IQN, **extra: Any) -> dict[str, Any]:
    body = {"node_uuid": node, "type": "iqn", "connector_id": connector_id, **extra}
    response = api.post("/v1/volume/connectors", body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def target(api: Api, node: str, boot_index: int = 0, **extra: Any) -> dict[str, Any]:
    body = {
        "node_uuid": node,
        "volume_type": "iscsi",
        "boot_index": boot_index,
        "volume_id": f"vol-{boot_index}",
        **extra,
    }
    response = api.post("/v1/volume/targets", body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_volume_root_and_node_volume_links(api: Api) -> None:
    node = api.node(name="n")
    root = api.get("/v1/volume").json()
    assert root["connectors"][0]["href"] == "http://testserver/v1/volume/connectors"
    assert root["targets"][1] == {"href": "http://testserver/volume/targets", "rel": "bookmark"}
    assert root["links"][0]["href"] == "http://testserver/v1/volume/"
    per_node = api.get("/v1/nodes/n/volume").json()
    assert per_node["connectors"][0]["href"].endswith(f"/v1/nodes/{node['uuid']}/volume/connectors")
    assert "volume" in api.get("/v1").json()


def test_volume_needs_1_32(api: Api) -> None:
    api.node(name="n")
    for path in ("/v1/volume", "/v1/volume/connectors", "/v1/volume/targets", "/v1/nodes/n/volume"):
        assert api.get(path, version="1.31").status_code == 404, path
        assert api.get(path, version="1.32").status_code == 200, path
    body = {"node_uuid": "n", "type": "iqn", "connector_id": IQN}
    assert api.post("/v1/volume/connectors", body, version="1.31").status_code == 404
    assert "volume" not in api.get("/v1", version="1.31").json()


@pytest.mark.parametrize("kind", ["connectors", "targets"])
def test_volume_resources_by_uuid_are_not_found_below_1_32(api: Api, kind: str) -> None:
    # ironic-tempest-plugin's TestVolume{Connector,Target}Microversions: 404 for every
    # method below 1.32, whatever the identifier, before it is checked
    managed(api, "n")
    made = connector(api, "n") if kind == "connectors" else target(api, "n")
    patch = [{"op": "add", "path": "/extra/a", "value": "b"}]
    for ident in (made["uuid"], made["uuid"].upper(), f"fake_volume_{kind[:-1]}"):
        path = f"/v1/volume/{kind}/{ident}"
        for version in ("1.31", "1.22"):
            for method, body in (("GET", None), ("PATCH", patch), ("DELETE", None)):
                response = api.request(method, path, body, version=version)
                assert response.status_code == 404, (method, path, version, response.text)
                assert fault_of(response) == "The resource could not be found."
        assert api.get(f"/v1/nodes/n/volume/{kind}", version="1.31").status_code == 404
    assert api.get(f"/v1/volume/{kind}/{made['uuid']}", version="1.32").json()["extra"] == {}
    response = api.get(f"/v1/volume/{kind}/fake_volume_{kind[:-1]}", version="1.32")
    assert response.status_code == 400


def test_connector_create_show_list(api: Api) -> None:
    node = api.node(name="n")
    created = connector(api, "n", extra={"rack": "r1"})
    assert created["node_uuid"] == node["uuid"]
    assert created["type"] == "iqn"
    assert created["extra"] == {"rack": "r1"}
    assert (
        created["links"][0]["href"] == f"http://testserver/v1/volume/connectors/{created['uuid']}"
    )
    shown = api.get(f"/v1/volume/connectors/{created['uuid']}").json()
    assert shown == created
    listed = api.get("/v1/volume/connectors").json()["connectors"]
    assert listed == [
        {
            "uuid": created["uuid"],
            "node_uuid": node["uuid"],
            "type": "iqn",
            "connector_id": IQN,
            "links": created["links"],
        }
    ]
    detailed = api.get("/v1/volume/connectors?detail=True", version="1.32").json()
    assert detailed["connectors"][0]["extra"] == {"rack": "r1"}
    assert api.get("/v1/volume/connectors/detail").json() == detailed
    fields = api.get(f"/v1/volume/connectors/{created['uuid']}?fields=type").json()
    assert set(fields) == {"type", "links"}


def test_lists_filter_by_node_and_page(api: Api) -> None:
    api.node(name="a")
    api.node(name="b")
    mine = [connector(api, "a", f"iqn.a{i}") for i in range(3)]
    connector(api, "b", "iqn.b")
    by_node = api.get("/v1/volume/connectors?node=a").json()["connectors"]
    assert [c["uuid"] for c in by_node] == [c["uuid"] for c in mine]
    nested = api.get("/v1/nodes/a/volume/connectors").json()["connectors"]
    assert [c["uuid"] for c in nested] == [c["uuid"] for c in mine]
    page = api.get("/v1/volume/connectors?node=a&limit=2").json()
    assert len(page["connectors"]) == 2
    assert page["next"].endswith(f"node=a&limit=2&marker={mine[1]['uuid']}")
    rest = api.get(f"/v1/volume/connectors?node=a&limit=2&marker={mine[1]['uuid']}").json()
    assert [c["uuid"] for c in rest["connectors"]] == [mine[2]["uuid"]]
    assert api.get("/v1/volume/connectors?colour=red").status_code == 400
    assert api.get("/v1/volume/connectors?node=nope").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"type": "iqn", "connector_id": IQN},
        {"node_uuid": "n", "connector_id": IQN},
        {"node_uuid": "n", "type": "iqn"},
        {"node_uuid": "n", "type": "nfs", "connector_id": IQN},
        {"node_uuid": "nope", "type": "iqn", "connector_id": IQN},
        {"node_uuid": "n", "type": "iqn", "connector_id": IQN, "colour": "red"},
    ],
)
def test_connector_validation(api: Api, body: dict[str, Any]) -> None:
    api.node(name="n")
    assert api.post("/v1/volume/connectors", body).status_code == 400


def test_duplicate_connector_is_409(api: Api) -> None:
    api.node(name="n")
    connector(api, "n")
    response = api.post(
        "/v1/volume/connectors", {"node_uuid": "n", "type": "iqn", "connector_id": IQN}
    )
    assert response.status_code == 409
    assert (
        fault_of(response)
        == f"A volume connector with type iqn and connector ID {IQN} already exists."
    )


def test_changes_need_the_node_powered_off(api: Api) -> None:
    api.node(name="fresh")  # enrolled, never verified: power state unknown
    made = connector(api, "fresh")
    patch = [{"op": "add", "path": "/extra/a", "value": 1}]
    response = api.patch(f"/v1/volume/connectors/{made['uuid']}", patch)
    assert response.status_code == 400
    assert "power it off first" in fault_of(response)
    assert api.delete(f"/v1/volume/connectors/{made['uuid']}").status_code == 400

    managed(api, "off")
    made = connector(api, "off", "iqn.off")
    patched = api.patch(f"/v1/volume/connectors/{made['uuid']}", patch)
    assert patched.status_code == 200
    assert patched.json()["extra"] == {"a": 1}
    assert api.delete(f"/v1/volume/connectors/{made['uuid']}").status_code == 204
    assert api.get(f"/v1/volume/connectors/{made['uuid']}").status_code == 404


def test_connector_patch_rules(api: Api) -> None:
    managed(api, "n")
    made = connector(api, "n")
    path = f"/v1/volume/connectors/{made['uuid']}"
    assert api.patch(path, [{"op": "remove", "path": "/type"}]).status_code == 400
    assert api.patch(path, [{"op": "replace", "path": "/uuid", "value": "x"}]).status_code == 400
    assert api.patch(path, [{"op": "replace", "path": "/type", "value": "nfs"}]).status_code == 400
    moved = api.patch(path, [{"op": "replace", "path": "/type", "value": "wwpn"}])
    assert moved.json()["type"] == "wwpn"


def test_targets(api: Api) -> None:
    node = managed(api, "n")
    boot = target(api, "n", properties={"target_lun": 0})
    assert boot["boot_index"] == 0
    assert boot["properties"] == {"target_lun": 0}
    listed = api.get("/v1/volume/targets").json()["targets"]
    assert set(listed[0]) == {
        "uuid",
        "node_uuid",
        "volume_type",
        "boot_index",
        "volume_id",
        "links",
    }
    assert listed[0]["node_uuid"] == node["uuid"]
    response = api.post(
        "/v1/volume/targets",
        {"node_uuid": "n", "volume_type": "iscsi", "boot_index": 0, "volume_id": "other"},
    )
    assert response.status_code == 409
    assert "boot index '0'" in fault_of(response)
    second = target(api, "n", boot_index=1)
    patch = [{"op": "replace", "path": "/boot_index", "value": 0}]
    assert api.patch(f"/v1/volume/targets/{second['uuid']}", patch).status_code == 409
    patch = [{"op": "replace", "path": "/boot_index", "value": "two"}]
    assert api.patch(f"/v1/volume/targets/{second['uuid']}", patch).status_code == 400
    patch = [{"op": "replace", "path": "/boot_index", "value": 2}]
    assert api.patch(f"/v1/volume/targets/{second['uuid']}", patch).json()["boot_index"] == 2
    nested = api.get("/v1/nodes/n/volume/targets?detail=True").json()["targets"]
    assert [t["boot_index"] for t in nested] == [0, 2]
    assert nested[0]["properties"] == {"target_lun": 0}


def test_deleting_the_node_deletes_its_volume_resources(api: Api) -> None:
    api.node(name="n")
    connector(api, "n")
    target(api, "n")
    assert api.delete("/v1/nodes/n").status_code == 204
    assert api.get("/v1/volume/connectors").json()["connectors"] == []
    assert api.get("/v1/volume/targets").json()["targets"] == []


# --------------------------------------------------------------------------- policy


def test_volume_resources_follow_their_nodes_visibility(secured: Api) -> None:
    admin = secured.as_("admin")
    admin.node(name="owned", owner="p1")
    admin.node(name="foreign", owner="p2")
    mine = connector(admin, "owned", "iqn.mine")
    theirs = connector(admin, "foreign", "iqn.theirs")
    member = secured.as_("member", "p1")
    listed = [c["uuid"] for c in member.get("/v1/volume/connectors").json()["connectors"]]
    assert listed == [mine["uuid"]]
    assert member.get(f"/v1/volume/connectors/{theirs['uuid']}").status_code == 404
    reader = secured.as_("reader", "p1")
    assert reader.get(f"/v1/volume/connectors/{mine['uuid']}").status_code == 200


def test_volume_resources_are_created_by_the_nodes_admins(secured: Api) -> None:
    admin = secured.as_("admin")
    admin.node(name="owned", owner="p1")
    admin.node(name="foreign", owner="p2")
    body = {"node_uuid": "owned", "type": "iqn", "connector_id": "iqn.x"}
    # Ironic: baremetal:volume:create is for the owner's (or lessee's) admins and managers
    assert secured.as_("member", "p1").post("/v1/volume/connectors", body).status_code == 403
    project_admin = secured.as_("admin", "p1")
    assert project_admin.post("/v1/volume/connectors", body).status_code == 201
    # someone else's node, or none: the same refusal, so nothing is learnt
    for node in ("foreign", "no-such-node"):
        response = project_admin.post("/v1/volume/connectors", {**body, "node_uuid": node})
        assert response.status_code == 403
        assert fault_of(response) == (
            "Access was denied to the following resource: baremetal:volume:create"
        )
    missing = admin.post("/v1/volume/connectors", {**body, "node_uuid": "no-such-node"})
    assert missing.status_code == 400
