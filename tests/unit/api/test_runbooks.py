"""/v1/runbooks (API 1.92) and running one on a node: Ironic's fields, validation,
owner and ``public`` rules, and the provision verbs that take a runbook."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

BIOS = {
    "interface": "bios",
    "step": "apply_configuration",
    "args": {"settings": [{"name": "LogicalProc", "value": "Enabled"}]},
    "order": 2,
}
RESET = {"interface": "management", "step": "reset_bmc", "order": 1}


def runbook(api: Api, name: str = "CUSTOM_TUNE", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "steps": [BIOS, RESET], **fields}
    response = api.post("/v1/runbooks", body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    assert response.headers["Location"].endswith(f"/v1/runbooks/{made['uuid']}")
    return made


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


def provision(api: Api, node: str, body: dict[str, Any]) -> Any:
    # 1.111: the runbook runs on a node with a trait equal to its name (from 1.112 on
    # a node sharing one of its traits: test_api_1_115)
    response = api.put(f"/v1/nodes/{node}/states/provision", body, version="1.111")
    settle(api)
    return response


# ------------------------------------------------------------------------- the API


def test_a_runbook_round_trips(api: Api) -> None:
    made = runbook(api, extra={"team": "ops"})
    assert set(made) == {
        "uuid",
        "name",
        "steps",
        "disable_ramdisk",
        "public",
        "owner",
        "extra",
        "description",
        "traits",
        "created_at",
        "updated_at",
        "links",
    }
    assert made["steps"] == [BIOS, {**RESET, "args": {}}]
    assert (made["public"], made["owner"], made["disable_ramdisk"]) == (False, None, False)
    assert api.get("/v1/runbooks/CUSTOM_TUNE").json() == made
    assert api.get(f"/v1/runbooks/{made['uuid']}").json() == made
    listed = api.get("/v1/runbooks").json()["runbooks"]
    assert [set(r) for r in listed] == [{"uuid", "name", "links"}]
    assert api.get("/v1/runbooks?detail=True").json()["runbooks"] == [made]
    fields = api.get("/v1/runbooks/CUSTOM_TUNE?fields=name,public").json()
    assert set(fields) == {"name", "public", "links"}
    patch = [
        {"op": "replace", "path": "/name", "value": "CUSTOM_TUNED"},
        {"op": "replace", "path": "/steps/0/order", "value": "7"},
        {"op": "replace", "path": "/disable_ramdisk", "value": True},
    ]
    patched = api.patch(f"/v1/runbooks/{made['uuid']}", patch)
    assert patched.status_code == 200, patched.text
    assert patched.json()["steps"][0]["order"] == 7
    assert (patched.json()["name"], patched.json()["disable_ramdisk"]) == ("CUSTOM_TUNED", True)
    assert patched.json()["updated_at"] is not None
    assert api.delete("/v1/runbooks/CUSTOM_TUNED").status_code == 204
    assert api.get("/v1/runbooks/CUSTOM_TUNED").status_code == 404


def test_runbooks_answer_from_1_92_and_not_below(api: Api) -> None:
    """Runbooks are Ironic's 1.92: served from it, not below (404), as
    ironic-tempest-plugin's old-API tests expect (docs/api-compat.md)."""
    runbook(api)
    assert api.get("/v1/runbooks", version="1.92").status_code == 200
    assert api.get("/v1/runbooks", version="1.91").status_code == 404
    assert api.get("/v1/runbooks", version="1.1").status_code == 404


