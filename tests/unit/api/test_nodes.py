"""/v1/nodes: create, show, list (filters, paging, fields), update, delete."""

from __future__ import annotations

import uuid

import pytest
from api_harness import Api, fault_of

from metalcast.api.versions import MAX_VERSION
from metalcast.db import repository as repo

# ------------------------------------------------------------------------------ create


def test_create_returns_201_with_the_node_and_defaults(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "name": "node-1"})
    assert response.status_code == 201
    node = response.json()
    assert node["name"] == "node-1"
    assert node["provision_state"] == "enroll"
    assert node["power_interface"] == "fake"
    assert node["conductor"] == "cond-1"
    assert node["traits"] == []
    assert node["created_at"].endswith("+00:00")
    assert node["updated_at"] is None
    assert response.headers["Location"] == f"http://testserver/v1/nodes/{node['uuid']}"
    assert node["links"][0] == {
        "href": f"http://testserver/v1/nodes/{node['uuid']}",
        "rel": "self",
    }
    assert node["ports"][0]["href"].endswith(f"/v1/nodes/{node['uuid']}/ports")


def test_create_with_given_uuid_and_metalcast_additions(api: Api) -> None:
    wanted = str(uuid.uuid4())
    node = api.node(
        uuid=wanted,
        owner="p1",
        lessee="p2",
        description="rack 4",
        conductor_group="",
        automated_clean=False,
        resource_class="gold",
        properties={"cpus": 8},
        extra={"k": "v"},
        retired=False,
    )
    assert node["uuid"] == wanted
    assert (node["owner"], node["lessee"], node["description"]) == ("p1", "p2", "rack 4")
    assert node["automated_clean"] is False
    assert node["properties"] == {"cpus": 8}


def test_create_before_1_11_starts_available(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware"}, version="1.10")
    assert response.status_code == 201
    assert response.json()["provision_state"] == "available"


def test_driver_is_required(api: Api) -> None:
    response = api.post("/v1/nodes", {"name": "x"})
    assert response.status_code == 400
    assert "'driver' is a required property" in fault_of(response)


def test_unknown_driver_is_400(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "no-such-hardware"})
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["has space", "a/b", "ünïcode", str(uuid.uuid4()), "x" * 256, ""])
def test_invalid_names_are_400(api: Api, name: str) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "name": name})
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["node-1", "a.b_c~d", "UPPER", "1"])
def test_valid_names(api: Api, name: str) -> None:
    assert api.node(name=name)["name"] == name


def test_duplicate_name_is_409(api: Api) -> None:
    api.node(name="twin")
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "name": "twin"})
    assert response.status_code == 409
    assert "twin" in fault_of(response)


def test_read_only_fields_are_refused_on_create(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "provision_state": "active"})
    assert response.status_code == 400
    assert "provision_state" in fault_of(response)


def test_field_newer_than_the_version_is_406(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "name": "n"}, version="1.4")
    assert response.status_code == 406


def test_unknown_chassis_is_400(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "chassis_uuid": str(uuid.uuid4())})
    assert response.status_code == 400


# ------------------------------------------------------------------------------- show


def test_show_by_uuid_or_name(api: Api) -> None:
    node = api.node(name="byname")
    assert api.get(f"/v1/nodes/{node['uuid']}").json()["name"] == "byname"
    assert api.get("/v1/nodes/byname").json()["uuid"] == node["uuid"]


def test_secrets_are_masked(api: Api) -> None:
    api.node(
        name="secret",
        driver_info={"ipmi_password": "hunter2", "ipmi_address": "10.0.0.1"},
        instance_info={"configdrive": "H4sI...", "image_source": "http://x"},
    )
    response = api.get("/v1/nodes/secret")
    node = response.json()
    assert node["driver_info"] == {"ipmi_password": "******", "ipmi_address": "10.0.0.1"}
    assert node["instance_info"]["configdrive"] == "******"
    assert "hunter2" not in response.text
    assert "hunter2" not in api.get("/v1/nodes/detail").text


def test_fields_are_hidden_below_their_version(api: Api) -> None:
    api.node(name="old", owner="p1")
    old = api.get("/v1/nodes/old", version="1.1").json()
    assert "name" not in old
    assert "owner" not in old
    assert "boot_interface" not in old
    new = api.get("/v1/nodes/old", version=str(MAX_VERSION)).json()
    # features Ironic added above our maximum are served at our maximum
    for field in ("owner", "lessee", "traits", "conductor", "protected", "retired", "fault"):
        assert field in new


