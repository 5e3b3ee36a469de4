"""The one enforcement point: roles, project scoping, lessee limits, auth strategies."""

from __future__ import annotations

import pytest
from api_harness import Api, fault_of

from metalcast.api import policy
from metalcast.api.policy import RULES, NodeTarget, Scope, enforce
from metalcast.context import RequestContext
from metalcast.errors import Forbidden, NotFound

NODE = NodeTarget(uuid="n-1", owner="owner-p", lessee="lessee-p")


def ctx(*roles: str, project: str | None = None) -> RequestContext:
    return RequestContext(
        roles=frozenset(roles), project=project, system_scope=None if project else "all"
    )


# ------------------------------------------------------------------- enforce() itself


@pytest.mark.parametrize("action", sorted(RULES))
def test_admin_may_do_everything(action: str) -> None:
    enforce(ctx("admin"), action, node=NODE)


@pytest.mark.parametrize(
    "action",
    sorted(a for a, s in RULES.items() if s not in (Scope.PUBLIC, Scope.AUTHENTICATED)),
)
def test_no_role_may_do_nothing(action: str) -> None:
    with pytest.raises(Forbidden):
        enforce(ctx(project="owner-p"), action)


@pytest.mark.parametrize("action", [a for a, s in RULES.items() if s is Scope.AUTHENTICATED])
def test_authenticated_actions_need_credentials_but_no_role(action: str) -> None:
    enforce(ctx(project="owner-p"), action)
    with pytest.raises(Forbidden):
        enforce(RequestContext(authenticated=False), action)


@pytest.mark.parametrize("action", [a for a, s in RULES.items() if s is Scope.SYSTEM_READ])
def test_system_reads_need_a_system_scoped_reader(action: str) -> None:
    enforce(ctx("reader"), action)
    for project_admin in (ctx("admin", project="owner-p"), ctx("reader", project="owner-p")):
        with pytest.raises(Forbidden):
            enforce(project_admin, action)


def test_public_needs_no_role() -> None:
    enforce(ctx(), "api:discovery")


def test_unknown_actions_are_admin_only() -> None:
    with pytest.raises(Forbidden):
        enforce(ctx("member", project="owner-p"), "node:self_destruct", node=NODE)
    enforce(ctx("admin"), "node:self_destruct")


@pytest.mark.parametrize("action", [a for a, s in RULES.items() if s is Scope.READ])
def test_reader_may_read_its_projects_nodes(action: str) -> None:
    enforce(ctx("reader", project="owner-p"), action, node=NODE)
    enforce(ctx("reader", project="lessee-p"), action, node=NODE)


@pytest.mark.parametrize(
    "action", [a for a, s in RULES.items() if s in (Scope.LESSEE, Scope.OWNER)]
)
def test_reader_may_not_write(action: str) -> None:
    with pytest.raises(Forbidden):
        enforce(ctx("reader", project="owner-p"), action, node=NODE)


def test_other_projects_nodes_are_not_found() -> None:
    with pytest.raises(NotFound, match="Node n-1 could not be found"):
        enforce(ctx("member", project="stranger"), "node:get", node=NODE)
    with pytest.raises(NotFound):
        enforce(ctx("member"), "node:get", node=NODE)


@pytest.mark.parametrize("action", ["node:power", "node:provision", "node:get"])
def test_lessee_member_may_power_provision_and_read(action: str) -> None:
    enforce(ctx("member", project="lessee-p"), action, node=NODE)


@pytest.mark.parametrize(
    "action", ["node:update", "node:delete", "node:maintenance", "node:traits", "port:write"]
)
def test_lessee_member_may_not_change_the_node(action: str) -> None:
    with pytest.raises(Forbidden):
        enforce(ctx("member", project="lessee-p"), action, node=NODE)


@pytest.mark.parametrize("action", ["node:update", "node:delete", "node:power", "node:traits"])
def test_owner_member_may_act(action: str) -> None:
    enforce(ctx("member", project="owner-p"), action, node=NODE)


@pytest.mark.parametrize("action", ["node:create", "node:update:owner", "chassis:write"])
def test_admin_only_actions(action: str) -> None:
    with pytest.raises(Forbidden, match=f"baremetal:{action}"):
        enforce(ctx("member", project="owner-p"), action, node=NODE)


def test_project_scope() -> None:
    assert policy.project_scope(ctx("admin")) is None
    assert policy.project_scope(ctx("reader", project="p")) == "p"
    assert policy.project_scope(ctx("reader")) == ""


# ------------------------------------------------------------------- through the API


@pytest.fixture
def nodes(secured: Api) -> dict[str, str]:
    owned = secured.node(name="owned", owner="p1")
    leased = secured.node(name="leased", owner="p2", lessee="p1")
    foreign = secured.node(name="foreign", owner="p2")
    return {"owned": owned["uuid"], "leased": leased["uuid"], "foreign": foreign["uuid"]}


def test_anonymous_callers_are_forbidden(secured: Api, nodes: dict[str, str]) -> None:
    response = secured.as_("").get("/v1/nodes")
    assert response.status_code == 403
    assert fault_of(response) == "Access was denied to the following resource: baremetal:node:get"