def test_secrets_in_step_arguments_are_masked(api: Api) -> None:
    step = {**RESET, "args": {"admin_password": "s3cret"}}
    made = runbook(api, steps=[step])
    assert made["steps"][0]["args"] == {"admin_password": "******"}
    assert "s3cret" not in api.get("/v1/runbooks?detail=True").text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # before 1.112 (from it, any logical name: test_api_1_115)
        ({"name": "lower_case", "steps": [RESET]}, "a runbook is named like a trait"),
        ({"name": "CUSTOM_A"}, "'steps' is a required property"),
        ({"name": "CUSTOM_A", "steps": []}, "a non-empty list is required"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "interface": "inspect"}]}, "steps[0].interface"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "order": -1}]}, "steps[0].order"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "order": "first"}]}, "steps[0].order"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "step": ""}]}, "steps[0].step"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "args": []}]}, "steps[0].args"),
        ({"name": "CUSTOM_A", "steps": [{"interface": "bios"}]}, "missing: order, step"),
        ({"name": "CUSTOM_A", "steps": [{**RESET, "priority": 1}]}, "unknown: priority"),
        ({"name": "CUSTOM_A", "steps": [RESET, RESET]}, "Duplicates: interface: management"),
        ({"name": "CUSTOM_A", "steps": [RESET], "public": "yes"}, "public"),
        ({"name": "CUSTOM_A", "steps": [RESET], "public": True, "owner": "p1"}, "public runbook"),
        ({"name": "CUSTOM_A", "steps": [RESET], "traits": []}, "Unknown field(s)"),
    ],
)
def test_invalid_runbooks_are_refused(api: Api, body: dict[str, Any], message: str) -> None:
    response = api.post("/v1/runbooks", body, version="1.111")
    assert response.status_code == 400
    assert message in fault_of(response)
    assert api.get("/v1/runbooks").json() == {"runbooks": []}


def test_a_bad_patch_changes_nothing(api: Api) -> None:
    made = runbook(api)
    for patch in (
        [{"op": "replace", "path": "/steps", "value": [RESET, RESET]}],
        [{"op": "remove", "path": "/name"}],
        [{"op": "replace", "path": "/uuid", "value": made["uuid"]}],
        [
            {"op": "add", "path": "/owner", "value": "p1"},
            {"op": "add", "path": "/public", "value": True},
        ],
    ):
        response = api.patch("/v1/runbooks/CUSTOM_TUNE", patch)
        assert response.status_code == 400, patch
    assert api.get("/v1/runbooks/CUSTOM_TUNE").json() == made


def test_runbook_names_are_unique(api: Api) -> None:
    runbook(api)
    again = api.post("/v1/runbooks", {"name": "CUSTOM_TUNE", "steps": [RESET]})
    assert again.status_code == 409
    assert fault_of(again) == "A runbook with name CUSTOM_TUNE already exists."
    other = runbook(api, "CUSTOM_OTHER")
    taken = api.patch(
        f"/v1/runbooks/{other['uuid']}",
        [{"op": "replace", "path": "/name", "value": "CUSTOM_TUNE"}],
    )
    assert taken.status_code == 409


# -------------------------------------------------------------------- owner, public


def test_a_project_manager_owns_what_it_creates(secured: Api) -> None:
    manager = secured.as_("manager", "p1")
    made = runbook(manager)
    assert (made["owner"], made["public"]) == ("p1", False)
    refused = manager.post("/v1/runbooks", {"name": "CUSTOM_B", "steps": [RESET], "owner": "p2"})
    assert refused.status_code == 400
    assert "owner other than your own project" in fault_of(refused)
    public = manager.post("/v1/runbooks", {"name": "CUSTOM_B", "steps": [RESET], "public": True})
    assert public.status_code == 400
    assert "Cannot create a public runbook" in fault_of(public)
    assert (
        secured.as_("member", "p1")
        .post("/v1/runbooks", {"name": "CUSTOM_B", "steps": [RESET]})
        .status_code
        == 403
    )


def test_a_caller_scoped_to_nothing_creates_no_runbook(secured: Api) -> None:
    unscoped = secured.as_("manager")
    unscoped.headers = {"X-Roles": "manager", "X-User-Id": "someone"}
    response = unscoped.post("/v1/runbooks", {"name": "CUSTOM_X", "steps": [RESET]})
    assert response.status_code == 403
    assert "a runbook needs a project" in fault_of(response)


