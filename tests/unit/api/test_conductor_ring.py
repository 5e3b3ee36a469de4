"""Which conductor serves a node: the hash ring over the live conductors, and the
clear error for a node no live conductor serves (Ironic's NoValidHost, 400)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from api_harness import Api, fault_of

from metalcast.db import repository as repo
from metalcast.db import tables as t

POWER_ON = {"target": "power on"}


def register(api: Api, hostname: str, group: str, *, alive: bool = True) -> None:
    with api.db.begin() as conn:
        repo.register_conductor(
            conn, hostname=hostname, conductor_group=group, hardware_types=["fake-hardware"]
        )
        if not alive:  # heard from long ago: dead
            conn.execute(
                sa.update(t.conductors)
                .where(t.conductors.c.hostname == hostname)
                .values(updated_at=repo.utcnow() - timedelta(hours=1))
            )


def test_a_node_of_a_group_without_a_live_conductor_cannot_be_created(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "conductor_group": "site-b"})
    assert response.status_code == 400
    message = fault_of(response)
    assert message.startswith("No valid host was found.")
    assert 'conductor group "site-b"' in message
    assert "conductor.conductor_group='site-b'" in message
    assert api.get("/v1/nodes").json()["nodes"] == []


def test_the_conductor_field_names_the_ring_owner(api: Api) -> None:
    here = api.node(name="here")
    assert api.get(f"/v1/nodes/{here['uuid']}").json()["conductor"] == "cond-1"
    register(api, "cond-b", "site-b")
    there = api.node(name="there", conductor_group="site-b")
    assert api.get(f"/v1/nodes/{there['uuid']}").json()["conductor"] == "cond-b"
    listed = api.get("/v1/nodes?fields=name,conductor").json()["nodes"]
    assert {n["name"]: n["conductor"] for n in listed} == {"here": "cond-1", "there": "cond-b"}
    assert [n["name"] for n in api.get("/v1/nodes?conductor=cond-b").json()["nodes"]] == ["there"]


def test_a_node_another_conductor_serves_is_not_worked_on_here(api: Api) -> None:
    register(api, "cond-b", "site-b")
    node = api.node(conductor_group="site-b")
    response = api.put(f"/v1/nodes/{node['uuid']}/states/power", POWER_ON)
    assert response.status_code == 503
    assert "served by conductor cond-b" in fault_of(response)
    assert api.get(f"/v1/nodes/{node['uuid']}").json()["reservation"] is None


def test_an_orphaned_node_is_refused_every_action_but_can_be_moved_back(api: Api) -> None:
    register(api, "cond-b", "site-b")
    node = api.node(conductor_group="site-b")
    uuid = node["uuid"]
    register(api, "cond-b", "site-b", alive=False)  # its conductor died

    assert api.get(f"/v1/nodes/{uuid}").json()["conductor"] is None
    for method, path, body in [
        ("PUT", f"/v1/nodes/{uuid}/states/power", POWER_ON),
        ("PUT", f"/v1/nodes/{uuid}/states/provision", {"target": "manage"}),
        ("GET", f"/v1/nodes/{uuid}/validate", None),
    ]:
        response = api.request(method, path, body)
        assert response.status_code == 400, (path, response.text)
        assert 'no live conductor is in conductor group "site-b"' in fault_of(response)
    shown = api.get(f"/v1/nodes/{uuid}").json()
    assert (shown["reservation"], shown["provision_state"]) == (None, "enroll")

    # a node cannot be moved into a group nobody serves either
    other = api.node()
    patch = [{"op": "replace", "path": "/conductor_group", "value": "site-c"}]
    response = api.patch(f"/v1/nodes/{other['uuid']}", patch)
    assert response.status_code == 400
    assert 'conductor group "site-c"' in fault_of(response)

    # but back to a group with a conductor, and then it works
    patch = [{"op": "replace", "path": "/conductor_group", "value": ""}]
    assert api.patch(f"/v1/nodes/{uuid}", patch).status_code == 200
    assert api.put(f"/v1/nodes/{uuid}/states/power", POWER_ON).status_code == 202


def test_an_orphaned_node_can_be_deleted(api: Api) -> None:
    register(api, "cond-b", "site-b")
    node = api.node(conductor_group="site-b")
    register(api, "cond-b", "site-b", alive=False)
    assert api.delete(f"/v1/nodes/{node['uuid']}").status_code == 204
