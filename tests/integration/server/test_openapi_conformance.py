"""schemathesis against a live ``metalcast server``: no 5xx, and no answer that
contradicts the OpenAPI description the server serves at ``/v1/openapi.json``.

Two servers: ``noauth`` on loopback (every caller an administrator), and ``builtin``
with a system administrator's API token, so that the identity API and the 401s of
the description are exercised too.  Each runs every operation of the description
with a bounded number of generated requests (hypothesis: a fixed seed, derandomized,
no example database, no shrinking), half of them aimed at objects that exist (a node,
its port, portgroup, volume connector and target, a chassis, a history event, a
user, a project), the other half at whatever the description allows.  Operations that
delete run last so the objects are there for the others.

A failure lists, per operation, what schemathesis found and how to reproduce it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.timeout(1200)

#: conftest's ``MetalcastServer`` (``url``, ``stdout_path``, ``logs()``)
MetalcastServer = Any
StartServer = Callable[..., contextlib.AbstractContextManager[Any]]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: generated requests per operation (about 120 operations)
NOAUTH_EXAMPLES = 30
BUILTIN_EXAMPLES = 10
SEED = 20260109
LATEST = {"X-OpenStack-Ironic-API-Version": "latest"}
#: generated webhooks (any URL the description allows) are stored but never sent to
NO_WEBHOOKS = {"METALCAST_EVENTS__WEBHOOK_INTERVAL": "0"}
BUILTIN = {"METALCAST_API__AUTH_STRATEGY": "builtin", **NO_WEBHOOKS}


# --------------------------------------------------------------------- the objects


@dataclass(frozen=True)
class World:
    """Objects that exist: path parameter -> identifiers that name one."""

    known: Mapping[str, tuple[str, ...]]


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def _until(read: Callable[[], list[Any]], *, attempts: int = 300) -> list[Any]:
    """What ``read`` returns once it is not empty (the conductor works in the
    background; there is no event to wait on over HTTP)."""
    for _ in range(attempts):
        found = read()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the conductor did not get there in time")


def build_world(client: httpx.Client) -> World:
    """A chassis, a manageable node in it (with a trait, a VIF, a port, a portgroup, a
    volume connector and target, BIOS settings and history), an allocation, a deploy
    template, and what identifies each."""
    chassis = _created(client.post("/v1/chassis", json={"description": "rack 1"}))["uuid"]
    node = _created(
        client.post(
            "/v1/nodes",
            json={"driver": "fake-hardware", "name": "node-0", "chassis_uuid": chassis},
        )
    )["uuid"]
    assert client.put(f"/v1/nodes/{node}/traits/CUSTOM_GPU").status_code == 204
    group = _created(
        client.post(
            "/v1/portgroups",
            json={"node_uuid": node, "name": "bond0", "address": "52:54:00:00:00:10"},
        )
    )["uuid"]
    port = _created(
        client.post(
            "/v1/ports",
            json={"node_uuid": node, "address": "52:54:00:00:00:01", "portgroup_uuid": group},
        )
    )["uuid"]
    assert client.post(f"/v1/nodes/{node}/vifs", json={"id": "vif-1"}).status_code == 204
    connector = _created(
        client.post(
            "/v1/volume/connectors",
            json={"node_uuid": node, "type": "iqn", "connector_id": "iqn.2026-01.org.example:1"},
        )
    )["uuid"]
    target = _created(
        client.post(
            "/v1/volume/targets",
            json={"node_uuid": node, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"},
        )
    )["uuid"]
    # verifying the node fills its BIOS settings cache (and its history)
    manage = client.put(f"/v1/nodes/{node}/states/provision", json={"target": "manage"})
    assert manage.status_code == 202, manage.text
    settings = _until(lambda: client.get(f"/v1/nodes/{node}/bios").json()["bios"])
    event = client.get(f"/v1/nodes/{node}/history").json()["history"][0]["uuid"]
    conductor = client.get("/v1/conductors").json()["conductors"][0]["hostname"]
    # no node has this resource class: the allocation stays, in state error
    allocation = _created(
        client.post("/v1/allocations", json={"name": "alloc-0", "resource_class": "none-such"})
    )["uuid"]
    step = {"interface": "raid", "step": "apply_configuration", "args": {}, "priority": 10}
    template = _created(
        client.post("/v1/deploy_templates", json={"name": "CUSTOM_RAID1", "steps": [step]})
    )["uuid"]
    reset = {"interface": "management", "step": "reset_bmc", "args": {}, "order": 1}
    runbook = _created(client.post("/v1/runbooks", json={"name": "CUSTOM_RB", "steps": [reset]}))
    return World(
        {
            "node": (node, "node-0"),
            "chassis": (chassis,),
            "port": (port,),
            "portgroup": (group, "bond0"),
            "ident": (connector, target),
            "event": (event,),
            "hostname": (conductor,),
            "driver": ("fake-hardware",),
            "trait": ("CUSTOM_GPU",),
            "vif": ("vif-1",),
            "setting": tuple(setting["name"] for setting in settings[:3]),
            "method": ("list_bmcs",),
            "role": ("reader", "member", "admin"),
            "allocation": (allocation, "alloc-0"),
            "deploy_template": (template, "CUSTOM_RAID1"),
            "runbook": (runbook["uuid"], "CUSTOM_RB"),
        }
    )


def add_identities(client: httpx.Client, world: World) -> World:
    """A project and a user with a role on it (builtin only)."""
    project = _created(client.post("/v1/auth/projects", json={"name": "tenant-a"}))["id"]
    user = _created(
        client.post(
            "/v1/auth/users",
            json={"name": "alice", "password": "alice's long password", "default_project": project},
        )
    )["id"]
    role = client.put(f"/v1/auth/projects/{project}/users/{user}/roles/member")
    assert role.status_code == 204, role.text
    spare = _created(client.post("/v1/auth/tokens", json={"description": "to be revoked"}))
    return World(
        {
            **world.known,
            "project": (project, "tenant-a"),
            "user": (user, "alice"),
            "token": (spare["id"],),
        }
    )


# ------------------------------------------------------------------------ the run


def _order(operation: Any) -> tuple[bool, str]:
    return (operation.method.upper() == "DELETE", operation.label)


def _cases(operation: Any, world: World) -> st.SearchStrategy[Any]:
    """The description's examples, requests that fit the description (positive) and
    requests that do not (negative: they must be refused with a documented 4xx, never
    a 5xx); for each kind, ones aimed at objects that exist, at the newest version
    (where every endpoint and field is) or at whatever version the description
    allows."""
    names = re.findall(r"\{(\w+)\}", operation.path)
    aimed = bool(names) and all(name in world.known for name in names)
    real = st.fixed_dictionaries(
        {name: st.sampled_from(world.known[name]) for name in names if name in world.known}
    )
    first = {name: world.known[name][0] for name in names if name in world.known}
    kinds = operation.schema.get_strategies_from_examples(
        operation, path_parameters=first if aimed else None, headers=LATEST
    )
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        if mode is GenerationMode.NEGATIVE and not _negatable(operation):
            continue
        kinds.append(operation.as_strategy(generation_mode=mode))
        if aimed:
            kinds.append(real.flatmap(_at(operation, mode, headers={})))
            kinds.append(real.flatmap(_at(operation, mode, headers=LATEST)))
    return st.one_of(kinds)


def _at(
    operation: Any, mode: GenerationMode, *, headers: Mapping[str, str]
) -> Callable[[dict[str, str]], st.SearchStrategy[Any]]:
    def cases(params: dict[str, str]) -> st.SearchStrategy[Any]:
        return operation.as_strategy(
            generation_mode=mode, path_parameters=params, headers=dict(headers) or None
        )

    return cases


def _negatable(operation: Any) -> bool:
    """Whether a request can break the description: it has parameters or a body."""
    return operation.path != "/"


def conformance_problems(
    server: MetalcastServer, world: World, *, examples: int, headers: Mapping[str, str]
) -> list[str]:
    """Run every operation of the served description; what went wrong, per operation."""
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) > 100
    problems = []
    for operation in operations:
        try:
            _run(operation, _cases(operation, world), examples=examples, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's findings
            problems.append(f"=== {operation.label}\n{exc}")
    return problems


def _run(
    operation: Any, cases: st.SearchStrategy[Any], *, examples: int, headers: Mapping[str, str]
) -> None:
    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.seed(SEED)
    @hypothesis.given(case=cases)
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, headers=dict(headers))

    check()


def _report(problems: list[str]) -> str:
    return f"{len(problems)} operation(s) failed:\n\n" + "\n\n".join(problems)


# ------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def noauth_server(start_metalcast_server: StartServer) -> Iterator[MetalcastServer]:
    with start_metalcast_server(env=NO_WEBHOOKS) as server:
        yield server


@pytest.fixture(scope="module")
def builtin_server(start_metalcast_server: StartServer) -> Iterator[MetalcastServer]:
    with start_metalcast_server(env=BUILTIN) as server:
        yield server


def _first_admin_password(server: MetalcastServer) -> str:
    found = re.findall(r"^\s+password: (\S+)$", server.stdout_path.read_text(), re.MULTILINE)
    assert len(found) == 1, server.logs()
    return found[0]


def test_noauth_server_answers_as_described(noauth_server: MetalcastServer) -> None:
    with httpx.Client(base_url=noauth_server.url, headers=LATEST) as client:
        world = build_world(client)
    problems = conformance_problems(noauth_server, world, examples=NOAUTH_EXAMPLES, headers={})
    assert not problems, _report(problems)


def test_builtin_server_answers_as_described(builtin_server: MetalcastServer) -> None:
    """With a system administrator's token: the identity API too."""
    password = _first_admin_password(builtin_server)
    with httpx.Client(
        base_url=builtin_server.url, headers=LATEST, auth=("admin", password)
    ) as client:
        token = _created(client.post("/v1/auth/tokens", json={"system": True}))["token"]
        world = add_identities(client, build_world(client))
    problems = conformance_problems(
        builtin_server, world, examples=BUILTIN_EXAMPLES, headers={"X-Auth-Token": token}
    )
    assert not problems, _report(problems)


def test_without_credentials_every_protected_operation_is_401(
    builtin_server: MetalcastServer,
) -> None:
    """The description says which operations need credentials: they all answer 401
    without them, in Ironic's error shape, and the public ones do not."""
    document = httpx.get(f"{builtin_server.url}/v1/openapi.json").json()
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{\w+\}", "x", path)
        for method, operation in item.items():
            response = httpx.request(method.upper(), f"{builtin_server.url}{concrete}")
            if operation.get("security") == []:
                assert response.status_code != 401, f"{method} {path}"
            else:
                assert response.status_code == 401, f"{method} {path}: {response.text}"
                assert "error_message" in response.json()