def test_projects_see_their_own_and_public_runbooks(secured: Api) -> None:
    admin = secured.as_("admin")
    runbook(secured.as_("manager", "p1"), "CUSTOM_P1")
    runbook(secured.as_("manager", "p2"), "CUSTOM_P2")
    runbook(admin, "CUSTOM_SYSTEM")
    runbook(admin, "CUSTOM_PUBLIC", public=True)
    names = {r["name"] for r in admin.get("/v1/runbooks").json()["runbooks"]}
    assert names == {"CUSTOM_P1", "CUSTOM_P2", "CUSTOM_SYSTEM", "CUSTOM_PUBLIC"}
    reader = secured.as_("reader", "p1")
    names = {r["name"] for r in reader.get("/v1/runbooks").json()["runbooks"]}
    assert names == {"CUSTOM_P1", "CUSTOM_PUBLIC"}
    assert reader.get("/v1/runbooks/CUSTOM_PUBLIC").status_code == 200
    assert reader.get("/v1/runbooks/CUSTOM_P2").status_code == 404
    assert reader.get("/v1/runbooks/CUSTOM_SYSTEM").status_code == 404
    # seen, but not theirs to change: 403
    manager = secured.as_("manager", "p1")
    assert manager.delete("/v1/runbooks/CUSTOM_PUBLIC").status_code == 403
    assert manager.delete("/v1/runbooks/CUSTOM_P2").status_code == 404
    assert manager.delete("/v1/runbooks/CUSTOM_P1").status_code == 204


def test_only_the_system_makes_a_runbook_public_or_moves_it(secured: Api) -> None:
    manager = secured.as_("manager", "p1")
    runbook(manager, "CUSTOM_P1")
    public = [{"op": "replace", "path": "/public", "value": True}]
    owner = [{"op": "replace", "path": "/owner", "value": "p2"}]
    extra = [{"op": "add", "path": "/extra/a", "value": 1}]
    assert manager.patch("/v1/runbooks/CUSTOM_P1", public).status_code == 403
    assert manager.patch("/v1/runbooks/CUSTOM_P1", owner).status_code == 403
    assert manager.patch("/v1/runbooks/CUSTOM_P1", extra).status_code == 200
    member = secured.as_("member")
    made_public = member.patch("/v1/runbooks/CUSTOM_P1", public).json()
    assert (made_public["public"], made_public["owner"]) == (True, None)
    assert member.patch("/v1/runbooks/CUSTOM_P1", owner).status_code == 400
    unpublic = [{"op": "replace", "path": "/public", "value": False}, *owner]
    moved = member.patch("/v1/runbooks/CUSTOM_P1", unpublic).json()
    assert (moved["public"], moved["owner"]) == (False, "p2")


# -------------------------------------------------------------- running a runbook


def _manageable(api: Api, name: str, *traits: str) -> None:
    api.node(name=name)
    assert provision(api, name, {"target": "manage"}).status_code == 202
    for trait in traits:
        assert api.put(f"/v1/nodes/{name}/traits/{trait}").status_code == 204


def test_cleaning_with_a_runbook_runs_its_steps_in_order(api: Api) -> None:
    made = runbook(api)
    _manageable(api, "n", "CUSTOM_TUNE")
    response = provision(api, "n", {"target": "clean", "runbook": "CUSTOM_TUNE"})
    assert response.status_code == 202, response.text
    states = api.get("/v1/nodes/n/states").json()
    assert (states["provision_state"], states["last_error"]) == ("manageable", None)
    setting = api.get("/v1/nodes/n/bios/LogicalProc").json()["LogicalProc"]
    assert setting["value"] == "Enabled"
    events = [e["event"] for e in api.get("/v1/nodes/n/history").json()["history"]]
    ran = [e for e in events if "runbook" in e]
    assert ran == [
        f"cleaning: running runbook CUSTOM_TUNE ({made['uuid']}): "
        "management.reset_bmc, bios.apply_configuration"
    ]


