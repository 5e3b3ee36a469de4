"""The policy: every rule against every persona, the one check, policy files, and the
request-dependent checks Ironic makes (PATCH fields, self-owned nodes, links)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import Api, build, fault_of, make_settings
from oslo_policy import policy as oslo
from policy_matrix import (
    EXPECTED,
    EXPECTED_ON_OTHERS_TOKEN,
    EXPECTED_ON_OWN_ALLOCATION,
    EXPECTED_WITHOUT_TARGET,
    PERSONAS,
)
from starlette.routing import Route

from metalcast.api import policy
from metalcast.api.app import create_app
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.policy import Policy, PolicyFileError, UnknownRule
from metalcast.api.policy.callers import CALLERS, LESSEE_PROJECT, OWNER_PROJECT, Caller, Scope
from metalcast.api.policy.compiled import CompiledRules
from metalcast.api.policy.rules import BY_NAME, RULES, Rule, Subject
from metalcast.context import RequestContext, with_implied
from metalcast.db.engine import Database
from metalcast.errors import Forbidden, NotFound

DEFAULTS = policy.load(None)
NODE = policy.node_target(OWNER_PROJECT, LESSEE_PROJECT)


def target_for(rule: Rule, caller: Caller) -> dict[str, str] | None:
    """The matrix's standard target of ``rule`` (see policy_matrix.EXPECTED)."""
    if rule.subject is Subject.NODE:
        return NODE
    if rule.subject is Subject.ALLOCATION:
        return {**policy.allocation_target(OWNER_PROJECT), **NODE}
    if rule.subject is Subject.RUNBOOK:
        return policy.runbook_target(OWNER_PROJECT)
    if rule.subject is Subject.TOKEN:
        return policy.token_target(caller.user)
    return None


def admitted(rule: Rule, rules: Policy = DEFAULTS) -> set[str]:
    return {p.name for p in PERSONAS if rules.allows(p.context(), rule.name, target_for(rule, p))}


# ------------------------------------------------------------- rules x personas


def test_every_rule_has_its_expected_personas() -> None:
    assert set(EXPECTED) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_lets_in_exactly_the_expected_personas(rule: Rule) -> None:
    allowed = admitted(rule)
    expected = EXPECTED[rule.name]
    assert allowed == expected, (
        f"let in but should not: {sorted(allowed - expected)}; "
        f"refused but should not: {sorted(expected - allowed)}"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_ON_OTHERS_TOKEN))
def test_token_rules_on_someone_elses_token(name: str) -> None:
    allowed = {
        p.name
        for p in PERSONAS
        if DEFAULTS.allows(p.context(), name, policy.token_target("someone-else"))
    }
    assert allowed == EXPECTED_ON_OTHERS_TOKEN[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_WITHOUT_TARGET))
def test_rules_checked_without_a_node(name: str) -> None:
    allowed = {p.name for p in PERSONAS if DEFAULTS.allows(p.context(), name)}
    assert allowed == EXPECTED_WITHOUT_TARGET[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_ON_OWN_ALLOCATION))
def test_rules_checked_on_the_callers_own_allocation(name: str) -> None:
    allowed = {
        p.name
        for p in PERSONAS
        if DEFAULTS.allows(p.context(), name, policy.allocation_target(p.project))
    }
    assert allowed == EXPECTED_ON_OWN_ALLOCATION[name]


def test_a_caller_without_project_or_system_scope_owns_no_unowned_node() -> None:
    # oslo.policy compares strings: project_id None would match node.owner None
    unscoped = RequestContext(user="u", roles=with_implied({"admin"}))
    unowned = policy.node_target(None, None)
    for rule in RULES:
        if rule.subject is Subject.NODE and rule.check:
            assert not DEFAULTS.allows(unscoped, rule.name, unowned), rule.name


# ------------------------------------------------------------------ the check


def test_enforce_hides_or_forbids() -> None:
    reader = Caller(Scope.OWNER, "reader").context()
    foreign = policy.node_target("p-x", None)
    with pytest.raises(NotFound, match=r"^Node n could not be found\.$"):
        DEFAULTS.enforce(reader, "baremetal:node:get", foreign, hide="Node n could not be found.")
    with pytest.raises(Forbidden) as refused:
        DEFAULTS.enforce(reader, "baremetal:node:set_power_state", NODE)
    assert refused.value.message == (
        "Access was denied to the following resource: baremetal:node:set_power_state"
    )
    DEFAULTS.enforce(reader, "baremetal:node:get", NODE)


