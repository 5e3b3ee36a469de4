"""PATCH of a resource: which paths a patch may touch, and what it changed.

Errors: ``InvalidInput`` (400) with Ironic's messages for read-only, unknown and
mandatory attributes; ``NotAcceptable`` (406) for a field newer than the version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metalcast.api import jsonpatch
from metalcast.api.schema import Field, check_value, check_version, coerce
from metalcast.api.versions import Version
from metalcast.errors import InvalidInput
from metalcast.secrecy import mask


@dataclass(frozen=True, slots=True)
class Patchable:
    """What PATCH may do to one kind of resource."""

    #: attribute -> field, for every attribute a patch may change
    fields: Mapping[str, Field]
    #: attributes a response shows but a patch may not touch
    readonly: frozenset[str]
    #: the value a removed attribute takes (others become null)
    removed: Mapping[str, object] = field(default_factory=dict)
    #: attributes a patch may not remove
    mandatory: frozenset[str] = frozenset()


def check_paths(operations: Sequence[jsonpatch.Operation], spec: Patchable) -> None:
    """Refuse patches of read-only or unknown attributes (Ironic's messages)."""
    for op in operations:
        root = op.tokens[0]
        if root not in spec.fields:
            if root in spec.readonly or root in ("id", "links"):
                raise InvalidInput(f"'/{root}' is an internal attribute and can not be updated")
            raise InvalidInput(
                f"Adding a new attribute (/{root}) to the root of the resource is not allowed."
            )
        if op.op == "remove" and len(op.tokens) == 1 and root in spec.mandatory:
            raise InvalidInput(f"'/{root}' is a mandatory attribute and can not be removed")


def changes(
    document: Mapping[str, Any],
    body: object,
    *,
    spec: Patchable,
    version: Version,
    keep: Collection[str] = (),
) -> dict[str, Any]:
    """Apply the patch ``body`` to ``document``; the validated changed attributes,
    plus those of ``keep`` an operation names even if their value stays the same.

    Raises:
        InvalidInput: a malformed patch, a forbidden path, a path that does not
            exist, or a resulting value of the wrong type or format.
        NotAcceptable: a changed field newer than ``version``.
    """
    operations = jsonpatch.parse_patch(body)
    check_paths(operations, spec)
    # a patch works on what the client can read: a secret can be replaced, never
    # copied, moved or tested; what it leaves masked is kept as stored
    document = {name: mask(value) for name, value in document.items()}
    after = jsonpatch.apply(document, operations)
    named = {op.tokens[0] for op in operations} & set(keep)
    changed: dict[str, Any] = {}
    for name, field_spec in spec.fields.items():
        value = after.get(name, spec.removed.get(name))
        if value == document.get(name) and name not in named:
            continue
        check_version(name, field_spec, version=version)
        value = coerce(name, value, spec=field_spec)
        check_value(name, value, spec=field_spec)
        changed[name] = value
    return changed
