"""Request-body validation: declared fields, types, formats, version gates.

Each resource declares its writable fields as a mapping of name to :class:`Field`.
:func:`validate_body` checks a POST body against it; :func:`check_value` checks one
value (PATCH results use it too).  Every message names the field and says what it
accepts.

Errors: ``InvalidInput`` (400); ``NotAcceptable`` (406) for a field the requested
microversion does not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from metalcast.api.limits import INT32, MAX_DEPTH, nesting
from metalcast.api.versions import FEATURES, Version, allows
from metalcast.db.repository import is_logical_name, is_uuid, is_uuid_like
from metalcast.db.rows import echo, not_canonical
from metalcast.errors import InvalidInput, NotAcceptable
from metalcast.secrecy import MASK, is_secret_key, mask, scrub_text

Check = Callable[[str, Any], None]

_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "boolean": (bool,),
    "integer": (int,),
    "list": (list,),
    "any": (object,),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One writable attribute of a resource."""

    kind: str = "string"
    nullable: bool = True
    max_length: int | None = 255
    #: the microversion feature that introduced the field (None: always there)
    feature: str | None = None
    #: an extra check of the value's format, raising InvalidInput
    check: Check | None = None
    #: the range of an integer (default: what an integer column holds)
    minimum: int = INT32[0]
    maximum: int = INT32[1]
    #: a boolean also given as a string ("True", "false", "1", "no"...), as Ironic
    #: takes node flags and python-ironicclient's ``node set --retired`` sends them
    strings: bool = False


#: the string spellings of a boolean Ironic accepts (oslo's bool_from_string)
_TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})


def coerce(name: str, value: object, *, spec: Field) -> object:
    """``value`` as the field stores it: a boolean given as one of its string
    spellings (fields with ``strings``) becomes a boolean.  Raises InvalidInput for
    another string."""
    if not (spec.strings and spec.kind == "boolean" and isinstance(value, str)):
        return value
    word = value.strip().lower()
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise InvalidInput(
        f"Invalid value for field '{name}': {_shown(name, value)} is not a boolean (true or false)."
    )


def describe(value: object) -> str:
    """A value as JSON, for messages: its secrets masked (:func:`metalcast.secrecy.mask`),
    cut short when long."""
    try:
        text = orjson.dumps(mask(value)).decode()
    except TypeError:
        text = scrub_text(repr(value))
    return echo(text)


def _shown(name: str, value: object) -> str:
    """A value for a message: described, unless it is a secret or holds one."""
    return MASK if is_secret_key(name) else describe(value)


def check_value(name: str, value: object, *, spec: Field) -> None:
    """Check one value against its field.  Raises ``InvalidInput``."""
    if value is None:
        if not spec.nullable:
            raise InvalidInput(f"Invalid value for field '{name}': it can not be null.")
        return
    expected = _TYPES[spec.kind]
    wrong_bool = isinstance(value, bool) and spec.kind == "integer"
    if not isinstance(value, expected) or wrong_bool:
        raise InvalidInput(
            f"Invalid value for field '{name}': {_shown(name, value)} is not of type '{spec.kind}'."
        )
    if isinstance(value, str) and spec.max_length is not None and len(value) > spec.max_length:
        raise InvalidInput(
            f"Invalid value for field '{name}': it is longer than {spec.max_length} characters."
        )
    _check_size(name, value, spec=spec)
    if spec.check is not None:
        spec.check(name, value)