def test_an_unknown_rule_is_a_bug_not_a_refusal() -> None:
    admin = Caller(Scope.SYSTEM, "admin").context()
    with pytest.raises(UnknownRule, match="baremetal:node:self_destruct"):
        DEFAULTS.allows(admin, "baremetal:node:self_destruct")


def test_list_scope() -> None:
    assert DEFAULTS.list_scope(Caller(Scope.SYSTEM, "reader").context(), "node") is None
    lessee = Caller(Scope.LESSEE, "reader").context()
    assert DEFAULTS.list_scope(lessee, "port") == LESSEE_PROJECT
    no_role = RequestContext(user="u", project="p", roles=frozenset())
    with pytest.raises(Forbidden, match=r"baremetal:node:list$"):
        DEFAULTS.list_scope(no_role, "node")
    system_no_role = RequestContext(user="u", system_scope="all", roles=frozenset({"x"}))
    with pytest.raises(Forbidden, match=r"baremetal:node:list_all$"):
        DEFAULTS.list_scope(system_no_role, "node")


def test_node_redactions_follow_owner_and_lessee() -> None:
    lessee = DEFAULTS.node_redactions(Caller(Scope.LESSEE, "admin").context())
    assert lessee is not None
    assert set(lessee.fields(OWNER_PROJECT, LESSEE_PROJECT)) == set(policy.REDACTED)
    assert lessee.fields(LESSEE_PROJECT, None) == ()
    doc = {"last_error": "x", "driver_info": {"password": "******"}, "name": "n"}
    lessee.apply(doc, owner=OWNER_PROJECT, lessee=LESSEE_PROJECT)
    assert doc["name"] == "n"
    assert doc["driver_info"] == {
        "content": "** Redacted - requires baremetal:node:get:driver_info permission. **"
    }
    assert DEFAULTS.node_redactions(Caller(Scope.SYSTEM, "reader").context()) is None


# ---------------------------------------------------- compiled == oslo.policy

EXOTIC = {
    "baremetal:node:get": "not role:reader or @",
    "baremetal:node:update": "'owner-project':%(node.owner)s and roles:member",
    "baremetal:node:delete": "True:%(missing)s or (role:admin and !)",
    "baremetal:chassis:get": "user_id:%(user_id)s and not user_id:nobody",
}


def _oslo_enforcer(rules: Policy) -> oslo.Enforcer:
    return rules._enforcer  # the enforcer the policy compiled


@pytest.mark.parametrize("overrides", [{}, EXOTIC], ids=["defaults", "exotic"])
def test_compiled_rules_answer_as_oslo_policy_does(
    tmp_path: Path, overrides: dict[str, str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("".join(f'"{k}": "{v}"\n' for k, v in overrides.items()))
    rules = policy.load(path)
    enforcer = _oslo_enforcer(rules)
    compiled = CompiledRules(enforcer)
    targets = [NODE, policy.node_target(None, None), policy.node_target("p-x", OWNER_PROJECT), {}]
    for caller in CALLERS:
        creds = policy.credentials(caller.context())
        for target in targets:
            full = {**creds, **target}
            for name in BY_NAME:
                want = bool(enforcer.enforce(name, full, dict(creds)))
                assert compiled.check(name, full, creds) is want, (caller.name, name, target)


# ----------------------------------------------------------------- policy files


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_policy_file_overrides_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path, '"baremetal:node:get": "rule:system_admin"\n"system_admin": "role:boss"\n'
    )
    rules = policy.load(path)
    boss = RequestContext(user="b", roles=frozenset({"boss"}), system_scope="all")
    assert rules.allows(boss, "baremetal:node:get", NODE)
    assert not rules.allows(Caller(Scope.OWNER, "admin").context(), "baremetal:node:get", NODE)
    # the rest keeps its defaults
    assert rules.allows(
        Caller(Scope.OWNER, "member").context(), "baremetal:node:set_power_state", NODE
    )


def test_a_json_policy_file_with_ironics_own_check_strings(tmp_path: Path) -> None:
    ironic_reader = (
        "(role:reader and system_scope:all) or (role:service and system_scope:all) or "
        "(role:reader and (project_id:%(node.owner)s or project_id:%(node.lessee)s))"
    )
    path = write(tmp_path, f'{{"baremetal:node:get": "{ironic_reader}"}}', "policy.json")
    rules = policy.load(path)
    assert admitted(BY_NAME["baremetal:node:get"], rules) == EXPECTED["baremetal:node:get"] - {
        "owner service"
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"baremetal:node:get": [role:x', "is not valid YAML or JSON"),
        ("- a\n- b\n", "must map rule names to check strings"),
        ('"baremetal:node:get": 5\n', "rule 'baremetal:node:get' must be a check string"),
        ('"baremetal:node:get": "role:x and (("\n', "cannot parse the check string"),
        ('"baremetal:node:get": "rule:no_such_rule"\n', "refer to rules that do not exist"),
        ('"a": "rule:b"\n"b": "rule:a"\n', "or to themselves"),
    ],
)
def test_a_broken_policy_file_stops_the_server(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyFileError, match=message):
        policy.load(path)


def test_a_missing_policy_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"does not exist\. Create it"):
        policy.load(tmp_path / "nope.yaml")