def test_available_was_nostate_before_1_2(api: Api) -> None:
    api.post("/v1/nodes", {"driver": "fake-hardware"}, version="1.1")
    node = api.get("/v1/nodes/detail", version="1.1").json()["nodes"][0]
    assert node["provision_state"] is None


def test_fields_parameter_selects_fields(api: Api) -> None:
    api.node(name="sel", owner="p1")
    body = api.get("/v1/nodes/sel?fields=uuid,owner").json()
    assert set(body) == {"uuid", "owner", "links"}
    response = api.get("/v1/nodes/sel?fields=uuid,nonsense")
    assert response.status_code == 400
    assert fault_of(response) == 'Field(s) "nonsense" are not valid'
    assert api.get("/v1/nodes/sel?fields=uuid", version="1.7").status_code == 406


@pytest.mark.parametrize(
    "fields", ["provision_updated_at", "traits", "created_at,chassis_uuid,conductor"]
)
def test_fields_naming_no_plain_column(api: Api, fields: str) -> None:
    """Found by schemathesis: a selection of only dates, traits or related fields was
    a 500 on one node (the plan had no column to copy)."""
    api.node(name="sel")
    response = api.get(f"/v1/nodes/sel?fields={fields}")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {*fields.split(","), "links"}
    listed = api.get(f"/v1/nodes?fields={fields}")
    assert listed.status_code == 200, listed.text
    assert set(listed.json()["nodes"][0]) == {*fields.split(","), "links"}


# ------------------------------------------------------------------------------- list


def test_list_shows_the_short_form(api: Api) -> None:
    api.node(name="a")
    entry = api.get("/v1/nodes").json()["nodes"][0]
    assert set(entry) == {
        "uuid",
        "name",
        "instance_uuid",
        "power_state",
        "provision_state",
        "maintenance",
        "links",
    }


def test_detail_endpoint_and_parameter(api: Api) -> None:
    api.node(name="a")
    detailed = api.get("/v1/nodes/detail").json()["nodes"][0]
    assert "driver_info" in detailed
    assert api.get("/v1/nodes?detail=True").json()["nodes"][0] == detailed
    response = api.get("/v1/nodes?detail=True&fields=uuid")
    assert response.status_code == 400


def test_list_fields(api: Api) -> None:
    api.node(name="a", owner="p")
    entry = api.get("/v1/nodes?fields=name,owner").json()["nodes"][0]
    assert entry["owner"] == "p"
    assert set(entry) == {"name", "owner", "links"}


def test_filters(api: Api) -> None:
    api.node(name="a", owner="p1", resource_class="gold", description="rack one")
    api.node(name="b", owner="p2", lessee="p1", retired=True)
    with api.db.begin() as conn:  # a live conductor serves group g1
        repo.register_conductor(
            conn, hostname="cond-g1", conductor_group="g1", hardware_types=["fake-hardware"]
        )
    api.node(name="c", conductor_group="g1")

    def names(query: str) -> set[str]:
        response = api.get(f"/v1/nodes?{query}")
        assert response.status_code == 200, response.text
        return {n["name"] for n in response.json()["nodes"]}

    assert names("owner=p1") == {"a"}
    assert names("lessee=p1") == {"b"}
    assert names("resource_class=gold") == {"a"}
    assert names("retired=true") == {"b"}
    assert names("retired=false") == {"a", "c"}
    assert names("description_contains=one") == {"a"}
    assert names("conductor_group=g1") == {"c"}
    assert names("provision_state=enroll") == {"a", "b", "c"}
    assert names("driver=fake-hardware") == {"a", "b", "c"}
    assert names("maintenance=false") == {"a", "b", "c"}
    assert names("associated=false") == {"a", "b", "c"}
    assert names("associated=true") == set()
    assert names("conductor=cond-1") == {"a", "b"}
    assert names("conductor=nobody") == set()
    assert names(f"chassis_uuid={uuid.uuid4()}") == set()


def test_bad_filter_values(api: Api) -> None:
    assert api.get("/v1/nodes?maintenance=perhaps").status_code == 400
    response = api.get("/v1/nodes?shard_name=x")
    assert response.status_code == 400
    assert "shard" in fault_of(response)
    assert api.get("/v1/nodes?driver=x", version="1.15").status_code == 406


