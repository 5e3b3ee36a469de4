"""The objects the persona matrix's actions name, made through the API, for any harness.

:class:`World` creates, as a system administrator, what :data:`policy_matrix.ACTIONS`
work on: the :data:`policy_matrix.NODES` (one owned by the owner project and leased
to the lessee project, the others for the listings) with a port, a portgroup, a
volume connector and target each, a chassis, the leased node's trait and history, an
allocation of each project in :data:`policy_matrix.ALLOCATIONS`, a node the owner
project's allocation took, a deploy template, a runbook of the owner project; with
``identity``, a user, a project and a token of metalcast's ``builtin`` strategy that
belong to none of the personas.
Actions that change or delete something get fresh objects of their own
(:meth:`World.fresh`); :func:`fill` puts their names into an action's path and body.

It speaks to the API through a :data:`Send` (method, path, JSON body) -> response,
so that the same world is built through the ASGI app in unit tests and through a
real server in integration tests.  Project labels (:data:`policy_matrix.OWNER_PROJECT`,
...) become real project ids through ``projects``.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from policy_matrix import ALLOCATIONS, NODES, Action

from metalcast.api.policy.callers import LESSEE_PROJECT, OWNER_PROJECT


class Response(Protocol):
    """What a harness answers (httpx's and requests' responses both are)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


#: one request: (method, path, JSON body or None) -> response
Send = Callable[[str, str, Any], Response]
#: waits until the node with this uuid has finished what a 202 started
Settle = Callable[[str], None]

WALK_PASSWORD = "walked through the matrix"


