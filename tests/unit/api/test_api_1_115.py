"""What API 1.82 to 1.115 added (but firmware components, virtual media and deploy
hold, which other work serves), each gated as Ironic gates it, through the real app
and conductor: shards (1.82, 1.106), child nodes (1.83), disable_power_off (1.95),
port description, vendor, category (1.97, 1.100, 1.101), conductor_groups filters
(1.99), portgroup physical_network and category (1.102, 1.103), instance_name
(1.104), OVN VTEP keys (1.90 to 1.104), the .json suffix (1.91), disable_ramdisk on
service (1.108), health (1.109), abort of wait call-back (1.110), dynamic
portgroups (1.111), history states (1.115)."""

from __future__ import annotations

from typing import Any

from api_harness import Api, fault_of

from metalcast.db import repository as repo


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


def patch(api: Api, node: str, path: str, value: Any, **kw: Any) -> Any:
    return api.patch(f"/v1/nodes/{node}", [{"op": "add", "path": path, "value": value}], **kw)


def uuids(response: Any, key: str = "nodes") -> set[str]:
    assert response.status_code == 200, response.text
    return {item["uuid"] for item in response.json()[key]}


# -------------------------------------------------------------------- 1.82 shards


def test_shard_is_a_field_from_1_82(api: Api) -> None:
    node = api.node(name="s1", shard="rack-a")
    assert node["shard"] == "rack-a"
    assert "shard" not in api.get("/v1/nodes/s1", version="1.81").json()
    assert api.get("/v1/nodes/s1?fields=shard", version="1.81").status_code == 406
    assert patch(api, "s1", "/shard", "rack-b", version="1.81").status_code == 406
    assert patch(api, "s1", "/shard", "rack-b").json()["shard"] == "rack-b"


def test_shards_list_counts_nodes_per_shard(api: Api) -> None:
    api.node(name="a1", shard="a")
    api.node(name="a2", shard="a")
    api.node(name="b1", shard="b")
    api.node(name="none")
    shards = api.get("/v1/shards").json()["shards"]
    assert shards == [
        {"name": "a", "count": 2},
        {"name": "None", "count": 1},
        {"name": "b", "count": 1},
    ]
    assert api.get("/v1/shards", version="1.81").status_code == 404
    assert api.get("/v1/shards/a").status_code == 404


def test_shards_are_for_system_readers(secured: Api) -> None:
    assert secured.as_("reader").get("/v1/shards").status_code == 200
    assert secured.as_("admin", "p1").get("/v1/shards").status_code == 403


def test_node_shard_filters(api: Api) -> None:
    a = api.node(shard="a")["uuid"]
    b = api.node(shard="b")["uuid"]
    plain = api.node()["uuid"]
    assert uuids(api.get("/v1/nodes?shard=a")) == {a}
    assert uuids(api.get("/v1/nodes?shard=a,b")) == {a, b}
    assert uuids(api.get("/v1/nodes?sharded=true")) == {a, b}
    assert uuids(api.get("/v1/nodes?sharded=false")) == {plain}
    assert api.get("/v1/nodes?shard=a", version="1.81").status_code == 406
    assert api.get("/v1/nodes?sharded=true", version="1.81").status_code == 406
    assert api.get("/v1/nodes?sharded=perhaps").status_code == 400


def test_port_and_portgroup_shard_filters(api: Api) -> None:
    a = api.node(name="pa", shard="a")
    b = api.node(name="pb", shard="b")
    port_a = api.post("/v1/ports", {"address": "52:54:00:00:00:0a", "node_uuid": a["uuid"]})
    api.post("/v1/ports", {"address": "52:54:00:00:00:0b", "node_uuid": b["uuid"]})
    group_a = api.post("/v1/portgroups", {"node_uuid": a["uuid"], "name": "ga"})
    api.post("/v1/portgroups", {"node_uuid": b["uuid"], "name": "gb"})
    assert uuids(api.get("/v1/ports?shard=a"), "ports") == {port_a.json()["uuid"]}
    assert api.get("/v1/ports?shard=a", version="1.81").status_code == 406
    assert api.get("/v1/ports?shard=a&node=pa").status_code == 403
    assert uuids(api.get("/v1/portgroups?shard=a"), "portgroups") == {group_a.json()["uuid"]}
    # portgroups take the filter from 1.106 only
    assert api.get("/v1/portgroups?shard=a", version="1.105").status_code == 406


# ---------------------------------------------------------------- 1.83 children