@pytest.mark.parametrize("path", ["/v1/nodes", "/v1/nodes/detail"])
def test_an_unknown_fault_is_400(api: Api, path: str) -> None:
    api.node(name="f")
    response = api.get(f"{path}?fault=bogus")
    assert response.status_code == 400
    assert fault_of(response) == (
        'Unrecognized fault "bogus" is specified, allowed faults are "power failure", '
        '"clean failure", "rescue abort failure", "service failure".'
    )
    for fault in ("power failure", "clean failure", "rescue abort failure", "service failure"):
        assert api.get(f"{path}?fault={fault}").json() == {"nodes": []}
    # the version comes first, as in Ironic
    assert api.get(f"{path}?fault=bogus", version="1.41").status_code == 406


def test_the_node_of_an_instance(api: Api) -> None:
    # ironic-tempest-plugin's test_get_node_by_instance_uuid, and nova's lookup
    instance = str(uuid.uuid4())
    node = api.node(name="i", instance_uuid=instance)
    api.node(name="other", instance_uuid=str(uuid.uuid4()))
    api.node(name="free")
    for version in ("1.1", "1.60"):
        found = api.get(f"/v1/nodes/detail?instance_uuid={instance}", version=version).json()
        assert [n["uuid"] for n in found["nodes"]] == [node["uuid"]]
        assert found["nodes"][0]["instance_uuid"] == instance
        assert "driver_info" in found["nodes"][0]
    listed = api.get(f"/v1/nodes?instance_uuid={instance.upper()}").json()
    assert [n["uuid"] for n in listed["nodes"]] == [node["uuid"]]
    # one node at most: no next page even when the page is full, as in Ironic
    assert "next" not in api.get(f"/v1/nodes/detail?instance_uuid={instance}&limit=1").json()
    assert api.get(f"/v1/nodes/detail?instance_uuid={uuid.uuid4()}").json() == {"nodes": []}
    assert api.get("/v1/nodes/detail?instance_uuid=i").status_code == 400


def test_pagination_with_next_links(api: Api) -> None:
    made = [api.node(name=f"n{i}")["uuid"] for i in range(5)]
    first = api.get("/v1/nodes?limit=2").json()
    assert [n["uuid"] for n in first["nodes"]] == made[:2]
    assert first["next"] == f"http://testserver/v1/nodes?limit=2&marker={made[1]}"
    second = api.get(first["next"].removeprefix("http://testserver")).json()
    assert [n["uuid"] for n in second["nodes"]] == made[2:4]
    third = api.get(second["next"].removeprefix("http://testserver")).json()
    assert [n["uuid"] for n in third["nodes"]] == made[4:]
    assert "next" not in third


def test_next_link_keeps_other_parameters(api: Api) -> None:
    made = [api.node(name=f"n{i}")["uuid"] for i in range(3)]
    body = api.get("/v1/nodes/detail?sort_dir=desc&limit=1").json()
    assert body["nodes"][0]["uuid"] == made[-1]
    assert body["next"] == (
        f"http://testserver/v1/nodes/detail?sort_dir=desc&limit=1&marker={made[-1]}"
    )


def test_limit_is_capped_by_max_limit(api: Api) -> None:
    for i in range(3):
        api.node(name=f"n{i}")
    body = api.get("/v1/nodes?limit=1000000000000").json()
    assert len(body["nodes"]) == 3
    assert "next" not in body


@pytest.mark.parametrize("limit", ["-1", "ten", "1.5"])
def test_bad_limits_are_400(api: Api, limit: str) -> None:
    response = api.get(f"/v1/nodes?limit={limit}")
    assert response.status_code == 400
    assert "imit" in fault_of(response)


def test_sorting(api: Api) -> None:
    api.node(name="b")
    api.node(name="a")
    names = [n["name"] for n in api.get("/v1/nodes?sort_key=name").json()["nodes"]]
    assert names == ["a", "b"]
    assert api.get("/v1/nodes?sort_key=driver_info").status_code == 400
    assert api.get("/v1/nodes?sort_dir=sideways").status_code == 400
    assert api.get("/v1/nodes?marker=not-a-uuid").status_code == 400
    assert api.get(f"/v1/nodes?marker={uuid.uuid4()}").status_code == 400


# ------------------------------------------------------------------------------ patch


def patch(api: Api, ident: str, *ops: dict[str, object]) -> object:
    return api.patch(f"/v1/nodes/{ident}", list(ops))


