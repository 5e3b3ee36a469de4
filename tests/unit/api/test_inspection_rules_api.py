"""/v1/inspection_rules (Ironic 1.96): CRUD, Ironic's validation with 400s that say
what to fix, secrets never shown, admins only; answered at every version, as the
features above metalcast's maximum version are."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

from metalcast.db import inspection_rules as repo

TRAIT = {"op": "add-trait", "args": {"name": "CUSTOM_LAB"}}
CONDITION = {
    "op": "eq",
    "args": {"values": ["{inventory[system_vendor][manufacturer]}", "metalcast"]},
}


def create(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/inspection_rules", {"actions": [TRAIT], **body})
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    assert response.headers["Location"].endswith(f"/v1/inspection_rules/{doc['uuid']}")
    return doc


def test_a_rule_round_trips(api: Api) -> None:
    made = create(api, description="lab machines", priority=10, conditions=[CONDITION])
    assert {k: made[k] for k in ("description", "priority", "phase", "sensitive", "built_in")} == {
        "description": "lab machines",
        "priority": 10,
        "phase": "main",
        "sensitive": False,
        "built_in": False,
    }
    assert (made["conditions"], made["actions"]) == ([CONDITION], [TRAIT])
    shown = api.get(f"/v1/inspection_rules/{made['uuid']}").json()
    assert shown == made
    listed = api.get("/v1/inspection_rules").json()["inspection_rules"]
    assert [set(r) for r in listed] == [{"uuid", "description", "links"}]
    detailed = api.get("/v1/inspection_rules?detail=True").json()["inspection_rules"]
    assert detailed[0]["actions"] == [TRAIT]
    only = api.get(f"/v1/inspection_rules/{made['uuid']}?fields=uuid,priority").json()
    assert set(only) == {"uuid", "priority", "links"}


def test_a_priority_may_be_a_digit_string(api: Api) -> None:
    assert create(api, priority="20")["priority"] == 20
    refused = api.post("/v1/inspection_rules", {"actions": [TRAIT], "priority": "high"})
    assert refused.status_code == 400


def test_defaults_and_a_given_uuid(api: Api) -> None:
    uuid = "5b9c1c44-43d5-4c5f-8a0b-1df3c3c1a2b3"
    made = create(api, uuid=uuid.upper())
    assert made["uuid"] == uuid
    assert (made["priority"], made["phase"], made["conditions"]) == (0, "main", [])
    again = api.post("/v1/inspection_rules", {"uuid": uuid, "actions": [TRAIT]})
    assert again.status_code == 409
    assert uuid in fault_of(again)


def test_patch_and_delete(api: Api) -> None:
    made = create(api)
    path = f"/v1/inspection_rules/{made['uuid']}"
    patch = [
        {"op": "replace", "path": "/priority", "value": 99},
        {"op": "add", "path": "/conditions/0", "value": CONDITION},
        {"op": "replace", "path": "/actions/0/args/name", "value": "CUSTOM_OTHER"},
    ]
    patched = api.patch(path, patch)
    assert patched.status_code == 200, patched.text
    doc = patched.json()
    assert (doc["priority"], doc["conditions"], doc["actions"][0]["args"]["name"]) == (
        99,
        [CONDITION],
        "CUSTOM_OTHER",
    )
    bad = api.patch(path, [{"op": "replace", "path": "/actions/0/op", "value": "explode"}])
    assert bad.status_code == 400
    assert "actions[0].op 'explode' is not an action" in fault_of(bad)
    assert api.get(path).json()["actions"][0]["op"] == "add-trait"  # nothing half-written
    internal = api.patch(path, [{"op": "replace", "path": "/built_in", "value": True}])
    assert internal.status_code == 400
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_delete_all(api: Api) -> None:
    for _ in range(3):
        create(api)
    assert api.delete("/v1/inspection_rules").status_code == 204
    assert api.get("/v1/inspection_rules").json()["inspection_rules"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'actions' is a required property"),
        ({"actions": []}, "actions must be a list of 1 to 100 actions"),
        ({"actions": [{"op": "explode", "args": {}}]}, "actions[0].op 'explode' is not an action"),
        ({"actions": [{"op": "add-trait"}]}, "actions[0] needs both op and args"),
        ({"actions": [{"op": "add-trait", "args": {}}]}, "missing required argument(s): name"),
        (
            {"actions": [{"op": "add-trait", "args": {"name": "X", "colour": "red"}}]},
            "unexpected argument(s): colour",
        ),
        ({"actions": [{"op": "add-trait", "args": "X"}]}, "args must be a list or an object"),
        (
            {"actions": [{"op": "set-attribute", "args": ["/provision_state", "active"]}]},
            "a rule may change only these node fields",
        ),
        (
            {"actions": [{"op": "set-port-attribute", "args": ["p", "/address", "x"]}]},
            "a rule may change only these port fields",
        ),
        ({"actions": [{"op": "log", "args": ["hi", "loud"]}]}, "level must be one of"),
        ({"actions": [TRAIT], "conditions": [{"op": "eq?", "args": []}]}, "is not a condition"),
        ({"actions": [TRAIT], "conditions": [{"op": "!!eq", "args": [[1]]}]}, "one '!'"),
        (
            {"actions": [TRAIT], "conditions": [{"op": "matches", "args": ["x", "("]}]},
            "is not a regular expression",
        ),
        (
            {"actions": [TRAIT], "conditions": [{"op": "in-net", "args": ["x", "10.0.0.0/33"]}]},
            "is not a network",
        ),
        (
            {"actions": [TRAIT], "conditions": [{**CONDITION, "multiple": "most"}]},
            "multiple must be one of",
        ),
        ({"actions": [TRAIT], "conditions": [{**CONDITION, "field": "x"}]}, "unknown key(s) field"),
        ({"actions": [TRAIT], "priority": 10000}, "priority 10000 is out of range"),
        ({"actions": [TRAIT], "priority": -1}, "priority -1 is out of range"),
        ({"actions": [TRAIT], "phase": "later"}, "phase 'later' is not one of: main"),
        ({"actions": [TRAIT], "built_in": True}, "Unknown field(s)"),
        ({"actions": [TRAIT], "description": "x" * 256}, "longer than 255"),
    ],
)
def test_invalid_rules_are_refused(api: Api, body: dict[str, Any], message: str) -> None:
    response = api.post("/v1/inspection_rules", body)
    assert response.status_code == 400, response.text
    assert message in fault_of(response)
    assert api.get("/v1/inspection_rules").json() == {"inspection_rules": []}


def test_secrets_in_rules_are_never_shown(api: Api) -> None:
    password = {
        "op": "set-attribute",
        "args": {"path": "/driver_info/ipmi_password", "value": "s3cret"},
    }
    listed = {"op": "set-attribute", "args": ["driver_info.redfish_password", "s3cret"]}
    made = create(api, actions=[password, listed, TRAIT])
    assert made["actions"][0]["args"] == {"path": "/driver_info/ipmi_password", "value": "******"}
    assert made["actions"][1]["args"] == ["driver_info.redfish_password", "******"]
    assert made["actions"][2] == TRAIT
    hidden = create(api, sensitive=True, conditions=[CONDITION])
    assert (hidden["conditions"], hidden["actions"]) == (None, None)
    text = api.get("/v1/inspection_rules?detail=True").text
    assert "s3cret" not in text
    # a patch of another action keeps the stored secret
    path = f"/v1/inspection_rules/{made['uuid']}"
    other = [{"op": "replace", "path": "/actions/2/args/name", "value": "CUSTOM_X"}]
    assert api.patch(path, other).status_code == 200
    with api.db.read() as conn:
        stored = repo.get_inspection_rule(conn, made["uuid"])
    assert stored.actions[0]["args"]["value"] == "s3cret"


def test_a_masked_secret_is_not_written_back(api: Api) -> None:
    nested = {"op": "set-attribute", "args": ["/driver_info", {"ipmi_password": "s3cret"}]}
    made = create(api, actions=[nested, TRAIT])
    assert made["actions"][0]["args"][1] == {"ipmi_password": "******"}
    path = f"/v1/inspection_rules/{made['uuid']}"
    echoed = api.patch(
        path, [{"op": "replace", "path": "/actions/1/args/name", "value": "CUSTOM_X"}]
    )
    assert echoed.status_code == 400
    assert "holds ******, a masked secret" in fault_of(echoed)
    with api.db.read() as conn:
        stored = repo.get_inspection_rule(conn, made["uuid"])
    assert stored.actions[0]["args"][1] == {"ipmi_password": "s3cret"}


def test_rules_are_served_from_1_96_and_not_below(api: Api) -> None:
    """Inspection rules are Ironic's 1.96: an older request meets them as Ironic's
    would a newer endpoint."""
    body = {"actions": [TRAIT]}
    assert api.get("/v1/inspection_rules", version="1.96").status_code == 200
    assert api.post("/v1/inspection_rules", body, version="1.96").status_code == 201
    assert api.get("/v1/inspection_rules", version="1.95").status_code == 404
    assert api.post("/v1/inspection_rules", body, version="1.1").status_code in (404, 405)


def test_rules_are_for_system_admins(secured: Api) -> None:
    made = create(secured.as_("admin"))
    for caller in (secured.as_("member", "p1"), secured.as_("admin", "p1")):
        assert caller.get("/v1/inspection_rules").status_code == 403
        assert caller.post("/v1/inspection_rules", {"actions": [TRAIT]}).status_code == 403
        assert caller.delete("/v1/inspection_rules").status_code == 403
        assert caller.delete(f"/v1/inspection_rules/{made['uuid']}").status_code == 403
    assert secured.as_("admin").get("/v1/inspection_rules").json()["inspection_rules"]
