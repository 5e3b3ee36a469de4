"""The allocation API (1.52; update 1.57, backfill 1.58, owner 1.60) through the real
app and conductor: version gates, validation, what clients see while and after an
allocation is processed, and who may see and do what."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, build, fault_of

from metalcast.db import allocations as repo_alloc

RC = "baremetal-gold"
MISSING = "6f5dbd8e-7cd1-4dcf-9f2e-5b3b0b7b4bb1"
ADMIN = {"X-Roles": "admin", "OpenStack-System-Scope": "all"}


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)
    assert api.service.allocator.wait_idle(10)


def provision(api: Api, node: str, target: str) -> None:
    response = api.put(f"/v1/nodes/{node}/states/provision", {"target": target}, headers=ADMIN)
    assert response.status_code == 202, response.text
    settle(api)


def available(api: Api, name: str, *, traits: tuple[str, ...] = (), **fields: Any) -> str:
    """An available fake-hardware node (verified, so its power state is known)."""
    fields.setdefault("resource_class", RC)
    uuid = str(api.node(name=name, **fields)["uuid"])
    if traits:
        response = api.put(f"/v1/nodes/{name}/traits", {"traits": list(traits)}, headers=ADMIN)
        assert response.status_code == 204, response.text
    provision(api, name, "manage")
    provision(api, name, "provide")
    return uuid


def create(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("resource_class", RC)
    response = api.post("/v1/allocations", body)
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def processed(api: Api, ident: str, **kw: Any) -> dict[str, Any]:
    settle(api)
    response = api.get(f"/v1/allocations/{ident}", **kw)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


# ---------------------------------------------------------------------------- gates


def test_allocations_do_not_exist_before_1_52(api: Api) -> None:
    available(api, "n1")
    assert api.get("/v1/allocations", version="1.51").status_code == 404
    assert api.get(f"/v1/allocations/{MISSING}", version="1.51").status_code == 404
    refused = api.post("/v1/allocations", {"resource_class": RC}, version="1.51")
    assert refused.status_code == 405
    assert fault_of(refused) == "The API version does not allow allocations"
    assert api.delete(f"/v1/allocations/{MISSING}", version="1.51").status_code == 405
    assert api.get("/v1/nodes/n1/allocation", version="1.51").status_code == 404
    assert "allocation_uuid" not in api.get("/v1/nodes/n1", version="1.51").json()
    assert api.get("/v1/nodes/n1", version="1.52").json()["allocation_uuid"] is None


def test_owner_is_hidden_and_refused_before_1_60(api: Api) -> None:
    available(api, "n1")
    made = create(api, name="a1")
    assert "owner" not in api.get("/v1/allocations/a1", version="1.59").json()
    assert api.get("/v1/allocations/a1", version="1.60").json()["owner"] is None
    assert "owner" in made  # the harness speaks 1.60
    bad = api.post("/v1/allocations", {"resource_class": RC, "owner": "p1"}, version="1.59")
    assert bad.status_code == 406
    assert api.get("/v1/allocations/a1?fields=owner", version="1.59").status_code == 406
    assert api.get("/v1/allocations?owner=p1", version="1.59").status_code == 406


def test_update_needs_1_57_and_backfill_1_58(api: Api) -> None:
    available(api, "n1")
    create(api, name="a1")
    patch = [{"op": "replace", "path": "/name", "value": "a2"}]
    assert api.patch("/v1/allocations/a1", patch, version="1.56").status_code == 405
    assert api.patch("/v1/allocations/a1", patch, version="1.57").status_code == 200
    refused = api.post("/v1/allocations", {"resource_class": RC, "node": "n1"}, version="1.57")
    assert refused.status_code == 400
    assert fault_of(refused) == "Cannot set node when creating an allocation in this API version"


# ----------------------------------------------------------------- the happy path


def test_an_allocation_is_answered_allocating_then_becomes_active(api: Api) -> None:
    node = available(api, "n1", traits=("CUSTOM_GPU",))
    response = api.post(
        "/v1/allocations", {"resource_class": RC, "traits": ["CUSTOM_GPU"], "name": "web"}
    )
    assert response.status_code == 201
    made = response.json()
    assert response.headers["Location"] == f"http://testserver/v1/allocations/{made['uuid']}"
    assert made["state"] == "allocating"
    assert made["node_uuid"] is None
    assert set(made) == {
        "uuid", "name", "node_uuid", "state", "last_error", "resource_class", "traits",
        "candidate_nodes", "extra", "owner", "created_at", "updated_at", "links",
    }  # fmt: skip
    done = processed(api, "web")
    assert (done["state"], done["node_uuid"], done["last_error"]) == ("active", node, None)
    assert api.get("/v1/nodes/n1/allocation").json() == done
    shown = api.get("/v1/nodes/n1").json()
    assert shown["allocation_uuid"] == made["uuid"]
    assert shown["instance_uuid"] == made["uuid"]
    assert shown["instance_info"]["traits"] == ["CUSTOM_GPU"]


def test_candidate_nodes_are_given_by_name_or_uuid_and_shown_as_uuids(api: Api) -> None:
    first = available(api, "n1")
    second = available(api, "n2")
    made = create(api, candidate_nodes=["n2", first])
    assert made["candidate_nodes"] == [second, first]
    missing = api.post("/v1/allocations", {"resource_class": RC, "candidate_nodes": ["n2", "nope"]})
    assert missing.status_code == 400
    assert fault_of(missing) == "Nodes cannot be found: nope"


def test_a_failed_allocation_says_what_did_not_match(api: Api) -> None:
    available(api, "n1")
    made = create(api, resource_class="silver")
    done = processed(api, made["uuid"])
    assert done["state"] == "error"
    assert done["node_uuid"] is None
    assert done["last_error"] == (
        f"Failed to process allocation {made['uuid']}: no node has resource class silver."
    )


def test_backfill_records_a_deployed_node(api: Api) -> None:
    node = available(api, "n1")
    provision(api, "n1", "active")
    response = api.post("/v1/allocations", {"node": "n1"})
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["state"], made["node_uuid"], made["resource_class"]) == ("active", node, RC)
    assert api.get("/v1/nodes/n1").json()["allocation_uuid"] == made["uuid"]


def test_backfill_of_a_node_that_does_not_match_is_refused(api: Api) -> None:
    available(api, "n1")
    refused = api.post("/v1/allocations", {"node": "n1"})
    assert refused.status_code == 400
    assert 'Node must be in the "active" state' in fault_of(refused)
    assert api.get("/v1/allocations").json() == {"allocations": []}
    assert api.post("/v1/allocations", {"node": "nope"}).status_code == 400


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "The resource_class field is mandatory when not backfilling"),
        ({"resource_class": RC, "traits": ["lower"]}, 'Invalid trait "lower"'),
        ({"resource_class": RC, "traits": "CUSTOM_A"}, "is not of type 'list'"),
        ({"resource_class": RC, "name": "has space"}, "Cannot create allocation with invalid name"),
        ({"resource_class": RC, "uuid": "nope"}, "to be a UUID in canonical form"),
        ({"resource_class": "x" * 81}, "longer than 80 characters"),
        ({"resource_class": RC, "bogus": 1}, "Unknown field(s) for allocation: bogus"),
        ({"resource_class": RC, "candidate_nodes": [1]}, "is not a list of node UUIDs"),
        ({"resource_class": RC, "extra": []}, "is not of type 'object'"),
        ({"resource_class": RC, "candidate_nodes": ["n"] * 1001}, "at most 1000 candidate"),
        ({"resource_class": RC, "traits": [f"CUSTOM_{i}" for i in range(51)]}, "at most 50"),
        ({"resource_class": RC, "owner": "p" * 256}, "longer than 255 characters"),
    ],
)
def test_bad_requests_are_refused_with_what_to_fix(
    api: Api, body: dict[str, Any], message: str
) -> None:
    response = api.post("/v1/allocations", body)
    assert response.status_code == 400
    assert message in fault_of(response)
    assert api.get("/v1/allocations").json() == {"allocations": []}


def test_names_and_uuids_are_unique(api: Api) -> None:
    made = create(api, name="a1")
    taken = api.post("/v1/allocations", {"resource_class": RC, "name": "a1"})
    assert taken.status_code == 409
    assert fault_of(taken) == "An allocation with name a1 already exists."
    again = api.post("/v1/allocations", {"resource_class": RC, "uuid": made["uuid"]})
    assert again.status_code == 409
    assert fault_of(again) == f"An allocation with UUID {made['uuid']} already exists."


def test_patch_changes_only_name_and_extra(api: Api) -> None:
    create(api, name="a1")
    create(api, name="a2")
    done = api.patch(
        "/v1/allocations/a1",
        [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/extra/team", "value": "blue"},
        ],
    )
    assert done.status_code == 200, done.text
    assert (done.json()["name"], done.json()["extra"]) == ("renamed", {"team": "blue"})
    other = api.patch(
        "/v1/allocations/renamed", [{"op": "replace", "path": "/resource_class", "value": "x"}]
    )
    assert other.status_code == 400
    assert fault_of(other) == (
        "Cannot patch /resource_class. Only the following can be updated: name, extra"
    )
    bad = api.patch("/v1/allocations/renamed", [{"op": "replace", "path": "/name", "value": "a b"}])
    assert fault_of(bad) == "Cannot update allocation with invalid name 'a b'"
    taken = api.patch(
        "/v1/allocations/renamed", [{"op": "replace", "path": "/name", "value": "a2"}]
    )
    assert taken.status_code == 409


# ------------------------------------------------------------------ listing, showing


def test_lists_filter_by_state_resource_class_node_and_owner(api: Api) -> None:
    node = available(api, "n1")
    good = create(api, name="good")
    bad = create(api, name="bad", resource_class="silver", owner="p9")
    settle(api)

    def names(query: str) -> list[str]:
        response = api.get(f"/v1/allocations{query}")
        assert response.status_code == 200, response.text
        return [a["name"] for a in response.json()["allocations"]]

    assert names("") == ["good", "bad"]
    assert names("?state=active") == ["good"]
    assert names("?state=error") == ["bad"]
    assert names("?state=allocating") == []
    assert names("?resource_class=silver") == ["bad"]
    assert names(f"?node={node}") == ["good"]
    assert names("?node=n1") == ["good"]
    assert names("?owner=p9") == ["bad"]
    assert names("?sort_key=name") == ["bad", "good"]
    page = api.get("/v1/allocations?limit=1").json()
    assert page["next"].endswith(f"limit=1&marker={good['uuid']}")
    assert [a["uuid"] for a in api.get(page["next"]).json()["allocations"]] == [bad["uuid"]]
    only = api.get("/v1/allocations?fields=uuid,state").json()["allocations"][0]
    assert set(only) == {"uuid", "state", "links"}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?sort_key=traits", 400),
        ("?state=busy", 400),
        ("?node=nope", 400),
        ("?colour=red", 400),
        ("?fields=nope", 400),
        ("?limit=-1", 400),
    ],
)
def test_bad_list_parameters(api: Api, query: str, status: int) -> None:
    assert api.get(f"/v1/allocations{query}").status_code == status


def test_unknown_allocations_are_not_found(api: Api) -> None:
    response = api.get("/v1/allocations/nope")
    assert response.status_code == 404
    assert fault_of(response) == "Allocation nope could not be found."
    available(api, "n1")
    missing = api.get("/v1/nodes/n1/allocation")
    assert missing.status_code == 404
    assert fault_of(missing) == "Allocation for node n1 was not found"
    assert api.delete("/v1/nodes/n1/allocation").status_code == 404
    # as in Ironic: listing the allocation of a node that does not exist is 400
    no_node = api.get("/v1/nodes/nope/allocation")
    assert no_node.status_code == 400
    assert fault_of(no_node) == "Node nope could not be found."
    assert api.delete("/v1/nodes/nope/allocation").status_code == 404


# ---------------------------------------------------------------------- deleting


def test_deleting_frees_the_node_but_not_while_it_is_active(api: Api) -> None:
    available(api, "n1")
    made = create(api, name="a1")
    settle(api)
    assert api.delete("/v1/allocations/a1").status_code == 204
    freed = api.get("/v1/nodes/n1").json()
    assert (freed["instance_uuid"], freed["allocation_uuid"]) == (None, None)
    assert api.get(f"/v1/allocations/{made['uuid']}").status_code == 404

    create(api, name="a2")
    settle(api)
    provision(api, "n1", "active")
    busy = api.delete("/v1/nodes/n1/allocation")
    assert busy.status_code == 409
    assert "because the node is active" in fault_of(busy)
    provision(api, "n1", "deleted")  # undeploy deletes the allocation, as in Ironic
    assert api.get("/v1/allocations/a2").status_code == 404
    assert api.get("/v1/nodes/n1").json()["instance_uuid"] is None


# -------------------------------------------------------------------------- policy


def test_a_project_member_allocates_only_its_projects_nodes(secured: Api) -> None:
    admin = secured.as_("admin")
    available(admin, "theirs", owner="p2")
    mine = available(admin, "mine", lessee="p1")
    member = secured.as_("member", "p1")

    made = member.post("/v1/allocations", {"resource_class": RC})
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "p1"
    settle(secured)
    done = member.get(f"/v1/allocations/{made.json()['uuid']}").json()
    assert (done["state"], done["node_uuid"]) == ("active", mine)

    again = member.post("/v1/allocations", {"resource_class": RC, "name": "second"}).json()
    settle(secured)
    failed = member.get(f"/v1/allocations/{again['uuid']}").json()
    assert failed["state"] == "error"
    assert "owned or leased by project p1" in failed["last_error"]
    assert admin.get("/v1/nodes/theirs").json()["allocation_uuid"] is None


def test_a_project_cannot_reach_other_projects_allocations_or_nodes(secured: Api) -> None:
    admin = secured.as_("admin")
    available(admin, "theirs", owner="p2")
    p1, p2 = secured.as_("member", "p1"), secured.as_("member", "p2")
    theirs = p2.post("/v1/allocations", {"resource_class": RC, "name": "theirs"}).json()

    assert p1.get(f"/v1/allocations/{theirs['uuid']}").status_code == 404
    assert p1.get("/v1/allocations/theirs").status_code == 404
    assert p1.delete(f"/v1/allocations/{theirs['uuid']}").status_code == 404
    patch = [{"op": "replace", "path": "/name", "value": "mine"}]
    assert p1.patch(f"/v1/allocations/{theirs['uuid']}", patch).status_code == 404
    assert p1.get("/v1/allocations").json() == {"allocations": []}
    assert p1.get("/v1/allocations?owner=p2").status_code == 403
    stolen = p1.post("/v1/allocations", {"resource_class": RC, "candidate_nodes": ["theirs"]})
    assert stolen.status_code == 400
    assert fault_of(stolen) == "Nodes cannot be found: theirs"
    spoofed = p1.post("/v1/allocations", {"resource_class": RC, "owner": "p2"})
    assert spoofed.status_code == 403
    assert "not matching the requester Project ID p1" in fault_of(spoofed)
    backfill = p1.post("/v1/allocations", {"node": "theirs"})
    assert backfill.status_code == 400
    assert [a["name"] for a in admin.get("/v1/allocations").json()["allocations"]] == ["theirs"]
    assert [a["name"] for a in p2.get("/v1/allocations").json()["allocations"]] == ["theirs"]


def test_readers_read_and_members_write_their_allocations(secured: Api) -> None:
    member, reader = secured.as_("member", "p1"), secured.as_("reader", "p1")
    made = member.post("/v1/allocations", {"resource_class": RC, "name": "a1"}).json()
    assert reader.get("/v1/allocations/a1").json()["uuid"] == made["uuid"]
    assert reader.post("/v1/allocations", {"resource_class": RC}).status_code == 403
    assert reader.delete("/v1/allocations/a1").status_code == 403
    assert member.delete("/v1/allocations/a1").status_code == 204
    anyone = secured.as_("admin").post("/v1/allocations", {"resource_class": RC, "owner": "p5"})
    assert anyone.json()["owner"] == "p5"  # admins may allocate for any project


def test_a_lessee_sees_the_node_but_not_the_owners_allocation(secured: Api) -> None:
    admin = secured.as_("admin")
    available(admin, "n1", owner="p1", lessee="p2")
    made = secured.as_("member", "p1").post("/v1/allocations", {"resource_class": RC}).json()
    settle(secured)
    lessee, stranger = secured.as_("admin", "p2"), secured.as_("admin", "p3")
    assert lessee.get("/v1/nodes/n1").status_code == 200
    refused = lessee.get("/v1/nodes/n1/allocation")
    assert refused.status_code == 403
    assert fault_of(refused).endswith("baremetal:node:get_allocation")
    assert lessee.delete("/v1/nodes/n1/allocation").status_code == 403
    assert lessee.get(f"/v1/allocations/{made['uuid']}").status_code == 404
    # whoever may not see the node is told what a node that does not exist tells
    hidden = stranger.get("/v1/nodes/n1/allocation")
    assert (hidden.status_code, fault_of(hidden)) == (400, "Node n1 could not be found.")
    assert stranger.get("/v1/allocations?node=n1").status_code == 400
    assert stranger.delete("/v1/nodes/n1/allocation").status_code == 404
    shown = secured.as_("reader", "p1").get("/v1/nodes/n1/allocation").json()
    assert shown["uuid"] == made["uuid"]


@pytest.fixture
def restricted_only(tmp_path: Path) -> Iterator[Api]:
    """Header auth; a policy file letting project members in through
    baremetal:allocation:create_restricted alone."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        '"baremetal:allocation:create": "rule:system_member"\n'
        '"baremetal:allocation:create_restricted": "rule:system_member or role:member"\n'
    )
    yield from build(tmp_path, "header", policy_file=policy_file)


