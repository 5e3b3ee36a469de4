"""/v1/ports and /v1/portgroups."""

from __future__ import annotations

import uuid

import pytest
from api_harness import Api, fault_of


@pytest.fixture
def node(api: Api) -> dict[str, object]:
    return api.node(name="pn")


def test_create_normalizes_the_mac(api: Api, node: dict[str, object]) -> None:
    response = api.post(
        "/v1/ports",
        {
            "node_uuid": node["uuid"],
            "address": "52-54-00-AA-BB-CC",
            "pxe_enabled": False,
            "physical_network": "physnet1",
            "local_link_connection": {"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1"},
            "extra": {"x": 1},
        },
    )
    assert response.status_code == 201, response.text
    port = response.json()
    assert port["address"] == "52:54:00:aa:bb:cc"
    assert port["node_uuid"] == node["uuid"]
    assert port["pxe_enabled"] is False
    assert port["physical_network"] == "physnet1"
    assert response.headers["Location"] == f"http://testserver/v1/ports/{port['uuid']}"


def test_node_may_be_named_by_name(api: Api, node: dict[str, object]) -> None:
    response = api.post("/v1/ports", {"node_uuid": "pn", "address": "52:54:00:aa:bb:cc"})
    assert response.status_code == 201


def test_duplicate_mac_is_409(api: Api, node: dict[str, object]) -> None:
    api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:aa:bb:cc"})
    response = api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:AA:BB:CC"})
    assert response.status_code == 409
    assert fault_of(response) == "A port with MAC address 52:54:00:aa:bb:cc already exists."


@pytest.mark.parametrize(
    "body",
    [
        {"address": "52:54:00:aa:bb:cc"},
        {"node_uuid": "pn"},
        {"node_uuid": "pn", "address": "not-a-mac"},
        {"node_uuid": "pn", "address": "52:54:00:aa:bb"},
        {"node_uuid": str(uuid.uuid4()), "address": "52:54:00:aa:bb:cc"},
        {"node_uuid": "pn", "address": "52:54:00:aa:bb:cc", "pxe_enabled": "yes"},
        {"node_uuid": "pn", "address": "52:54:00:aa:bb:cc", "local_link_connection": {"x": 1}},
        {"node_uuid": "pn", "address": "52:54:00:aa:bb:cc", "colour": "red"},
    ],
)
def test_create_validation(api: Api, node: dict[str, object], body: dict[str, object]) -> None:
    assert api.post("/v1/ports", body).status_code == 400


def test_list_show_filter_and_detail(api: Api, node: dict[str, object]) -> None:
    other = api.node(name="other")
    a = api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:00:00:01"}).json()
    b = api.post("/v1/ports", {"node_uuid": other["uuid"], "address": "52:54:00:00:00:02"}).json()
    listed = api.get("/v1/ports").json()["ports"]
    assert [p["uuid"] for p in listed] == [a["uuid"], b["uuid"]]
    assert set(listed[0]) == {"uuid", "address", "name", "links"}
    assert [p["uuid"] for p in api.get("/v1/ports?node=other").json()["ports"]] == [b["uuid"]]
    by_uuid = api.get(f"/v1/ports?node_uuid={node['uuid']}").json()["ports"]
    assert [p["uuid"] for p in by_uuid] == [a["uuid"]]
    by_mac = api.get("/v1/ports?address=52:54:00:00:00:02").json()["ports"]
    assert [p["uuid"] for p in by_mac] == [b["uuid"]]
    assert [p["uuid"] for p in api.get("/v1/nodes/other/ports").json()["ports"]] == [b["uuid"]]
    detail = api.get("/v1/ports/detail").json()["ports"][0]
    assert detail["node_uuid"] == node["uuid"]
    assert api.get("/v1/ports?detail=true").json()["ports"][0] == detail
    assert api.get(f"/v1/ports/{a['uuid']}").json() == detail
    assert set(api.get(f"/v1/ports/{a['uuid']}?fields=address").json()) == {"address", "links"}
    page = api.get("/v1/ports?limit=1").json()
    assert page["next"] == f"http://testserver/v1/ports?limit=1&marker={a['uuid']}"
    assert api.get("/v1/ports?bogus=1").status_code == 400


