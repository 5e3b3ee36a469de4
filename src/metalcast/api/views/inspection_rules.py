"""Inspection rules (API 1.96) as Ironic's API shows them.

A rule's arguments may carry secrets (``set-attribute`` of
``/driver_info/ipmi_password``): the value of an action whose path ends in a
secret-looking key is shown as ``******``, other secrets in arguments are masked
as everywhere, and a ``sensitive`` rule shows neither conditions nor actions (null,
as in Ironic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.api.operations import array, nullable, obj, resource, string
from metalcast.api.views.common import iso, links, only
from metalcast.db import tables as t
from metalcast.db.models import InspectionRule
from metalcast.secrecy import MASK, is_secret_key, mask

FIELDS = (
    "uuid",
    "description",
    "priority",
    "phase",
    "sensitive",
    "built_in",
    "conditions",
    "actions",
    "created_at",
    "updated_at",
)
#: what a list shows without ``detail`` (Ironic's default return fields)
LIST_FIELDS = ("uuid", "description")
SORTABLE = frozenset({"id", "uuid", "priority", "phase", "created_at", "updated_at"})
_OPERATION = obj({"op": string(), "args": {"type": ["object", "array"]}}, required=("op", "args"))
RULE = resource(
    "InspectionRule",
    dict.fromkeys(FIELDS),
    table=t.inspection_rules,
    special={
        "built_in": {"type": "boolean"},
        "conditions": nullable(array(_OPERATION)),
        "actions": nullable(array(_OPERATION)),
    },
)


def _secret_path(args: object) -> bool:
    path = args.get("path") if isinstance(args, Mapping) else None
    if isinstance(args, list) and args and isinstance(args[0], str):
        path = args[0]
    if not isinstance(path, str):
        return False
    last = path.strip("/").split("/")[-1].split(".")[-1]
    return is_secret_key(last)


def render_operation(operation: Mapping[str, Any], *, sensitive: bool) -> dict[str, Any]:
    """A condition or action as it may be shown."""
    shown = dict(operation)
    args = operation.get("args")
    if sensitive:
        shown["args"] = MASK
    elif _secret_path(args) and isinstance(args, Mapping):
        shown["args"] = {**mask(dict(args)), "value": MASK}
    elif _secret_path(args) and isinstance(args, list):
        shown["args"] = [*mask(args[:1]), *[MASK] * (len(args) - 1)]
    else:
        shown["args"] = mask(args)
    if "loop" in operation:
        shown["loop"] = MASK if sensitive else mask(operation["loop"])
    return shown


def render_rule(
    rule: InspectionRule, *, base_url: str, fields: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The inspection rule document (``links`` always)."""
    doc: dict[str, Any] = {
        "uuid": rule.uuid,
        "description": rule.description,
        "priority": rule.priority,
        "phase": rule.phase,
        "sensitive": rule.sensitive,
        "built_in": False,
        # as Ironic: a sensitive rule shows neither its conditions nor its actions
        "conditions": None
        if rule.sensitive
        else [render_operation(c, sensitive=False) for c in rule.conditions],
        "actions": None
        if rule.sensitive
        else [render_operation(a, sensitive=False) for a in rule.actions],
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"inspection_rules/{rule.uuid}")
    return doc