def test_child_nodes(api: Api) -> None:
    parent = api.node(name="parent")
    child = api.node(name="child", parent_node="parent")
    assert child["parent_node"] == parent["uuid"]
    # lists leave children out unless asked
    assert uuids(api.get("/v1/nodes")) == {parent["uuid"]}
    assert uuids(api.get("/v1/nodes?include_children=true")) == {parent["uuid"], child["uuid"]}
    assert uuids(api.get("/v1/nodes?parent_node=parent")) == {child["uuid"]}
    assert uuids(api.get(f"/v1/nodes?parent_node={parent['uuid']}")) == {child["uuid"]}
    children = api.get("/v1/nodes/parent/children").json()
    assert children["children"] == [child["uuid"]]
    assert children["links"]["href"].endswith(f"/v1/nodes?parent_node={parent['uuid']}")
    assert api.get("/v1/nodes/parent/children", version="1.82").status_code == 404
    assert api.get("/v1/nodes?include_children=true", version="1.82").status_code == 406
    assert "parent_node" not in api.get("/v1/nodes/child", version="1.82").json()


def test_a_parent_must_be_visible_and_of_the_same_owner(secured: Api) -> None:
    admin = secured.as_("admin")
    admin.node(name="p-other", owner="p2")
    admin.node(name="p-mine", owner="p1")
    admin.node(name="kid", owner="p1")
    member = secured.as_("member", "p1")
    for parent in ("p-other", "nowhere"):
        response = patch(admin, "kid", "/parent_node", parent)
        assert response.status_code == 400, parent
        assert "Unable to apply the requested parent_node" in fault_of(response)
    assert "its own parent_node" in fault_of(patch(admin, "kid", "/parent_node", "kid"))
    # parent_node is a system member's field (Ironic's rule)
    assert patch(member, "kid", "/parent_node", "p-mine").status_code == 403
    assert patch(admin, "kid", "/parent_node", "p-mine").status_code == 200
    assert member.get("/v1/nodes/p-mine/children").json()["children"] != []
    assert member.get("/v1/nodes/p-other/children").status_code == 404


# ------------------------------------------------- 1.95 disable_power_off, power


def test_disable_power_off_refuses_power_off(api: Api) -> None:
    api.node(name="keep", disable_power_off=True)
    assert api.get("/v1/nodes/keep").json()["disable_power_off"] is True
    assert "disable_power_off" not in api.get("/v1/nodes/keep", version="1.94").json()
    for target in ("power off", "soft power off"):
        response = api.put("/v1/nodes/keep/states/power", {"target": target})
        assert response.status_code == 409
        assert f"Failed to set node power state to {target}" in fault_of(response)
    assert api.put("/v1/nodes/keep/states/power", {"target": "power on"}).status_code == 202
    settle(api)
    assert patch(api, "keep", "/disable_power_off", "false").json()["disable_power_off"] is False
    assert api.put("/v1/nodes/keep/states/power", {"target": "power off"}).status_code == 202
    settle(api)


# ------------------------------------------------ 1.97-1.103, 1.111 port fields


def test_port_fields(api: Api) -> None:
    node = api.node()
    body = {
        "address": "52:54:00:00:01:01",
        "node_uuid": node["uuid"],
        "description": "uplink",
        "vendor": "acme",
        "category": "storage",
        "available_for_dynamic_portgroup": False,
    }
    port = api.post("/v1/ports", body).json()
    for name in ("description", "vendor", "category"):
        assert port[name] == body[name]
    assert port["available_for_dynamic_portgroup"] is False
    old = api.get(f"/v1/ports/{port['uuid']}", version="1.96").json()
    assert {"description", "vendor", "category", "available_for_dynamic_portgroup"}.isdisjoint(old)
    assert (
        api.post("/v1/ports", {**body, "address": "52:54:00:00:01:02"}, version="1.99").status_code
        == 406
    )
    assert api.get("/v1/ports?description_contains=UPL").json()["ports"][0]["uuid"] == port["uuid"]
    too_long = {**body, "address": "52:54:00:00:01:03", "vendor": "v" * 33}
    assert api.post("/v1/ports", too_long).status_code == 400


def test_portgroup_fields(api: Api) -> None:
    node = api.node()
    body = {"node_uuid": node["uuid"], "physical_network": "physnet1", "category": "bond"}
    group = api.post("/v1/portgroups", body).json()
    assert (group["physical_network"], group["category"]) == ("physnet1", "bond")
    assert group["dynamic_portgroup"] is False
    old = api.get(f"/v1/portgroups/{group['uuid']}", version="1.101").json()
    assert {"physical_network", "category", "dynamic_portgroup"}.isdisjoint(old)
    assert api.post("/v1/portgroups", body, version="1.102").status_code == 406


def test_conductor_groups_filters(api: Api) -> None:
    here = api.node(conductor_group="")
    port = api.post("/v1/ports", {"address": "52:54:00:00:02:01", "node_uuid": here["uuid"]})
    assert uuids(api.get("/v1/ports?conductor_groups=other"), "ports") == set()
    response = api.get("/v1/ports?conductor_groups=other&address=52:54:00:00:02:01")
    assert response.status_code == 400
    assert port.status_code == 201