def test_patch_and_delete(api: Api, node: dict[str, object]) -> None:
    port = api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:00:00:01"})
    ident = port.json()["uuid"]
    response = api.patch(
        f"/v1/ports/{ident}",
        [
            {"op": "replace", "path": "/address", "value": "52:54:00:00:00:0A"},
            {"op": "add", "path": "/extra/rack", "value": "r1"},
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json()["address"] == "52:54:00:00:00:0a"
    assert response.json()["extra"] == {"rack": "r1"}
    same = api.patch(
        f"/v1/ports/{ident}", [{"op": "replace", "path": "/address", "value": "52:54:00:00:00:0A"}]
    )
    assert same.status_code == 200
    assert (
        api.patch(f"/v1/ports/{ident}", [{"op": "remove", "path": "/address"}]).status_code == 400
    )
    response = api.patch(f"/v1/ports/{ident}", [{"op": "replace", "path": "/uuid", "value": "x"}])
    assert fault_of(response) == "'/uuid' is an internal attribute and can not be updated"
    assert api.delete(f"/v1/ports/{ident}").status_code == 204
    assert api.get(f"/v1/ports/{ident}").status_code == 404


# ------------------------------------------------------------------------ portgroups


def test_portgroups(api: Api, node: dict[str, object]) -> None:
    response = api.post(
        "/v1/portgroups",
        {
            "node_uuid": node["uuid"],
            "name": "bond0",
            "address": "52:54:00:00:00:AA",
            "mode": "802.3ad",
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["address"] == "52:54:00:00:00:aa"
    assert group["mode"] == "802.3ad"
    assert group["standalone_ports_supported"] is True
    port = api.post(
        "/v1/ports",
        {"node_uuid": node["uuid"], "address": "52:54:00:00:00:01", "portgroup_uuid": "bond0"},
    ).json()
    assert port["portgroup_uuid"] == group["uuid"]
    assert [p["uuid"] for p in api.get("/v1/portgroups/bond0/ports").json()["ports"]] == [
        port["uuid"]
    ]
    assert [p["uuid"] for p in api.get("/v1/ports?portgroup=bond0").json()["ports"]] == [
        port["uuid"]
    ]
    listed = api.get("/v1/portgroups").json()["portgroups"]
    assert set(listed[0]) == {"uuid", "name", "address", "links"}
    assert api.get("/v1/nodes/pn/portgroups").json()["portgroups"][0]["uuid"] == group["uuid"]
    assert api.get("/v1/portgroups/detail").json()["portgroups"][0]["mode"] == "802.3ad"
    patched = api.patch(
        "/v1/portgroups/bond0", [{"op": "add", "path": "/properties/miimon", "value": "100"}]
    ).json()
    assert patched["properties"] == {"miimon": "100"}
    response = api.delete("/v1/portgroups/bond0")  # still has a port: 400, as in Ironic
    assert response.status_code == 400
    assert f"portgroup {group['uuid']} contains ports" in fault_of(response)
    api.delete(f"/v1/ports/{port['uuid']}")
    assert api.delete("/v1/portgroups/bond0").status_code == 204


def test_portgroups_need_1_23(api: Api, node: dict[str, object]) -> None:
    assert api.get("/v1/portgroups", version="1.22").status_code == 404
    assert api.get("/v1/portgroups", version="1.23").status_code == 200


def test_portgroup_subresources_need_1_24(api: Api, node: dict[str, object]) -> None:
    # a version after portgroups themselves, as Ironic (and ironic-tempest-plugin's
    # TestPortgroupByNodeMicroversions) has it
    group = api.post("/v1/portgroups", {"node_uuid": "pn", "name": "bond0"}).json()
    paths = (
        "/v1/nodes/pn/portgroups",
        "/v1/nodes/pn/portgroups/detail",
        "/v1/portgroups/bond0/ports",
        "/v1/portgroups/bond0/ports/detail",
    )
    for path in paths:
        for version in ("1.23", "1.14"):
            response = api.get(path, version=version)
            assert response.status_code == 404, (path, version)
            assert fault_of(response) == (
                f"This portgroup resource needs API version 1.24 or later (requested {version})."
            )
        assert api.get(path, version="1.24").status_code == 200, path
    detail = api.get("/v1/nodes/pn/portgroups/detail", version="1.24").json()["portgroups"]
    assert [g["uuid"] for g in detail] == [group["uuid"]]
    assert detail[0]["node_uuid"] == node["uuid"]
    assert "extra" in detail[0]


def test_node_and_portgroup_ports_detail(api: Api, node: dict[str, object]) -> None:
    api.post("/v1/portgroups", {"node_uuid": "pn", "name": "bond0"})
    body = {"node_uuid": "pn", "address": "52:54:00:00:00:01", "portgroup_uuid": "bond0"}
    port = api.post("/v1/ports", body).json()
    api.post(
        "/v1/ports", {"node_uuid": api.node(name="other")["uuid"], "address": "52:54:00:00:00:02"}
    )
    for path in ("/v1/nodes/pn/ports/detail", "/v1/portgroups/bond0/ports/detail"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {"ports": [api.get(f"/v1/ports/{port['uuid']}").json()]}
    page = api.get("/v1/nodes/pn/ports/detail?limit=1").json()
    assert page["next"] == (
        f"http://testserver/v1/nodes/pn/ports/detail?limit=1&marker={port['uuid']}"
    )
    assert api.get("/v1/nodes/pn/ports/detail?fields=uuid").status_code == 400
    assert api.get("/v1/nodes/nope/ports/detail").status_code == 404


def test_portgroup_validation(api: Api, node: dict[str, object]) -> None:
    assert api.post("/v1/portgroups", {"name": "x"}).status_code == 400
    assert api.post("/v1/portgroups", {"node_uuid": "pn", "address": "zz"}).status_code == 400
    assert api.post("/v1/portgroups", {"node_uuid": "pn", "name": "a b"}).status_code == 400


# ------------------------------------------------------------- ports by address


def test_ports_are_looked_up_by_address(api: Api, node: dict[str, object]) -> None:
    # python-ironicclient's `baremetal port show --address` and ironic-tempest-plugin's
    # test_list_ports_details_with_address ask /v1/ports/detail?address=
    port = api.post("/v1/ports", {"node_uuid": "pn", "address": "52:54:00:00:00:01"}).json()
    api.post("/v1/ports", {"node_uuid": "pn", "address": "52:54:00:00:00:02"})
    for spelling in ("52:54:00:00:00:01", "52:54:00:00:00:01".upper(), "52-54-00-00-00-01"):
        found = api.get(f"/v1/ports/detail?address={spelling}").json()["ports"]
        assert found == [api.get(f"/v1/ports/{port['uuid']}").json()], spelling
    assert api.get("/v1/ports/detail?address=52:54:00:00:00:09").json() == {"ports": []}
    response = api.get("/v1/ports/detail?address=not-a-mac")
    assert response.status_code == 400
    assert fault_of(response) == "Expected a MAC address but received not-a-mac."


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("address", ["52:54:00:00:00:01", "52-54-00-00-00-01"])
def test_a_mac_in_a_port_path_is_400(
    api: Api, node: dict[str, object], method: str, address: str
) -> None:
    # Ironic (ironic-tempest-plugin's test_*_port_by_mac_not_allowed): a port is never
    # named by its MAC address in a path
    port = api.post("/v1/ports", {"node_uuid": "pn", "address": "52:54:00:00:00:01"}).json()
    body = [{"op": "add", "path": "/extra/a", "value": 1}] if method == "PATCH" else None
    response = api.request(method, f"/v1/ports/{address}", body)
    assert response.status_code == 400
    assert address in fault_of(response)
    assert api.get(f"/v1/ports/{port['uuid']}").json()["extra"] == {}


@pytest.mark.parametrize(
    "ident",
    [
        "1234-abcd",
        "c0ffee00-1234-4321-8888-00000000000",  # a digit short
        "c0ffee00-1234-4321-8888-0000000000000",  # a digit long
        "{c0ffee00-1234-4321-8888-000000000000}",
        "port-1",
    ],
)
def test_a_port_is_deleted_by_its_uuid_only(api: Api, node: dict[str, object], ident: str) -> None:
    # Ironic's DELETE /v1/ports/{port_uuid} takes a UUID and nothing else (400)
    body = {"node_uuid": "pn", "address": "52:54:00:00:00:01", "name": "port-1"}
    port = api.post("/v1/ports", body).json()
    response = api.delete(f"/v1/ports/{ident}")
    assert response.status_code == 400
    assert fault_of(response).startswith("Expected a port UUID in canonical form")
    assert ident in fault_of(response)
    assert api.get("/v1/ports/port-1").json()["uuid"] == port["uuid"]
    assert api.delete(f"/v1/ports/{port['uuid'].upper()}").status_code == 204


def test_a_port_name_may_not_read_as_a_mac(api: Api, node: dict[str, object]) -> None:
    body = {"node_uuid": "pn", "address": "52:54:00:00:00:01", "name": "52-54-00-00-00-02"}
    response = api.post("/v1/ports", body)
    assert response.status_code == 400
    assert "reads as a MAC address" in fault_of(response)
    body["name"] = "525400000002"  # bare digits may be a name
    port = api.post("/v1/ports", body).json()
    assert api.get("/v1/ports/525400000002").json()["uuid"] == port["uuid"]
    patch = [{"op": "replace", "path": "/name", "value": "52:54:00:00:00:02"}]
    assert api.patch(f"/v1/ports/{port['uuid']}", patch).status_code == 400
