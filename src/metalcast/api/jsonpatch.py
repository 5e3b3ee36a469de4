"""A small JSON-Patch (RFC 6902) applier: ``add``, ``remove`` and ``replace``.

Those are the operations Ironic accepts in PATCH requests.  Paths are JSON Pointers
(RFC 6901, ``~0`` for ``~`` and ``~1`` for ``/``).  :func:`apply` works on a deep
copy: the input document is never changed, and a patch whose any operation fails
changes nothing.

Errors: :class:`PatchError` (``InvalidInput``, 400) saying which operation failed
and why.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metalcast.errors import InvalidInput

OPS = ("add", "remove", "replace")
_MISSING = object()
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")


class PatchError(InvalidInput):
    """A patch is malformed or cannot be applied to the document."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One parsed patch operation."""

    op: str
    path: str
    value: Any = None

    @property
    def tokens(self) -> list[str]:
        return parse_pointer(self.path)


def parse_patch(patch: object) -> list[Operation]:
    """Validate the shape of a patch document (a list of operation objects).

    Raises:
        PatchError: not a list, an unknown op, a bad path, a missing value.
    """
    if not isinstance(patch, list):
        raise PatchError("The patch must be a JSON list of operations.")
    return [_parse_operation(item) for item in patch]


def _parse_operation(item: object) -> Operation:
    if not isinstance(item, dict):
        # the item is not echoed: it may hold a secret
        raise PatchError(f"Each patch operation must be a JSON object, got {type(item).__name__}.")
    unknown = set(item) - {"op", "path", "value"}
    if unknown:
        raise PatchError(f"Unknown key(s) in patch operation: {', '.join(sorted(unknown))}.")
    op, path = item.get("op"), item.get("path")
    if op not in OPS:
        raise PatchError(
            f"Invalid input for field/attribute op. Value: '{op}'. "
            f"Value should be one of: {', '.join(OPS)}"
        )
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise PatchError(f"Invalid patch path '{path}': it must be a JSON pointer like '/name'.")
    if op != "remove" and "value" not in item:
        raise PatchError("'add' and 'replace' operations need a value")
    return Operation(op=op, path=path, value=item.get("value"))


def parse_pointer(path: str) -> list[str]:
    """Split a JSON Pointer into unescaped tokens.  ``""`` is the whole document."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"Invalid JSON pointer '{path}': it must start with '/'.")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def apply(document: Mapping[str, Any], operations: Sequence[Operation]) -> dict[str, Any]:
    """A patched deep copy of ``document``.

    Raises:
        PatchError: an operation's path does not exist (``remove``, ``replace``, or
            the parent for ``add``) or an index is out of range.
    """
    result = copy.deepcopy(dict(document))
    for operation in operations:
        _apply_one(result, operation)
    return result


def _apply_one(doc: dict[str, Any], operation: Operation) -> None:
    tokens = operation.tokens
    parent = _resolve(doc, tokens[:-1], path=operation.path)
    key = tokens[-1]
    if isinstance(parent, dict):
        _apply_to_object(parent, key, operation=operation)
    elif isinstance(parent, list):
        _apply_to_array(parent, key, operation=operation)
    else:
        raise PatchError(
            f"Cannot apply '{operation.op}' at '{operation.path}': its parent "
            "is neither an object nor a list."
        )


def _apply_to_object(parent: dict[str, Any], key: str, *, operation: Operation) -> None:
    if operation.op != "add" and key not in parent:
        raise PatchError(f"Cannot {operation.op} '{operation.path}': the path does not exist.")
    if operation.op == "remove":
        del parent[key]
    else:
        parent[key] = copy.deepcopy(operation.value)


def _apply_to_array(parent: list[Any], key: str, *, operation: Operation) -> None:
    if key == "-" and operation.op == "add":
        parent.append(copy.deepcopy(operation.value))
        return
    index = _index(key, operation.path)
    upper = len(parent) if operation.op == "add" else len(parent) - 1
    if index > upper:
        raise PatchError(
            f"Cannot {operation.op} '{operation.path}': index {index} is out of range."
        )
    if operation.op == "add":
        parent.insert(index, copy.deepcopy(operation.value))
    elif operation.op == "remove":
        del parent[index]
    else:
        parent[index] = copy.deepcopy(operation.value)


def _index(token: str, path: str) -> int:
    # ASCII digits only (str.isdigit also takes '²', which int() refuses), and few
    # enough of them for int(): no list is that long anyway
    if _INDEX.fullmatch(token) is None:
        raise PatchError(f"Invalid list index '{token[:40]}' in '{path[:200]}'.")
    return int(token)


def _resolve(doc: Any, tokens: list[str], *, path: str) -> Any:
    current = doc
    for token in tokens:
        if isinstance(current, dict):
            current = current.get(token, _MISSING)
        elif isinstance(current, list):
            index = _index(token, path)
            current = current[index] if index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING:
            raise PatchError(f"Cannot apply patch at '{path}': the path does not exist.")
    return current