def test_create_restricted_alone_creates_for_the_callers_project(restricted_only: Api) -> None:
    # Ironic's fallback: refused baremetal:allocation:create, a caller passing
    # ...:create_restricted gets an allocation of its own project, whatever it asked
    member = restricted_only.as_("member", "p1")
    made = member.post("/v1/allocations", {"resource_class": RC})
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "p1"
    other = member.post("/v1/allocations", {"resource_class": RC, "owner": "p2"})
    assert other.status_code == 403
    assert fault_of(other).endswith("baremetal:allocation:create")
    reader = restricted_only.as_("reader", "p1").post("/v1/allocations", {"resource_class": RC})
    assert fault_of(reader).endswith("baremetal:allocation:create_restricted")


def test_secrets_in_extra_are_masked_and_kept(api: Api) -> None:
    extra = {"bmc": {"password": "Alloc-Pass-5d6e"}, "rack": "r1"}
    made = create(api, name="a1", extra=extra)
    replace = [{"op": "add", "path": "/extra/rack", "value": "r2"}]
    patched = api.patch("/v1/allocations/a1", replace).json()
    listed = api.get("/v1/allocations?fields=uuid,extra").json()["allocations"][0]
    for doc in (made, api.get("/v1/allocations/a1").json(), listed, patched):
        assert "Alloc-Pass-5d6e" not in str(doc)
        assert doc["extra"]["bmc"] == {"password": "******"}
    assert patched["extra"]["rack"] == "r2"
    # the whole document sent back as shown keeps the stored password
    api.patch(
        "/v1/allocations/a1", [{"op": "replace", "path": "/extra", "value": patched["extra"]}]
    )
    with api.db.read() as conn:
        stored = repo_alloc.get_allocation(conn, "a1").extra
    box = api.db.secret_box
    assert box is not None
    assert "Alloc-Pass-5d6e" not in str(stored)
    assert box.reveal(stored)["bmc"] == {"password": "Alloc-Pass-5d6e"}