class World:
    """The objects the actions name, and fresh ones on demand."""

    def __init__(
        self,
        admin: Send,
        *,
        settle: Settle,
        projects: Mapping[str, str] | None = None,
        conductor: str = "cond-1",
        identity: bool = False,
    ) -> None:
        self.admin = admin
        self.settle = settle
        self.projects = dict(projects or {})
        self.conductor = conductor
        self.counter = itertools.count(1)
        self.chassis = self.create("/v1/chassis", {})["uuid"]
        self.nodes = {label: self.node(owner, lessee) for label, (owner, lessee) in NODES.items()}
        self.leased = self.nodes["leased"]
        self.ports = {label: self.port(node) for label, node in self.nodes.items()}
        self.portgroups = {label: self.portgroup(node) for label, node in self.nodes.items()}
        self.connectors = {label: self.connector(node) for label, node in self.nodes.items()}
        self.targets = {label: self.target(node) for label, node in self.nodes.items()}
        self.manage(self.leased)
        self._with(self.leased, "traits/CUSTOM_LISTED")
        history = self.call("GET", f"/v1/nodes/{self.leased}/history")["history"]
        self.event = history[0]["uuid"]
        self.allocations = {label: self.allocation(owner) for label, owner in ALLOCATIONS.items()}
        self.allocated = self.allocated_node()
        self.template = self.deploy_template()
        self.runbook = self.make_runbook()
        self.rule = self.inspection_rule()
        self.webhook = self.make_webhook()
        self.identity: dict[str, str] = self._identity() if identity else {}

    # ----------------------------------------------------------------- requests

    def call(self, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
        """The admin's request; its JSON document (None when it has no body).

        Raises:
            AssertionError: the API did not answer ``status``.
        """
        response = self.admin(method, path, body)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.text else None

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", path, body, status=201)
        return result

    def unique(self) -> int:
        return next(self.counter)

    def project_id(self, label: str | None) -> str | None:
        """The id of the project the matrix calls ``label``."""
        return None if label is None else self.projects.get(label, label)

    # -------------------------------------------------------------------- nodes

    def node(self, owner: str | None = OWNER_PROJECT, lessee: str | None = LESSEE_PROJECT) -> str:
        """A new fake-hardware node; by default owned by the owner project and leased
        to the lessee project."""
        body = {
            "driver": "fake-hardware",
            "owner": self.project_id(owner),
            "lessee": self.project_id(lessee),
        }
        return str(self.create("/v1/nodes", body)["uuid"])

    def manage(self, node: str) -> None:
        self.call("PUT", f"/v1/nodes/{node}/states/provision", {"target": "manage"}, status=202)
        self.settle(node)

    def mac(self) -> str:
        n = self.unique()
        return f"52:54:00:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"

    def port(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "address": self.mac()}
        return str(self.create("/v1/ports", body)["uuid"])

    def portgroup(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "address": self.mac()}
        return str(self.create("/v1/portgroups", body)["uuid"])

    def connector(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "type": "iqn", "connector_id": self.mac()}
        return str(self.create("/v1/volume/connectors", body)["uuid"])

    def target(self, node: str | None = None) -> str:
        body = {
            "node_uuid": node or self.leased,
            "volume_type": "iscsi",
            "boot_index": self.unique(),
            "volume_id": f"v-{self.unique()}",
            "properties": {"auth_password": "chap-secret"},
        }
        return str(self.create("/v1/volume/targets", body)["uuid"])

    # -------------------------------------------------------------- allocations

    def allocation(self, owner: str | None = OWNER_PROJECT) -> str:
        """An allocation of ``owner`` that no node matches: it ends in error."""
        body = {"resource_class": "matrix-none", "owner": self.project_id(owner)}
        allocation = str(self.create("/v1/allocations", body)["uuid"])
        self._processed(allocation)
        return allocation

    def allocated_node(self) -> str:
        """A node of the owner project, leased to the lessee, that an allocation of
        the owner project took."""
        node = self.node()
        resource_class = f"matrix-{self.unique()}"
        patch = [{"op": "add", "path": "/resource_class", "value": resource_class}]
        self.call("PATCH", f"/v1/nodes/{node}", patch)
        self.manage(node)
        self.call("PUT", f"/v1/nodes/{node}/states/provision", {"target": "provide"}, status=202)
        self.settle(node)
        body = {
            "resource_class": resource_class,
            "candidate_nodes": [node],
            "owner": self.project_id(OWNER_PROJECT),
        }
        allocation = str(self.create("/v1/allocations", body)["uuid"])
        state = self._processed(allocation)
        assert state == "active", f"allocation {allocation} of node {node} ended {state}"
        return node

    def _processed(self, allocation: str, timeout: float = 30.0) -> str:
        """The state of ``allocation`` once the conductor has processed it (allocations
        are asynchronous, as in Ironic: a client polls)."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.call("GET", f"/v1/allocations/{allocation}")["state"])
            if state != "allocating":
                return state
            assert time.monotonic() < deadline, f"allocation {allocation} still allocating"
            time.sleep(0.02)

    def deploy_template(self) -> str:
        step = {"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 1}
        body = {"name": f"CUSTOM_T{self.unique()}", "steps": [step]}
        return str(self.create("/v1/deploy_templates", body)["uuid"])

    def make_runbook(self, owner: str | None = OWNER_PROJECT) -> str:
        """A runbook of ``owner`` that resets the (fake) BMC; its name."""
        step = {"interface": "management", "step": "reset_bmc", "order": 1}
        body = {"name": f"CUSTOM_RB{self.unique()}", "steps": [step]}
        body["owner"] = self.project_id(owner)
        name = str(self.create("/v1/runbooks", body)["name"])
        # from 1.112 a runbook runs on a node sharing one of its traits
        self.call("PUT", f"/v1/runbooks/{name}/traits/{name}", status=204)
        return name

    def runbook_node(self) -> dict[str, str]:
        """A manageable node of the owner project, leased to the lessee, with the
        trait of a new runbook of the owner project (``{node}`` and ``{runbook}``)."""
        node, runbook = self.node(), self.make_runbook()
        self.manage(node)
        self._with(node, f"traits/{runbook}")
        return {"node": node, "runbook": runbook}

    def inspection_rule(self) -> str:
        body = {"actions": [{"op": "add-trait", "args": {"name": f"CUSTOM_R{self.unique()}"}}]}
        return str(self.create("/v1/inspection_rules", body)["uuid"])

    def make_webhook(self) -> str:
        body = {"url": f"http://127.0.0.1:9/{self.unique()}", "secret": "world-secret-0123456789"}
        return str(self.create("/v1/webhooks", body)["uuid"])

    # ----------------------------------------------------------------- identity

    def _identity(self) -> dict[str, str]:
        """A user and a project no persona is, and a token of the admin's own."""
        project = self.create("/v1/auth/projects", {"name": "bystanders"})["name"]
        return {"project": project, "user": self.user(), "token": self.token(self.admin)}

    def user(self) -> str:
        body = {"name": f"bystander-{self.unique()}", "password": WALK_PASSWORD}
        return str(self.create("/v1/auth/users", body)["name"])

    def token(self, caller: Send) -> str:
        """A new token of ``caller``'s own (made with ``caller``'s credentials); its id."""
        response = caller("POST", "/v1/auth/tokens", {"description": "matrix"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    # -------------------------------------------------------------------- fresh

    def fresh(self, kind: str | None, caller: Send | None = None) -> dict[str, str]:
        """Placeholders of the objects an action works on (new ones for ``kind``;
        ``own token`` is made by ``caller``)."""
        names = {
            "node": self.leased,
            "port": self.ports["leased"],
            "portgroup": self.portgroups["leased"],
            "connector": self.connectors["leased"],
            "target": self.targets["leased"],
            "chassis": self.chassis,
            "event": self.event,
            "conductor": self.conductor,
            "owner_project": self.project_id(OWNER_PROJECT) or "",
            "allocation": self.allocations["owner's"],
            "allocated": self.allocated,
            "template": self.template,
            "runbook": self.runbook,
            "rule": self.rule,
            "webhook": self.webhook,
            **self.identity,
        }
        if kind == "own token":
            assert caller is not None, "an own token needs the caller"
            names["own_token"] = self.token(caller)
        elif kind is not None:
            names.update(self._make(kind))
        return names

    def _make(self, kind: str) -> dict[str, str]:
        makers: dict[str, Callable[[], dict[str, str]]] = {
            "node": lambda: {"node": self.node()},
            "node with trait": lambda: {"node": self._with(self.node(), "traits/CUSTOM_A")},
            "node with port": lambda: {"node": self._with_port(self.node())},
            "node with vif": lambda: {"node": self._with_vif(self._with_port(self.node()))},
            "port": lambda: {"port": self.port()},
            "portgroup": lambda: {"portgroup": self.portgroup()},
            "connector": lambda: {"connector": self.connector()},
            "target": lambda: {"target": self.target()},
            "chassis": lambda: {"chassis": self.create("/v1/chassis", {})["uuid"]},
            "user": lambda: {"user": self.user()},
            "project": lambda: {"project": self._project()},
            "user with project role": lambda: self._granted(self.identity["project"]),
            "user with system role": lambda: self._granted(None),
            "token": lambda: {"token": self.token(self.admin)},
            "allocation": lambda: {"allocation": self.allocation()},
            "allocated node": lambda: {"allocated": self.allocated_node()},
            "template": lambda: {"template": self.deploy_template()},
            "rule": lambda: {"rule": self.inspection_rule()},
            "runbook": lambda: {"runbook": self.make_runbook()},
            "node with runbook": self.runbook_node,
            "webhook": lambda: {"webhook": self.make_webhook()},
        }
        return makers[kind]()

    def _with(self, node: str, sub: str) -> str:
        self.call("PUT", f"/v1/nodes/{node}/{sub}", status=204)
        return node

    def _with_port(self, node: str) -> str:
        self.port(node)
        return node

    def _with_vif(self, node: str) -> str:
        self.call("POST", f"/v1/nodes/{node}/vifs", {"id": "vif-1"}, status=204)
        return node

    def _project(self) -> str:
        return str(self.create("/v1/auth/projects", {"name": f"walked-{self.unique()}"})["name"])

    def _granted(self, project: str | None) -> dict[str, str]:
        """A new user holding the role the role actions take away."""
        user = self.user()
        if project is None:
            self.call("PUT", f"/v1/auth/system/users/{user}/roles/reader", status=204)
        else:
            self.call("PUT", f"/v1/auth/projects/{project}/users/{user}/roles/member", status=204)
        return {"user": user}


# -------------------------------------------------------------------- the actions


def fill(template: Any, names: Mapping[str, str], world: World) -> Any:
    """``template`` (a path or a body) with its placeholders replaced."""
    if isinstance(template, list):
        return [fill(item, names, world) for item in template]
    if isinstance(template, dict):
        return {k: fill(v, names, world) for k, v in template.items()}
    if not isinstance(template, str):
        return template
    if template == "{unique_int}":
        return world.unique()
    values = {
        **names,
        "unique": str(world.unique()),
        "unique_mac": world.mac(),
        "unique_uuid": str(uuid.uuid4()),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


class Prepared(NamedTuple):
    """An action made concrete."""

    path: str
    body: Any
    #: the placeholders' values (which node, port, ...)
    names: dict[str, str]


def prepare(world: World, action: Action, caller: Send | None = None) -> Prepared:
    """The path and body of ``action`` made concrete, on fresh objects if it needs
    them (an own token made by ``caller``)."""
    names = world.fresh(action.fresh, caller)
    return Prepared(fill(action.path, names, world), fill(action.body, names, world), names)
