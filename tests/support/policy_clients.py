"""The persona matrix's actions through real clients: openstacksdk and ``baremetal``.

:func:`through_sdk` performs an action of :data:`policy_matrix.ACTIONS` with an
openstacksdk connection: with the SDK's own call where openstacksdk has one
(:data:`SDK_CALLS`), otherwise as a raw request through the same connection's session,
so with the persona's real credentials either way.  :func:`through_cli` runs the
unmodified ``baremetal`` command for the actions of :data:`CLI_COMMANDS`.  Both answer
an :class:`Answer`; :func:`verdict` says what is wrong with it against the matrix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from openstack import exceptions
from openstack.connection import Connection
from policy_matrix import Action, Outcome

VERSION = {"X-OpenStack-Ironic-API-Version": "latest"}
BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"
FORBIDDEN = "Access was denied to the following resource: "


@dataclass(frozen=True)
class Answer:
    """What a client got: an HTTP status (the action's own on success) and the text."""

    status: int
    text: str = ""
    #: what the client printed or returned (a CLI's stdout, an SDK object)
    result: Any = None


def verdict(action: Action, expected: Outcome, answer: Answer) -> str | None:
    """What is wrong with ``answer`` (None: nothing)."""
    if expected is Outcome.ALLOWED:
        return None if answer.status == action.status else f"{answer.status} {answer.text[:300]}"
    if answer.status != expected.value:
        return f"{answer.status} {answer.text[:300]}"
    if expected is Outcome.FORBIDDEN and FORBIDDEN not in answer.text:
        return f"403 without Ironic's message: {answer.text[:300]}"
    return None


# --------------------------------------------------------------------- openstacksdk

Names = Mapping[str, str]
#: (connection, the objects' names, the action's body made concrete) -> result
SdkCall = Callable[[Connection, Names, Any], Any]


def _bm(conn: Connection) -> Any:
    return conn.baremetal


def _node_calls() -> dict[str, SdkCall]:
    return {
        "list nodes": lambda c, n, b: list(_bm(c).nodes()),
        "list nodes detail": lambda c, n, b: list(_bm(c).nodes(details=True)),
        "create node": lambda c, n, b: _bm(c).create_node(**b),
        "show node": lambda c, n, b: _bm(c).get_node(n["node"]),
        "delete node": lambda c, n, b: _bm(c).delete_node(n["node"], ignore_missing=False),
        "power": lambda c, n, b: _bm(c).set_node_power_state(n["node"], b["target"]),
        "provision": lambda c, n, b: _bm(c).set_node_provision_state(n["node"], b["target"]),
        "get console": lambda c, n, b: _bm(c).get_node_console(n["node"]),
        "set console": lambda c, n, b: _bm(c).enable_node_console(n["node"]),
        "set maintenance": lambda c, n, b: _bm(c).set_node_maintenance(n["node"], b["reason"]),
        "clear maintenance": lambda c, n, b: _bm(c).unset_node_maintenance(n["node"]),
        "validate": lambda c, n, b: _bm(c).validate_node(n["node"], required=()),
        "get boot device": lambda c, n, b: _bm(c).get_node_boot_device(n["node"]),
        "supported boot devices": lambda c, n, b: _bm(c).get_node_supported_boot_devices(n["node"]),
        "set boot device": lambda c, n, b: _bm(c).set_node_boot_device(n["node"], b["boot_device"]),
        "inject nmi": lambda c, n, b: _bm(c).inject_nmi_to_node(n["node"]),
        "set traits": lambda c, n, b: _bm(c).set_node_traits(n["node"], b["traits"]),
        "add trait": lambda c, n, b: _bm(c).add_node_trait(n["node"], "CUSTOM_B"),
        "remove trait": lambda c, n, b: _bm(c).remove_node_trait(
            n["node"], "CUSTOM_A", ignore_missing=False
        ),
        "list vifs": lambda c, n, b: _bm(c).list_node_vifs(n["node"]),
        "attach vif": lambda c, n, b: _bm(c).attach_vif_to_node(
            n["node"], b["id"], retry_on_conflict=False
        ),
        "detach vif": lambda c, n, b: _bm(c).detach_vif_from_node(
            n["node"], "vif-1", ignore_missing=False
        ),
        "node vendor methods": lambda c, n, b: _bm(c).list_node_vendor_passthru(n["node"]),
        "node vendor passthru": lambda c, n, b: _bm(c).call_node_vendor_passthru(
            n["node"], "POST", "get_state", body=b
        ),
    }


def _resource_calls(kind: str, sdk: str, plural: str) -> dict[str, SdkCall]:
    """list, list detail, show, create, update, delete of one kind of resource."""

    def proxy(conn: Connection, verb: str) -> Any:
        return getattr(_bm(conn), verb.format(sdk))

    return {
        f"list {kind}s": lambda c, n, b: list(getattr(_bm(c), plural)()),
        f"list {kind}s detail": lambda c, n, b: list(getattr(_bm(c), plural)(details=True)),
        f"show {kind}": lambda c, n, b: proxy(c, "get_{}")(n[kind]),
        f"create {kind}": lambda c, n, b: proxy(c, "create_{}")(**b),
        f"update {kind}": lambda c, n, b: proxy(c, "patch_{}")(n[kind], b),
        f"delete {kind}": lambda c, n, b: proxy(c, "delete_{}")(n[kind], ignore_missing=False),
    }


def _other_calls() -> dict[str, SdkCall]:
    return {
        "PATCH node": lambda c, n, b: _bm(c).patch_node(n["node"], b, retry_on_conflict=False),
        "list chassis": lambda c, n, b: list(_bm(c).chassis()),
        "list chassis detail": lambda c, n, b: list(_bm(c).chassis(details=True)),
        "show chassis": lambda c, n, b: _bm(c).get_chassis(n["chassis"]),
        "create chassis": lambda c, n, b: _bm(c).create_chassis(**b),
        "update chassis": lambda c, n, b: _bm(c).patch_chassis(n["chassis"], b),
        "delete chassis": lambda c, n, b: _bm(c).delete_chassis(n["chassis"], ignore_missing=False),
        "list drivers": lambda c, n, b: list(_bm(c).drivers()),
        "show driver": lambda c, n, b: _bm(c).get_driver("fake-hardware"),
        "driver vendor methods": lambda c, n, b: _bm(c).list_driver_vendor_passthru(
            "fake-hardware"
        ),
        "driver vendor passthru": lambda c, n, b: _bm(c).call_driver_vendor_passthru(
            "fake-hardware", "GET", "list_bmcs"
        ),
        "list conductors": lambda c, n, b: list(_bm(c).conductors()),
        "show conductor": lambda c, n, b: _bm(c).get_conductor(n["conductor"]),
        "list runbooks": lambda c, n, b: list(_bm(c).runbooks()),
        "show runbook": lambda c, n, b: _bm(c).get_runbook(n["runbook"]),
        "create runbook": lambda c, n, b: _bm(c).create_runbook(**b),
        "update runbook": lambda c, n, b: _bm(c).patch_runbook(n["runbook"], b),
        "delete runbook": lambda c, n, b: _bm(c).delete_runbook(n["runbook"], ignore_missing=False),
    }


#: action name -> the openstacksdk call that performs it ("PATCH node" stands for
#: every "PATCH node /field"); the other actions go through the session as they are
SDK_CALLS: dict[str, SdkCall] = {
    **_node_calls(),
    **_resource_calls("port", "port", "ports"),
    **_resource_calls("portgroup", "port_group", "port_groups"),
    **_resource_calls("connector", "volume_connector", "volume_connectors"),
    **_resource_calls("target", "volume_target", "volume_targets"),
    **_other_calls(),
}


def sdk_call(action: Action) -> SdkCall | None:
    """The openstacksdk call for ``action``, None when the SDK has none."""
    key = "PATCH node" if action.name.startswith("PATCH node ") else action.name
    return SDK_CALLS.get(key)


def raw(conn: Connection, url: str, method: str, path: str, body: Any = None) -> Answer:
    """``method path`` through ``conn``'s session (its credentials), not the SDK's
    resource layer."""
    kwargs: dict[str, Any] = {"headers": VERSION, "raise_exc": False}
    if body is not None:
        kwargs["json"] = body
    response = _bm(conn).request(f"{url}{path}", method, **kwargs)
    return Answer(response.status_code, response.text, response)


def through_sdk(
    conn: Connection, url: str, action: Action, *, path: str, body: Any, names: Names
) -> Answer:
    """Perform ``action`` (its path and body made concrete, on ``names``) as
    ``conn``'s user."""
    call = sdk_call(action)
    if call is None:
        return raw(conn, url, action.method, path, body)
    try:
        result = call(conn, names, body)
    except exceptions.HttpException as exc:
        return Answer(exc.status_code or 0, f"{exc.details} {exc}", None)
    return Answer(action.status, "", result)


# ------------------------------------------------------------------ the baremetal CLI

#: action name -> the ``baremetal`` command performing it (placeholders as in
#: policy_matrix; ``{unique_mac}`` a new MAC address)
CLI_COMMANDS: dict[str, tuple[str, ...]] = {
    "list nodes": ("node", "list", "-f", "json"),
    "show node": ("node", "show", "{node}", "-f", "json"),
    "PATCH node /extra/a": ("node", "set", "{node}", "--extra", "a=1"),
    "power": ("node", "power", "on", "{node}"),
    "add trait": ("node", "add", "trait", "{node}", "CUSTOM_B"),
    "history": ("node", "history", "list", "{node}", "-f", "json"),
    "create port": ("port", "create", "{unique_mac}", "--node", "{node}", "-f", "json"),
    "update portgroup": ("port", "group", "set", "{portgroup}", "--extra", "a=1"),
    "delete connector": ("volume", "connector", "delete", "{connector}"),
    "show target": ("volume", "target", "show", "{target}", "-f", "json"),
    "list chassis": ("chassis", "list", "-f", "json"),
    "show driver": ("driver", "show", "fake-hardware", "-f", "json"),
    "list conductors": ("conductor", "list", "-f", "json"),
    "show runbook": ("runbook", "show", "{runbook}", "-f", "json"),
    "clean with runbook": ("node", "clean", "{node}", "--runbook", "{runbook}"),
}
_HTTP_STATUS = re.compile(r"\(HTTP (\d{3})\)")


def cli_auth(
    url: str, *, token: str | None = None, user: str = "", password: str = ""
) -> list[str]:
    """The ``baremetal`` options of the ``admin_token`` (with ``token``) or the
    ``http_basic`` auth type."""
    if token is not None:
        return ["--os-endpoint", url, "--os-auth-type", "admin_token", "--os-token", token]
    return [
        "--os-endpoint", url, "--os-auth-type", "http_basic",
        "--os-username", user, "--os-password", password,
    ]  # fmt: skip


def through_cli(
    action: Action,
    argv: Sequence[str],
    auth: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
) -> Answer:
    """Run ``baremetal`` for ``action`` with no ``OS_*`` variable but those of
    ``env``; the HTTP status its error names, or the action's status when it
    succeeded."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OS_")}, **(env or {})}
    done = subprocess.run(
        [BAREMETAL, *auth, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode == 0:
        return Answer(action.status, done.stderr, done.stdout)
    found = _HTTP_STATUS.search(done.stderr)
    return Answer(int(found.group(1)) if found else 0, done.stderr, done.stdout)


# ------------------------------------------------------------------------ waiting

SETTLE_TIMEOUT = 60.0


def settle(admin: httpx.Client, node: str) -> None:
    """Wait until what a 202 started on ``node`` is over (by polling, as the clients'
    own ``--wait`` does: the API has no event to wait for).

    Raises:
        AssertionError: the node is still busy after :data:`SETTLE_TIMEOUT` seconds.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    busy = ("reservation", "target_power_state", "target_provision_state")
    while True:
        doc = admin.get(f"/v1/nodes/{node}").json()
        if all(doc[key] is None for key in busy):
            return
        assert time.monotonic() < deadline, f"node {node} still busy: {doc}"
        time.sleep(0.05)