def _check_size(name: str, value: object, *, spec: Field) -> None:
    """Integers within the field's range, objects and lists not too deep."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not spec.minimum <= value <= spec.maximum:
            raise InvalidInput(
                f"Invalid value for field '{name}': {_shown(name, value)} is out of range; "
                f"it must be an integer from {spec.minimum} to {spec.maximum}."
            )
    elif isinstance(value, dict | list) and nesting(value) > MAX_DEPTH:
        raise InvalidInput(
            f"Invalid value for field '{name}': it is nested deeper than {MAX_DEPTH} levels."
        )


def validate_body(
    body: object,
    fields: Mapping[str, Field],
    *,
    what: str,
    version: Version,
    required: Collection[str] = (),
) -> dict[str, Any]:
    """Check a create request's body; returns it as a dict.

    Raises:
        InvalidInput: not an object, unknown field, missing required field, bad value.
        NotAcceptable: a field newer than the requested microversion.
    """
    if not isinstance(body, dict):
        raise InvalidInput(f"The request body must be a JSON object describing the {what}.")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(
            f"Unknown field(s) for {what}: {', '.join(unknown)}. "
            f"Accepted fields: {', '.join(sorted(fields))}."
        )
    for name in required:
        if body.get(name) is None:
            raise InvalidInput(f"'{name}' is a required property of a {what}.")
    checked: dict[str, Any] = {}
    for name, value in body.items():
        check_version(name, fields[name], version=version)
        checked[name] = coerce(name, value, spec=fields[name])
        check_value(name, checked[name], spec=fields[name])
    return checked


def check_version(name: str, spec: Field, *, version: Version) -> None:
    """Raise ``NotAcceptable`` when the field is newer than ``version``."""
    if spec.feature is not None and not allows(spec.feature, version):
        raise NotAcceptable(
            f"The field '{name}' requires API version {FEATURES[spec.feature]} or later; "
            f"this request asked for {version}."
        )


# ----------------------------------------------------------------------- formats

_MAC_RE = re.compile(r"([0-9a-fA-F]{2})([:-]?)(?:[0-9a-fA-F]{2}\2){4}[0-9a-fA-F]{2}")
_CUSTOM_TRAIT_RE = re.compile(r"CUSTOM_[A-Z0-9_]+")
_STANDARD_TRAIT_RE = re.compile(r"[A-Z][A-Z0-9_]*")
MAX_TRAITS = 50


def check_logical_name(name: str, value: Any) -> None:
    """RFC 3986 unreserved characters only, and nothing that reads as a UUID (it
    would be ambiguous), as Ironic's ``is_valid_node_name``."""
    if not isinstance(value, str) or not is_logical_name(value):
        raise InvalidInput(
            f"Invalid value for field '{name}': {describe(value)} is not a valid logical "
            "name; use letters, digits and '-', '.', '_', '~' only, and nothing that "
            "reads as a UUID."
        )


def check_uuid(name: str, value: Any) -> None:
    """A UUID in canonical form, in either case (it is stored in lower case)."""
    if not isinstance(value, str) or not is_uuid(value):
        raise not_canonical(str(value), what=f"field '{name}' to be a UUID")


def check_ident(name: str, value: Any) -> None:
    """A UUID or a logical name (clients pass node names where Ironic wants UUIDs)."""
    if isinstance(value, str) and is_uuid_like(value) and not is_uuid(value):
        raise not_canonical(value, what=f"field '{name}' to be a UUID")
    if not isinstance(value, str) or not (is_uuid(value) or is_logical_name(value)):
        raise InvalidInput(
            f"Invalid value for field '{name}': {describe(value)} is neither a UUID nor a name."
        )


def normalize_mac(value: str) -> str:
    """A MAC address in lower case with colons.  Raises ``InvalidInput``."""
    if not isinstance(value, str) or not _MAC_RE.fullmatch(value.strip()):
        raise InvalidInput(f"Expected a MAC address but received {value}.")
    digits = re.sub(r"[:-]", "", value.strip()).lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def check_mac(name: str, value: Any) -> None:
    normalize_mac(value)


def check_trait(trait: object) -> str:
    """A valid trait name: ``CUSTOM_*`` or a standard upper-case trait."""
    pattern = _CUSTOM_TRAIT_RE if str(trait).startswith("CUSTOM_") else _STANDARD_TRAIT_RE
    if not isinstance(trait, str) or len(trait) > 255 or not pattern.fullmatch(trait):
        raise InvalidInput(
            f"Invalid trait {describe(trait)}: a trait is a standard trait name in upper "
            "case or a custom trait matching CUSTOM_[A-Z0-9_]+, at most 255 characters."
        )
    return trait


def check_traits(traits: object) -> list[str]:
    """A list of valid traits, at most :data:`MAX_TRAITS`."""
    if not isinstance(traits, list):
        raise InvalidInput(f"Invalid value for 'traits': {describe(traits)} is not a list.")
    if len(traits) > MAX_TRAITS:
        raise InvalidInput(
            f"A node may have at most {MAX_TRAITS} traits; {len(traits)} were given."
        )
    return [check_trait(t) for t in traits]


@dataclass(frozen=True, slots=True)
class Choice:
    """A check accepting only ``choices`` (the OpenAPI description lists them)."""

    choices: frozenset[str]

    def __call__(self, name: str, value: Any) -> None:
        if value not in self.choices:
            raise InvalidInput(
                f"Invalid value for field '{name}': '{value}'. "
                f"Acceptable values are: {', '.join(sorted(self.choices))}."
            )


def check_choice(choices: Collection[str]) -> Check:
    """A check accepting only ``choices``."""
    return Choice(frozenset(choices))