def test_discovery_needs_no_role(secured: Api) -> None:
    assert secured.as_("").get("/").status_code == 200
    assert secured.as_("").get("/v1").status_code == 200


def test_admin_sees_every_node(secured: Api, nodes: dict[str, str]) -> None:
    names = {n["name"] for n in secured.as_("admin").get("/v1/nodes").json()["nodes"]}
    assert names == {"owned", "leased", "foreign"}


def test_member_lists_only_owned_and_leased(secured: Api, nodes: dict[str, str]) -> None:
    member = secured.as_("member", "p1")
    names = {n["name"] for n in member.get("/v1/nodes").json()["nodes"]}
    assert names == {"owned", "leased"}
    detail = {n["name"] for n in member.get("/v1/nodes/detail").json()["nodes"]}
    assert detail == {"owned", "leased"}
    filtered = member.get("/v1/nodes?owner=p2").json()["nodes"]
    assert [n["name"] for n in filtered] == ["leased"]


def test_member_without_project_sees_nothing(secured: Api, nodes: dict[str, str]) -> None:
    assert secured.as_("member").get("/v1/nodes").json()["nodes"] == []


def test_showing_another_projects_node_is_404(secured: Api, nodes: dict[str, str]) -> None:
    response = secured.as_("reader", "p1").get(f"/v1/nodes/{nodes['foreign']}")
    assert response.status_code == 404
    assert secured.as_("reader", "p1").get("/v1/nodes/foreign").status_code == 404
    assert secured.as_("reader", "p1").get("/v1/nodes/owned").status_code == 200


def test_reader_cannot_write(secured: Api, nodes: dict[str, str]) -> None:
    reader = secured.as_("reader", "p1")
    patch = [{"op": "add", "path": "/extra/a", "value": 1}]
    assert reader.patch("/v1/nodes/owned", patch).status_code == 403
    assert reader.put("/v1/nodes/owned/states/power", {"target": "power on"}).status_code == 403
    assert reader.delete("/v1/nodes/owned").status_code == 403
    assert reader.post("/v1/nodes", {"driver": "fake-hardware"}).status_code == 403


def test_owner_member_updates_but_cannot_give_the_node_away(
    secured: Api, nodes: dict[str, str]
) -> None:
    member = secured.as_("member", "p1")
    patch = [{"op": "add", "path": "/extra/a", "value": 1}]
    assert member.patch("/v1/nodes/owned", patch).status_code == 200
    give = [{"op": "replace", "path": "/owner", "value": "p2"}]
    assert member.patch("/v1/nodes/owned", give).status_code == 403
    assert member.post("/v1/nodes", {"driver": "fake-hardware"}).status_code == 403


def test_lessee_may_power_but_not_update_or_delete(secured: Api, nodes: dict[str, str]) -> None:
    lessee = secured.as_("member", "p1")
    response = lessee.put("/v1/nodes/leased/states/power", {"target": "power on"})
    assert response.status_code == 202
    patch = [{"op": "add", "path": "/extra/a", "value": 1}]
    assert lessee.patch("/v1/nodes/leased", patch).status_code == 403
    assert lessee.delete("/v1/nodes/leased").status_code == 403
    assert lessee.put("/v1/nodes/leased/maintenance", {"reason": "x"}).status_code == 403


def test_member_cannot_act_on_foreign_nodes(secured: Api, nodes: dict[str, str]) -> None:
    member = secured.as_("member", "p1")
    response = member.put("/v1/nodes/foreign/states/power", {"target": "power on"})
    assert response.status_code == 404


def test_ports_follow_their_nodes_visibility(secured: Api, nodes: dict[str, str]) -> None:
    admin = secured.as_("admin")
    mine = admin.post("/v1/ports", {"node_uuid": nodes["owned"], "address": "52:54:00:00:00:01"})
    theirs = admin.post(
        "/v1/ports", {"node_uuid": nodes["foreign"], "address": "52:54:00:00:00:02"}
    )
    member = secured.as_("member", "p1")
    listed = [p["uuid"] for p in member.get("/v1/ports").json()["ports"]]
    assert listed == [mine.json()["uuid"]]
    assert member.get(f"/v1/ports/{theirs.json()['uuid']}").status_code == 404
    response = member.post(
        "/v1/ports", {"node_uuid": nodes["foreign"], "address": "52:54:00:00:00:03"}
    )
    assert response.status_code == 400
    assert (
        secured.as_("member", "p1")
        .post("/v1/ports", {"node_uuid": nodes["owned"], "address": "52:54:00:00:00:04"})
        .status_code
        == 201
    )


def test_chassis_writes_are_admin_only(secured: Api) -> None:
    assert secured.as_("member", "p1").post("/v1/chassis", {}).status_code == 403
    assert secured.as_("admin").post("/v1/chassis", {}).status_code == 201
    assert secured.as_("reader", "p1").get("/v1/chassis").status_code == 200