def test_the_app_refuses_to_start_with_a_broken_policy_file(tmp_path: Path) -> None:
    base = make_settings(tmp_path, auth="header")
    settings = base.model_copy(
        update={"api": base.api.model_copy(update={"policy_file": tmp_path / "nope.yaml"})}
    )
    db = Database(settings.database_url)
    try:
        with pytest.raises(PolicyFileError):
            create_app(settings, db, conductor=None)  # type: ignore[arg-type]
    finally:
        db.dispose()


def test_unknown_baremetal_rules_in_a_file_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '"baremetal:shard:get": "@"\n"my_alias": "role:x"\n')
    with caplog.at_level(logging.WARNING, logger="metalcast.api.policy"):
        policy.load(path)
    assert "baremetal:shard:get" in caplog.text
    assert "my_alias" not in caplog.text


# ------------------------------------------------------ request-dependent checks


@pytest.fixture
def overridden(tmp_path: Path) -> Iterator[Api]:
    """The app with header auth and a policy file forbidding clean steps."""
    write(tmp_path, '"baremetal:node:set_provision_state:clean_steps": "!"\n')
    yield from build(tmp_path, "header", policy_file=tmp_path / "policy.yaml")


def test_a_policy_file_changes_what_the_api_allows(overridden: Api) -> None:
    admin = overridden.as_("admin")
    admin.node(name="n")
    assert admin.put("/v1/nodes/n/states/provision", {"target": "manage"}).status_code == 202
    assert overridden.service.rt.workers.wait_idle(10)
    step = {"interface": "deploy", "step": "erase_devices_metadata"}
    response = admin.put("/v1/nodes/n/states/provision", {"target": "clean", "clean_steps": [step]})
    assert response.status_code == 403
    assert fault_of(response).endswith("baremetal:node:set_provision_state:clean_steps")


def test_patch_checks_the_rule_of_every_field(secured: Api) -> None:
    secured.as_("admin").node(name="n", owner="p1", lessee="p2")
    lessee_member = secured.as_("member", "p2")
    extra = {"op": "add", "path": "/extra/a", "value": 1}
    assert lessee_member.patch("/v1/nodes/n", [extra]).status_code == 200
    name = {"op": "replace", "path": "/name", "value": "m"}
    response = lessee_member.patch("/v1/nodes/n", [extra, name])
    assert response.status_code == 403
    assert fault_of(response).endswith("baremetal:node:update:name")
    # nothing of a refused patch is applied
    assert secured.as_("admin").get("/v1/nodes/n").json()["extra"] == {"a": 1}


def test_a_deployed_nodes_owner_changes_only_by_a_system_admin(secured: Api) -> None:
    admin = secured.as_("admin")
    node = admin.node(name="d", owner="p1")
    assert admin.put("/v1/nodes/d/states/provision", {"target": "manage"}).status_code == 202
    assert secured.service.rt.workers.wait_idle(10)
    for verb in ("provide", "active"):
        assert admin.put("/v1/nodes/d/states/provision", {"target": verb}).status_code == 202
        assert secured.service.rt.workers.wait_idle(10)
    assert admin.get("/v1/nodes/d").json()["provision_state"] == "active"
    give = [{"op": "replace", "path": "/owner", "value": "p2"}]
    refused = secured.as_("member").patch("/v1/nodes/d", give)
    assert refused.status_code == 409
    assert (
        fault_of(refused)
        == f'Cannot update owner of node "{node["uuid"]}" while it is in state "active".'
    )
    assert admin.patch("/v1/nodes/d", give).json()["owner"] == "p2"


