"""The JSON-Patch applier: examples from RFC 6902 and properties."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalcast.api.jsonpatch import PatchError, apply, parse_patch, parse_pointer

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.text(max_size=4), json_values, max_size=4)
keys = st.text(min_size=1, max_size=6)


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def run(doc: dict[str, Any], *ops: dict[str, Any]) -> dict[str, Any]:
    return apply(doc, parse_patch(list(ops)))


# --------------------------------------------------------------------------- examples


def test_add_replace_remove_on_objects() -> None:
    doc = {"a": {"b": 1}}
    assert run(doc, {"op": "add", "path": "/a/c", "value": 2}) == {"a": {"b": 1, "c": 2}}
    assert run(doc, {"op": "replace", "path": "/a/b", "value": 3}) == {"a": {"b": 3}}
    assert run(doc, {"op": "remove", "path": "/a/b"}) == {"a": {}}
    assert run(doc, {"op": "add", "path": "/a/b", "value": 9}) == {"a": {"b": 9}}


def test_arrays() -> None:
    doc = {"l": [1, 2]}
    assert run(doc, {"op": "add", "path": "/l/1", "value": 9}) == {"l": [1, 9, 2]}
    assert run(doc, {"op": "add", "path": "/l/-", "value": 9}) == {"l": [1, 2, 9]}
    assert run(doc, {"op": "add", "path": "/l/2", "value": 9}) == {"l": [1, 2, 9]}
    assert run(doc, {"op": "remove", "path": "/l/0"}) == {"l": [2]}
    assert run(doc, {"op": "replace", "path": "/l/1", "value": 0}) == {"l": [1, 0]}
    for bad in ("/l/3", "/l/01", "/l/x", "/l/-1"):
        with pytest.raises(PatchError):
            run(doc, {"op": "add", "path": bad, "value": 0})
    with pytest.raises(PatchError):
        run(doc, {"op": "remove", "path": "/l/2"})


def test_escaped_pointers() -> None:
    assert parse_pointer("/a~1b/c~0d") == ["a/b", "c~d"]
    assert parse_pointer("") == []
    assert run({}, {"op": "add", "path": "/a~1b", "value": 1}) == {"a/b": 1}


def test_missing_paths_are_errors() -> None:
    with pytest.raises(PatchError, match="does not exist"):
        run({"a": 1}, {"op": "replace", "path": "/b", "value": 1})
    with pytest.raises(PatchError, match="does not exist"):
        run({"a": 1}, {"op": "remove", "path": "/b"})
    with pytest.raises(PatchError, match="does not exist"):
        run({"a": 1}, {"op": "add", "path": "/x/y", "value": 1})
    with pytest.raises(PatchError, match="neither an object nor a list"):
        run({"a": 1}, {"op": "add", "path": "/a/b", "value": 1})


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add", "path": "/a", "value": 1},
        [{"op": "copy", "path": "/a", "from": "/b"}],
        [{"op": "test", "path": "/a", "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/", "value": 1}],
        [{"op": "add", "path": 5, "value": 1}],
        [{"op": "replace", "path": "/a"}],
        [{"op": "add", "path": "/a", "value": 1, "extra": True}],
        ["add /a"],
    ],
)
def test_malformed_patches(patch: object) -> None:
    with pytest.raises(PatchError):
        parse_patch(patch)


def test_a_failing_patch_changes_nothing() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        run(doc, {"op": "replace", "path": "/a", "value": 2}, {"op": "remove", "path": "/zz"})
    assert doc == {"a": 1}


# --------------------------------------------------------------------------- properties


@given(documents, keys, json_values)
def test_add_then_remove_a_fresh_key_restores_the_document(
    doc: dict[str, Any], key: str, value: Any
) -> None:
    if key in doc:
        return
    path = "/" + escape(key)
    added = run(doc, {"op": "add", "path": path, "value": value})
    assert added[key] == value
    assert run(added, {"op": "remove", "path": path}) == doc


@given(documents, keys, json_values)
def test_replace_on_a_missing_path_is_an_error(doc: dict[str, Any], key: str, value: Any) -> None:
    if key in doc:
        return
    with pytest.raises(PatchError):
        run(doc, {"op": "replace", "path": "/" + escape(key), "value": value})


@given(documents, keys, json_values)
def test_applying_never_mutates_the_input(doc: dict[str, Any], key: str, value: Any) -> None:
    before = copy.deepcopy(doc)
    path = "/" + escape(key)
    result = run(doc, {"op": "add", "path": path, "value": value})
    assert doc == before
    if isinstance(value, dict | list):
        # the result holds a copy of the value, not the caller's object
        assert result[key] is not value


@given(documents, keys, json_values, json_values)
def test_replace_sets_exactly_one_key(
    doc: dict[str, Any], key: str, first: Any, second: Any
) -> None:
    path = "/" + escape(key)
    with_key = run(doc, {"op": "add", "path": path, "value": first})
    replaced = run(with_key, {"op": "replace", "path": path, "value": second})
    assert replaced == {**with_key, key: second}