# ---------------------------------------------------- 1.90-1.104 OVN VTEP keys


def test_vtep_keys_only_from_1_90_to_1_104(api: Api) -> None:
    node = api.node()
    llc = {"port_id": "p1", "vtep-logical-switch": "ls", "vtep-physical-switch": "ps"}
    body = {"address": "52:54:00:00:03:01", "node_uuid": node["uuid"], "local_link_connection": llc}
    assert api.post("/v1/ports", body, version="1.89").status_code == 406
    assert api.post("/v1/ports", body, version="1.105").status_code == 406
    port = api.post("/v1/ports", body, version="1.104").json()
    assert port["local_link_connection"] == llc
    latest = api.get(f"/v1/ports/{port['uuid']}").json()
    assert latest["local_link_connection"] == {}
    half = {
        **body,
        "address": "52:54:00:00:03:02",
        "local_link_connection": {"vtep-logical-switch": "x"},
    }
    assert api.post("/v1/ports", half, version="1.104").status_code == 400


# ------------------------------------------------------- 1.104 instance_name


def test_instance_name(api: Api) -> None:
    node = api.node(name="inst", instance_name="web-1")
    assert node["instance_name"] == "web-1"
    assert uuids(api.get("/v1/nodes?instance_name=web-1")) == {node["uuid"]}
    assert api.get("/v1/nodes?instance_name=web-1", version="1.103").status_code == 406
    assert patch(api, "inst", "/instance_name", "").status_code == 400
    other = api.node(name="named-by-nova")
    patched = patch(api, "named-by-nova", "/instance_info", {"display_name": "vm-7"}).json()
    assert patched["instance_name"] == "vm-7"
    assert other["instance_name"] is None


# --------------------------------------------------------------- 1.91 .json


def test_json_suffix_is_dropped_below_1_91(api: Api) -> None:
    node = api.node(name="js")
    assert api.get(f"/v1/nodes/{node['uuid']}.json", version="1.90").status_code == 200
    assert api.get(f"/v1/nodes/{node['uuid']}.json", version="1.91").status_code == 404
    named = api.node(name="named.json")
    assert api.get("/v1/nodes/named.json").json()["uuid"] == named["uuid"]


# ---------------------------------------------------- 1.108, 1.110, 1.109, 1.115


def test_service_disable_ramdisk_from_1_108(api: Api) -> None:
    api.node(name="svc")
    body = {
        "target": "service",
        "service_steps": [{"interface": "deploy", "step": "x"}],
        "disable_ramdisk": True,
    }
    assert api.put("/v1/nodes/svc/states/provision", body, version="1.107").status_code == 406
    # accepted from 1.108: the node's state is what refuses it here
    response = api.put("/v1/nodes/svc/states/provision", body)
    assert response.status_code == 400
    assert "disable_ramdisk" not in fault_of(response)


def test_abort_of_wait_call_back_from_1_110(api: Api) -> None:
    node = api.node(name="dw")
    with api.db.begin() as conn:
        repo.update_node(
            conn, repo.get_node(conn, node["uuid"]).id, {"provision_state": "wait call-back"}
        )
    abort = {"target": "abort"}
    assert api.put("/v1/nodes/dw/states/provision", abort, version="1.109").status_code == 406
    assert api.put("/v1/nodes/dw/states/provision", abort).status_code == 202
    settle(api)
    assert api.get("/v1/nodes/dw").json()["provision_state"] == "deploy failed"


def test_health_is_read_only_from_1_109(api: Api) -> None:
    node = api.node(name="h")
    assert node["health"] is None
    assert "health" not in api.get("/v1/nodes/h", version="1.108").json()
    assert patch(api, "h", "/health", "OK").status_code == 400


def test_history_details_carry_states_from_1_115(api: Api) -> None:
    api.node(name="hist")
    assert api.put("/v1/nodes/hist/states/provision", {"target": "manage"}).status_code == 202
    settle(api)
    events = api.get("/v1/nodes/hist/history?detail=true").json()["history"]
    assert events
    last = events[-1]
    assert {"state", "target_provision_state", "duration_seconds", "project"} <= set(last)
    assert isinstance(last["duration_seconds"], int)
    old = api.get("/v1/nodes/hist/history?detail=true", version="1.114").json()["history"][-1]
    assert {"state", "target_provision_state", "duration_seconds"}.isdisjoint(old)
    assert "project" in old
    older = api.get("/v1/nodes/hist/history?detail=true", version="1.112").json()["history"][-1]
    assert "project" not in older


# ------------------------------------------------ 1.112 runbook traits, description

STEP = {"interface": "management", "step": "reset_bmc", "order": 1}