def test_patch_nested_and_top_level(api: Api) -> None:
    api.node(name="p", driver_info={"ipmi_address": "1.1.1.1", "ipmi_password": "pw"})
    response = api.patch(
        "/v1/nodes/p",
        [
            {"op": "add", "path": "/properties/cpus", "value": 4},
            {"op": "replace", "path": "/driver_info/ipmi_address", "value": "2.2.2.2"},
            {"op": "add", "path": "/description", "value": "hello"},
            {"op": "add", "path": "/extra/a~1b", "value": True},
        ],
    )
    assert response.status_code == 200, response.text
    node = response.json()
    assert node["properties"] == {"cpus": 4}
    assert node["driver_info"] == {"ipmi_address": "2.2.2.2", "ipmi_password": "******"}
    assert node["description"] == "hello"
    assert node["extra"] == {"a/b": True}
    assert node["updated_at"] is not None


def test_patch_keeps_the_stored_secret(api: Api) -> None:
    api.node(name="p", driver_info={"ipmi_password": "pw"})
    api.patch("/v1/nodes/p", [{"op": "add", "path": "/driver_info/ipmi_username", "value": "u"}])
    with api.db.read() as conn:
        from metalcast.db import repository as repo

        stored = repo.get_node(conn, "p").driver_info
    assert stored["ipmi_password"] != "pw"  # still encrypted, not re-sealed garbage
    assert api.service.rt.secret_box.reveal(stored)["ipmi_password"] == "pw"


def test_patch_remove_resets_to_default(api: Api) -> None:
    api.node(name="p", extra={"a": 1}, description="d")
    node = api.patch(
        "/v1/nodes/p",
        [{"op": "remove", "path": "/extra"}, {"op": "remove", "path": "/description"}],
    ).json()
    assert node["extra"] == {}
    assert node["description"] is None


@pytest.mark.parametrize("path", ["/provision_state", "/uuid", "/id", "/created_at", "/traits"])
def test_patch_of_internal_attributes_is_400(api: Api, path: str) -> None:
    api.node(name="p")
    response = api.patch("/v1/nodes/p", [{"op": "replace", "path": path, "value": "x"}])
    assert response.status_code == 400
    assert fault_of(response) == f"'{path}' is an internal attribute and can not be updated"


def test_patch_errors(api: Api) -> None:
    api.node(name="p")

    def fails(ops: object) -> str:
        response = api.patch("/v1/nodes/p", ops)
        assert response.status_code == 400, response.text
        return fault_of(response)

    assert "root of the resource" in fails([{"op": "add", "path": "/colour", "value": "red"}])
    assert "mandatory" in fails([{"op": "remove", "path": "/driver"}])
    assert "does not exist" in fails([{"op": "replace", "path": "/extra/missing", "value": 1}])
    assert "does not exist" in fails([{"op": "remove", "path": "/properties/nope"}])
    assert "Value should be one of" in fails([{"op": "move", "path": "/name", "value": 1}])
    assert "need a value" in fails([{"op": "add", "path": "/name"}])
    assert "list of operations" in fails({"op": "add"})
    assert "not of type 'object'" in fails([{"op": "replace", "path": "/extra", "value": 3}])
    assert "logical name" in fails([{"op": "replace", "path": "/name", "value": "a b"}])
    assert "not of type 'boolean'" in fails([{"op": "replace", "path": "/retired", "value": 1}])


def test_patch_duplicate_name_is_409(api: Api) -> None:
    api.node(name="one")
    api.node(name="two")
    response = api.patch("/v1/nodes/two", [{"op": "replace", "path": "/name", "value": "one"}])
    assert response.status_code == 409


def test_patch_chassis_uuid(api: Api) -> None:
    chassis = api.post("/v1/chassis", {"description": "c"}).json()
    api.node(name="p")
    node = api.patch(
        "/v1/nodes/p", [{"op": "add", "path": "/chassis_uuid", "value": chassis["uuid"]}]
    ).json()
    assert node["chassis_uuid"] == chassis["uuid"]
    listed = api.get(f"/v1/chassis/{chassis['uuid']}/nodes").json()["nodes"]
    assert [n["name"] for n in listed] == ["p"]
    node = api.patch("/v1/nodes/p", [{"op": "remove", "path": "/chassis_uuid"}]).json()
    assert node["chassis_uuid"] is None


def test_empty_patch_changes_nothing(api: Api) -> None:
    api.node(name="p")
    response = api.patch("/v1/nodes/p", [])
    assert response.status_code == 200
    assert response.json()["updated_at"] is None


# ----------------------------------------------------------------------------- delete


def test_delete(api: Api) -> None:
    api.node(name="gone")
    response = api.delete("/v1/nodes/gone")
    assert response.status_code == 204
    assert response.content == b""
    assert api.get("/v1/nodes/gone").status_code == 404
    assert api.delete("/v1/nodes/gone").status_code == 404