def test_a_project_admin_creates_nodes_for_its_own_project(secured: Api) -> None:
    project_admin = secured.as_("admin", "p1")
    created = project_admin.post("/v1/nodes", {"driver": "fake-hardware", "name": "own"})
    assert created.status_code == 201
    assert created.json()["owner"] == "p1"
    other = project_admin.post("/v1/nodes", {"driver": "fake-hardware", "owner": "p2"})
    assert other.status_code == 400
    assert "owner other than your own project" in fault_of(other)
    # and deletes them, but not nodes it only leases
    assert project_admin.delete("/v1/nodes/own").status_code == 204
    secured.as_("admin").node(name="leased", owner="p2", lessee="p1")
    assert project_admin.delete("/v1/nodes/leased").status_code == 403
    assert (
        secured.as_("member", "p1").post("/v1/nodes", {"driver": "fake-hardware"}).status_code
        == 403
    )


def test_ports_move_only_to_visible_nodes_of_the_same_owner(secured: Api) -> None:
    admin = secured.as_("admin")
    mine = admin.node(name="mine", owner="p1")["uuid"]
    also_mine = admin.node(name="also-mine", owner="p1")["uuid"]
    foreign = admin.node(name="foreign", owner="p2")["uuid"]
    port = admin.post("/v1/ports", {"node_uuid": mine, "address": "52:54:00:00:00:01"}).json()
    project_admin = secured.as_("admin", "p1")
    path = f"/v1/ports/{port['uuid']}"
    for target in (foreign, "no-such-node"):
        moved = project_admin.patch(
            path, [{"op": "replace", "path": "/node_uuid", "value": target}]
        )
        assert moved.status_code == 400
        assert fault_of(moved) == (
            f"Unable to apply the requested node_uuid '{target}'. Requested value was invalid."
        )
    # a system admin may not move it across owners either (Ironic)
    across = admin.patch(path, [{"op": "replace", "path": "/node_uuid", "value": foreign}])
    assert across.status_code == 400
    same = project_admin.patch(path, [{"op": "replace", "path": "/node_uuid", "value": also_mine}])
    assert same.status_code == 200


def test_creating_on_someone_elses_node_is_refused_like_on_no_node(secured: Api) -> None:
    secured.as_("admin").node(name="foreign", owner="p2")
    project_admin = secured.as_("admin", "p1")
    for node in ("foreign", "no-such-node"):
        response = project_admin.post(
            "/v1/ports", {"node_uuid": node, "address": "52:54:00:00:00:09"}
        )
        assert response.status_code == 403
        assert (
            fault_of(response)
            == "Access was denied to the following resource: baremetal:port:create"
        )
    missing = secured.as_("admin").post(
        "/v1/ports", {"node_uuid": "no-such-node", "address": "52:54:00:00:00:09"}
    )
    assert missing.status_code == 400


def test_callers_without_roles_get_nothing(secured: Api) -> None:
    secured.as_("admin").node(name="n", owner="p1")
    nobody = secured.as_("", "p1")
    assert nobody.get("/v1/nodes").status_code == 403
    assert nobody.get("/v1/nodes/n").status_code == 404
    response = secured.as_("").get("/v1/nodes")
    assert (
        fault_of(response) == "Access was denied to the following resource: baremetal:node:list_all"
    )


def test_noauth_callers_are_system_admins(api: Api) -> None:
    assert api.post("/v1/chassis", {}).status_code == 201
    assert api.get("/v1/drivers/fake-hardware/vendor_passthru/methods").status_code == 200


def test_a_handler_that_checks_nothing_answers_500(secured: Api) -> None:
    def unchecked(call: Call) -> object:
        return {"secret": "every node"}

    def checked(call: Call) -> object:
        return {"ok": True}

    app = secured.client.app
    app.router.routes.insert(0, Route("/v1/unchecked", endpoint("baremetal:node:get")(unchecked)))
    app.router.routes.insert(0, Route("/v1/checked", endpoint("baremetal:chassis:get")(checked)))
    admin = secured.as_("admin")
    response = admin.get("/v1/unchecked")
    assert response.status_code == 500
    assert "every node" not in response.text
    assert admin.get("/v1/checked").json() == {"ok": True}
    assert secured.as_("reader", "p1").get("/v1/checked").status_code == 403


def test_an_endpoint_with_an_unknown_rule_fails_at_import() -> None:
    with pytest.raises(UnknownRule, match="baremetal:node:self_destruct"):
        endpoint("baremetal:node:self_destruct")