def test_runbook_description_traits_and_names(api: Api) -> None:
    body = {"name": "erase-fast", "description": "quick", "steps": [STEP]}
    assert api.post("/v1/runbooks", body, version="1.111").status_code == 406
    legacy = {"name": "erase-fast", "steps": [STEP]}
    assert api.post("/v1/runbooks", legacy, version="1.111").status_code == 400
    made = api.post("/v1/runbooks", body).json()
    assert (made["description"], made["traits"]) == ("quick", [])
    old = api.get("/v1/runbooks/erase-fast", version="1.111").json()
    assert {"description", "traits"}.isdisjoint(old)
    assert api.get("/v1/runbooks/erase-fast/traits", version="1.111").status_code == 404
    url = "/v1/runbooks/erase-fast/traits"
    assert api.put(url, {"traits": ["CUSTOM_A", "CUSTOM_B"]}).status_code == 204
    added = api.put(url + "/CUSTOM_C")
    assert added.status_code == 204
    assert added.headers["Location"].endswith(url + "/CUSTOM_C")
    assert api.get(url).json() == {"traits": ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C"]}
    assert api.delete(url + "/CUSTOM_A").status_code == 204
    assert api.delete(url + "/CUSTOM_MISSING").status_code == 204
    assert api.get("/v1/runbooks/erase-fast").json()["traits"] == ["CUSTOM_B", "CUSTOM_C"]
    assert api.put(url, {"traits": ["not a trait"]}).status_code == 400
    assert api.delete(url).status_code == 204
    assert api.get(url).json() == {"traits": []}


def test_a_runbook_runs_on_a_node_sharing_a_trait(api: Api) -> None:
    api.post("/v1/runbooks", {"name": "reset", "steps": [STEP]})
    api.node(name="rb")
    assert api.put("/v1/nodes/rb/states/provision", {"target": "manage"}).status_code == 202
    settle(api)
    clean = {"target": "clean", "runbook": "reset"}
    response = api.put("/v1/nodes/rb/states/provision", clean)
    assert response.status_code == 400
    assert "has no traits configured" in fault_of(response)
    assert api.put("/v1/runbooks/reset/traits/CUSTOM_OK").status_code == 204
    response = api.put("/v1/nodes/rb/states/provision", clean)
    assert response.status_code == 400
    assert "CUSTOM_OK" in fault_of(response)
    assert api.put("/v1/nodes/rb/traits/CUSTOM_OK").status_code == 204
    assert api.put("/v1/nodes/rb/states/provision", clean).status_code == 202
    settle(api)
    assert api.get("/v1/nodes/rb").json()["provision_state"] == "manageable"


def test_runbook_traits_need_update_rights(secured: Api) -> None:
    admin = secured.as_("admin")
    assert admin.post("/v1/runbooks", {"name": "sys", "steps": [STEP]}).status_code == 201
    reader = secured.as_("reader")
    assert reader.get("/v1/runbooks/sys/traits").status_code == 200
    assert reader.put("/v1/runbooks/sys/traits/CUSTOM_X").status_code == 403


def test_deploy_templates_have_a_description(api: Api) -> None:
    step = {"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 10}
    body = {"name": "CUSTOM_TPL", "description": "BIOS tuned", "steps": [step]}
    made = api.post("/v1/deploy_templates", body)
    assert made.status_code == 201, made.text
    assert made.json()["description"] == "BIOS tuned"
    changed = api.patch(
        "/v1/deploy_templates/CUSTOM_TPL",
        [{"op": "replace", "path": "/description", "value": "x" * 256}],
    )
    assert changed.status_code == 400


# ------------------------------------------- a wrong method on a newer sub-resource


def test_any_method_on_a_sub_resource_newer_than_the_request_is_404(api: Api) -> None:
    """As Ironic (ironic-tempest-plugin's vmedia microversion test): a PUT of
    ``/v1/nodes/{node}/vmedia`` is 404 below 1.89, where the resource does not exist,
    and 405 from 1.89, where it does but takes no PUT; so for the children of 1.83."""
    node = api.node(name="vm")["uuid"]
    body = {"device_type": "cdrom", "image_url": "http://image"}
    for version, status in (("1.79", 404), ("1.88", 404), ("1.89", 405)):
        answer = api.put(f"/v1/nodes/{node}/vmedia", body, version=version)
        assert answer.status_code == status, (version, answer.text)
        assert fault_of(answer)
    assert api.put(f"/v1/nodes/{node}/children", {}, version="1.82").status_code == 404
    assert api.put(f"/v1/nodes/{node}/children", {}, version="1.83").status_code == 405
    # an endpoint every version has keeps its 405
    assert api.put("/v1/nodes", {}, version="1.1").status_code == 405
