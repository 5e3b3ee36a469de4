"""GET /v1/events as a JSON page (the stream's fallback): what the log holds after
node changes made through the API, filtered by node and kind, and only for nodes the
caller may see.  The server-sent stream itself is tested against a real server
(tests/integration/server/test_event_stream.py)."""

from __future__ import annotations

from typing import Any

from api_harness import Api, fault_of

ADMIN = {"X-Roles": "admin", "OpenStack-System-Scope": "all"}


def _events(api: Api, query: str = "") -> list[dict[str, Any]]:
    response = api.get(f"/v1/events{query}")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_creation_maintenance_and_deletion_are_events_with_old_and_new_values(api: Api) -> None:
    node = api.node(name="n1")
    assert api.put(f"/v1/nodes/{node['uuid']}/maintenance", {"reason": "fan"}).status_code == 202
    assert api.delete(f"/v1/nodes/{node['uuid']}").status_code == 204

    created, maintenance, deleted = _events(api)
    assert created["type"] == "created" and created["node_uuid"] == node["uuid"]
    assert created["changes"]["provision_state"] == {"old": None, "new": "enroll"}
    assert created["kinds"] == ["created"]
    assert maintenance["changes"] == {
        "maintenance": {"old": False, "new": True},
        "maintenance_reason": {"old": None, "new": "fan"},
    }
    assert maintenance["request_id"].startswith("req-")
    assert deleted["type"] == "deleted" and deleted["kinds"] == ["deleted"]
    assert created["id"] < maintenance["id"] < deleted["id"]


def test_a_provision_change_made_by_the_conductor_is_one_event(api: Api) -> None:
    node = api.node()
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", {"target": "manage"})
    assert response.status_code == 202, response.text
    moves = []
    for _ in range(500):  # the fake hardware settles in the background
        moves = _events(api, f"?node={node['uuid']}&kind=provision_state")
        if any(e["changes"]["provision_state"]["new"] == "manageable" for e in moves):
            break
    states = [e["changes"]["provision_state"] for e in moves]
    assert states == [
        {"old": "enroll", "new": "verifying"},
        {"old": "verifying", "new": "manageable"},
    ]


def test_since_pages_on_and_kind_and_node_filter(api: Api) -> None:
    first, second = api.node(), api.node()
    api.put(f"/v1/nodes/{second['uuid']}/maintenance", {})
    everything = _events(api)
    assert len(everything) == 3
    after_first = _events(api, f"?since={everything[0]['id']}")
    assert [e["id"] for e in after_first] == [e["id"] for e in everything[1:]]
    only_second = _events(api, f"?node={second['name'] or second['uuid']}")
    assert {e["node_uuid"] for e in only_second} == {second["uuid"]}
    assert [e["type"] for e in _events(api, "?kind=maintenance")] == ["updated"]
    page = api.get("/v1/events?limit=1").json()
    assert len(page["events"]) == 1 and page["last_id"] == everything[0]["id"]
    assert first["uuid"] in {e["node_uuid"] for e in everything}


def test_bad_filters_say_what_to_fix(api: Api) -> None:
    response = api.get("/v1/events?kind=provision_state,colour")
    assert response.status_code == 400
    assert "Unknown event kind(s): colour" in fault_of(response)
    assert "provision_state" in fault_of(response)
    response = api.get("/v1/events?since=-1")
    assert response.status_code == 400
    assert "since must be an event id" in fault_of(response)
    assert api.get("/v1/events?node=nowhere").status_code == 404
    assert api.get("/v1/events?since=%C2%B2").status_code == 400  # a superscript 2
    many = ",".join(f"n{i}" for i in range(101))
    response = api.get(f"/v1/events?node={many}")
    assert response.status_code == 400 and "at most 100" in fault_of(response)
    assert api.get("/v1/events?colour=red").status_code == 400


def test_a_tenant_sees_only_the_events_of_its_own_and_leased_nodes(secured: Api) -> None:
    admin = secured.as_("admin")
    mine = secured.node(owner="p1")
    leased = secured.node(owner="p3", lessee="p1")
    theirs = secured.node(owner="p2")
    admin.patch(f"/v1/nodes/{theirs['uuid']}", [{"op": "add", "path": "/extra/x", "value": 1}])
    admin.put(f"/v1/nodes/{theirs['uuid']}/maintenance", {"reason": "secret plans"})

    p1 = secured.as_("reader", "p1")
    seen = {e["node_uuid"] for e in _events(p1)}
    assert seen == {mine["uuid"], leased["uuid"]}
    assert {e["node_uuid"] for e in _events(secured.as_("reader", "p2"))} == {theirs["uuid"]}
    assert len({e["node_uuid"] for e in _events(admin)}) == 3
    # naming another tenant's node is as if it did not exist
    response = p1.get(f"/v1/events?node={theirs['uuid']}")
    assert response.status_code == 404, response.text


def test_moving_a_node_to_another_owner_hides_its_later_events(secured: Api) -> None:
    admin = secured.as_("admin")
    node = secured.node(owner="p1")
    patch = [{"op": "replace", "path": "/owner", "value": "p2"}]
    assert admin.patch(f"/v1/nodes/{node['uuid']}", patch).status_code == 200
    admin.put(f"/v1/nodes/{node['uuid']}/maintenance", {})
    p1_sees = _events(secured.as_("reader", "p1"))
    assert [e["type"] for e in p1_sees] == ["created"]
    p2_sees = _events(secured.as_("reader", "p2"))
    assert p2_sees[0]["changes"]["owner"] == {"old": "p1", "new": "p2"}
    assert p2_sees[1]["changes"]["maintenance"]["new"] is True


def test_without_a_role_there_is_no_event_listing(secured: Api) -> None:
    headers = {"X-User-Id": "x", "X-Project-Id": "p1", "X-Roles": ""}
    assert secured.get("/v1/events", headers=headers).status_code == 403


def test_webhook_bodies_of_the_wrong_shape_are_400(api: Api) -> None:
    base = {"url": "http://127.0.0.1:9/", "secret": "s" * 16}
    for extra in ({"kinds": [{}]}, {"kinds": "maintenance"}, {"nodes": ["not-a-uuid"]}):
        response = api.post("/v1/webhooks", {**base, **extra})
        assert response.status_code == 400, (extra, response.text)
    created = api.post("/v1/webhooks", {**base, "kinds": ["deleted"]})
    assert created.status_code == 201 and "secret" not in created.json()
    assert api.get("/v1/webhooks/nope").status_code == 400
    missing = "11111111-2222-4333-8444-555555555555"
    assert api.get(f"/v1/webhooks/{missing}/deliveries").status_code == 404
