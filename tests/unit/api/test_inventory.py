"""/v1/chassis, /v1/drivers and /v1/conductors."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from api_harness import Api, fault_of

from metalcast.db import repository as repo
from metalcast.db import tables as t


def test_chassis_crud(api: Api) -> None:
    response = api.post("/v1/chassis", {"description": "rack 1", "extra": {"row": 3}})
    assert response.status_code == 201
    chassis = response.json()
    assert chassis["nodes"][0]["href"].endswith(f"/v1/chassis/{chassis['uuid']}/nodes")
    listed = api.get("/v1/chassis").json()["chassis"]
    assert set(listed[0]) == {"uuid", "description", "links"}
    assert api.get("/v1/chassis/detail").json()["chassis"][0]["extra"] == {"row": 3}
    patched = api.patch(
        f"/v1/chassis/{chassis['uuid']}",
        [{"op": "replace", "path": "/description", "value": "rack 2"}],
    )
    assert patched.json()["description"] == "rack 2"
    assert api.post("/v1/chassis", {"colour": "red"}).status_code == 400
    assert api.delete(f"/v1/chassis/{chassis['uuid']}").status_code == 204
    assert api.get(f"/v1/chassis/{chassis['uuid']}").status_code == 404


def test_chassis_with_nodes_cannot_be_deleted(api: Api) -> None:
    chassis = api.post("/v1/chassis", {}).json()
    api.node(chassis_uuid=chassis["uuid"])
    response = api.delete(f"/v1/chassis/{chassis['uuid']}")
    assert response.status_code == 400
    assert "contains nodes" in fault_of(response)


def test_drivers(api: Api) -> None:
    drivers = api.get("/v1/drivers").json()["drivers"]
    fake = next(d for d in drivers if d["name"] == "fake-hardware")
    assert fake["hosts"] == ["cond-1"]
    assert fake["type"] == "dynamic"
    assert "default_power_interface" not in fake
    detailed = next(
        d
        for d in api.get("/v1/drivers?detail=True").json()["drivers"]
        if d["name"] == "fake-hardware"
    )
    assert detailed["default_power_interface"] == "fake"
    assert "fake" in detailed["enabled_power_interfaces"]
    assert api.get("/v1/drivers?type=classic").json() == {"drivers": []}
    assert api.get("/v1/drivers?type=weird").status_code == 400
    one = api.get("/v1/drivers/fake-hardware").json()
    assert one["default_deploy_interface"] == "fake"
    assert api.get("/v1/drivers/fake-hardware", version="1.29").json().get("type") is None
    properties = api.get("/v1/drivers/fake-hardware/properties").json()
    assert isinstance(properties, dict) and properties
    assert api.get("/v1/drivers/nope").status_code == 404


def test_conductors(api: Api) -> None:
    listed = api.get("/v1/conductors").json()["conductors"]
    assert listed == [
        {
            "hostname": "cond-1",
            "conductor_group": "",
            "alive": True,
            "links": [
                {"href": "http://testserver/v1/conductors/cond-1", "rel": "self"},
                {"href": "http://testserver/conductors/cond-1", "rel": "bookmark"},
            ],
        }
    ]
    one = api.get("/v1/conductors/cond-1").json()
    assert "fake-hardware" in one["drivers"]
    assert one["created_at"].endswith("+00:00")
    assert api.get("/v1/conductors?detail=true").json()["conductors"][0] == one
    assert api.get("/v1/conductors/nope").status_code == 404


def test_silent_conductor_is_dead_and_serves_no_node(api: Api) -> None:
    api.node(name="orphan")
    stale = repo.utcnow() - timedelta(hours=1)
    with api.db.begin() as conn:
        conn.execute(sa.update(t.conductors).values(updated_at=stale))
    assert api.get("/v1/conductors/cond-1").json()["alive"] is False
    assert api.get("/v1/nodes/orphan").json()["conductor"] is None