def test_servicing_with_a_runbook(api: Api) -> None:
    step = {"interface": "deploy", "step": "fake_service", "args": {}, "order": 0}
    made = runbook(api, "CUSTOM_SERVICE", steps=[step])
    api.node(name="s", instance_info={"image_source": "http://images.example/x.qcow2"})
    assert api.put("/v1/nodes/s/traits/CUSTOM_SERVICE").status_code == 204
    for target in ("manage", "provide", "active"):
        assert provision(api, "s", {"target": target}).status_code == 202
    assert api.get("/v1/nodes/s").json()["provision_state"] == "active"
    response = provision(api, "s", {"target": "service", "runbook": made["uuid"]})
    assert response.status_code == 202, response.text
    assert api.get("/v1/nodes/s").json()["provision_state"] == "active"
    events = [e["event"] for e in api.get("/v1/nodes/s/history").json()["history"]]
    assert f"servicing: running runbook CUSTOM_SERVICE ({made['uuid']}): deploy.fake_service" in (
        events
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"target": "clean", "runbook": "CUSTOM_UNTRAITED"}, 400, "has no trait CUSTOM_UNTRAITED"),
        (
            {"target": "clean", "runbook": "CUSTOM_TUNE", "clean_steps": [RESET]},
            400,
            'either "clean_steps" or a runbook, but not both',
        ),
        ({"target": "manage", "runbook": "CUSTOM_TUNE"}, 400, '"runbook" is only valid'),
        ({"target": "clean", "runbook": "CUSTOM_MISSING"}, 404, "CUSTOM_MISSING"),
    ],
)
def test_runbooks_are_refused_where_ironic_refuses_them(
    api: Api, body: dict[str, Any], status: int, message: str
) -> None:
    runbook(api)
    runbook(api, "CUSTOM_UNTRAITED")
    _manageable(api, "n", "CUSTOM_TUNE")
    response = provision(api, "n", body)
    assert response.status_code == status
    assert message in fault_of(response)
    assert api.get("/v1/nodes/n").json()["provision_state"] == "manageable"


def test_a_runbook_step_the_node_lacks_is_refused(api: Api) -> None:
    runbook(api, "CUSTOM_RAID", steps=[{"interface": "raid", "step": "nope", "order": 1}])
    _manageable(api, "n", "CUSTOM_RAID")
    response = provision(api, "n", {"target": "clean", "runbook": "CUSTOM_RAID"})
    assert response.status_code == 400
    assert "has no clean step 'raid.nope'" in fault_of(response)
    assert api.get("/v1/nodes/n").json()["provision_state"] == "manageable"


def test_a_project_uses_its_own_runbooks_only(secured: Api) -> None:
    admin = secured.as_("admin")
    admin.node(name="n", owner="p1")
    assert provision(admin, "n", {"target": "manage"}).status_code == 202
    for trait in ("CUSTOM_P1", "CUSTOM_P2", "CUSTOM_PUBLIC"):
        assert admin.put(f"/v1/nodes/n/traits/{trait}").status_code == 204
    runbook(secured.as_("manager", "p1"), "CUSTOM_P1")
    runbook(secured.as_("manager", "p2"), "CUSTOM_P2")
    runbook(admin, "CUSTOM_PUBLIC", public=True)
    owner = secured.as_("manager", "p1")
    assert provision(owner, "n", {"target": "clean", "runbook": "CUSTOM_P2"}).status_code == 403
    # Ironic checks baremetal:runbook:use on the runbook's owner: a public runbook
    # has none, so only the system (or a policy file) lets a project run one
    assert provision(owner, "n", {"target": "clean", "runbook": "CUSTOM_PUBLIC"}).status_code == 403
    assert admin.get("/v1/nodes/n").json()["provision_state"] == "manageable"
    assert provision(owner, "n", {"target": "clean", "runbook": "CUSTOM_P1"}).status_code == 202
    assert admin.get("/v1/nodes/n").json()["provision_state"] == "manageable"
    history = admin.get("/v1/nodes/n/history").json()["history"]
    assert any("running runbook CUSTOM_P1" in e["event"] for e in history)
