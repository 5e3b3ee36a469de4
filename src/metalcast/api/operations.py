"""What each endpoint takes and answers, declared next to it: the source of the OpenAPI
description (:mod:`metalcast.api.openapi`).

A handler gets its :class:`Operation` through ``endpoint(rule, doc=...)``
(:func:`metalcast.api.endpoint.endpoint`).  Its documents are JSON Schema 2020-12
objects, written with the small helpers here or derived from what the code already
declares, so that the description cannot drift from the code: request bodies from
the :class:`~metalcast.api.schema.Field` mappings the requests are validated with
(:func:`body`, :func:`patch`), response documents from the views' field tables and
the database columns they render (:func:`resource`), query parameters from the
:class:`Param` tuples the routes check requests against
(:func:`metalcast.api.params.check_query`), microversions from
:data:`metalcast.api.versions.FEATURES`.

A :class:`Named` schema is described once, under ``components/schemas``, and
referred to wherever it appears.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from metalcast.api import jsonpatch
from metalcast.api.schema import (
    Choice,
    Field,
    check_ident,
    check_logical_name,
    check_mac,
    check_uuid,
)
from metalcast.api.versions import FEATURES, MAX_VERSION

#: a JSON Schema object; values may hold :class:`Named` schemas
Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Named:
    """A schema described once under ``components/schemas/<name>``."""

    name: str
    schema: Schema


Doc = Schema | Named


# ------------------------------------------------------------------------- helpers


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def integer(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


def boolean(**extra: Any) -> Schema:
    return {"type": "boolean", **extra}


def array(items: Doc, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def obj(
    properties: Mapping[str, Doc] | None = None,
    *,
    required: Collection[str] = (),
    additional: bool | Doc | None = None,
    **extra: Any,
) -> Schema:
    """An object with ``properties``, and no others unless ``additional`` says so
    (True, or the schema of their values); without ``properties``, any object whose
    values fit ``additional``."""
    schema: Schema = {"type": "object", **extra}
    if properties is not None:
        schema["properties"] = dict(properties)
        schema["additionalProperties"] = False if additional is None else additional
    elif additional is not None and additional is not True:
        schema["additionalProperties"] = additional
    if required:
        schema["required"] = sorted(required)
    return schema


def nullable(schema: Doc) -> Schema:
    """``schema`` or null."""
    if isinstance(schema, Named) or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def since(schema: Doc, feature: str | None) -> Doc:
    """``schema`` marked with the microversion that introduced ``feature``."""
    if feature is None:
        return schema
    base: Schema = {"allOf": [schema]} if isinstance(schema, Named) else dict(schema)
    note = version_note(feature)
    base["description"] = f"{base['description']} {note}" if "description" in base else note
    base["x-metalcast-min-version"] = str(FEATURES[feature])
    return base


def version_note(feature: str) -> str:
    """When ``feature`` exists: "From API version 1.37." or, for the features metalcast
    serves above its maximum, the Ironic version and how it is served here."""
    needed = FEATURES[feature]
    if needed > MAX_VERSION:
        return (
            f"Ironic {needed}; metalcast serves it from its maximum, {MAX_VERSION} "
            "(what 'latest' gets)."
        )
    return f"From API version {needed}."


#: marks a field :func:`resource` could not type (the description refuses it)
UNTYPED = "x-metalcast-untyped"

UUID = string(format="uuid")
DATE_TIME = string(format="date-time")
LINK = Named(
    "Link",
    obj({"href": string(), "rel": string(), "type": string()}, required=("href", "rel")),
)
LINKS = array(LINK)
#: any JSON value
ANY: Schema = {}


def collection(key: str, item: Doc) -> Schema:
    """A page of a collection: ``{key: [...], "next": <url of the next page>}``."""
    return obj(
        {key: array(item), "next": string(description="The next page, when this one is full.")},
        required=(key,),
    )


# ----------------------------------------------------------------- query parameters


@dataclass(frozen=True, slots=True)
class Param:
    """One query parameter an endpoint accepts."""

    name: str
    schema: Schema
    description: str
    #: the microversion feature that introduced it (None: always there)
    feature: str | None = None


def names(params: Collection[Param]) -> frozenset[str]:
    return frozenset(p.name for p in params)


# ---------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class Operation:
    """What one endpoint takes and answers."""

    summary: str
    #: success status -> the JSON document answered (None: no body)
    answers: Mapping[int, Doc | None] = field(default_factory=lambda: {200: ANY})
    #: the JSON request body (with ``endpoint(body=True)``; None: any JSON)
    body: Doc | None = None
    #: whether a request without a body is refused
    body_required: bool = True
    query: tuple[Param, ...] = ()
    #: the microversion feature that introduced the endpoint (404 or 406 before it)
    feature: str | None = None
    #: error statuses beyond those the description gives every request of its kind
    errors: frozenset[int] = frozenset()
    #: whether a success carries a ``Location`` header (always with 201)
    location: bool = False
    description: str = ""
    #: example request bodies (for readers, and for schemathesis' explicit examples)
    examples: tuple[object, ...] = ()


def accepted(summary: str, **kw: Any) -> Operation:
    """An action that answers 202 with a ``Location`` header and no body."""
    return Operation(summary, answers={202: None}, location=True, **kw)


def no_content(summary: str, **kw: Any) -> Operation:
    """An action that answers 204."""
    return Operation(summary, answers={204: None}, **kw)


# ------------------------------------------------------------ documents from the code


def resource(
    name: str,
    fields: Mapping[str, str | None],
    *,
    table: sa.Table,
    special: Mapping[str, Doc] | None = None,
    extra: Mapping[str, Doc] | None = None,
    linked: bool = True,
) -> Named:
    """The response document of a resource whose view renders ``fields`` (field ->
    the feature that introduced it), typed by ``table``'s columns unless ``special``
    types a field; ``extra`` are the links it adds.  Only ``links`` is always there
    (``?fields=`` and lists choose the others); ``linked`` False: no links at all."""
    special = special or {}
    properties: dict[str, Doc] = {}
    for field_name, feature in fields.items():
        schema = special.get(field_name)
        if schema is None and field_name in table.c:
            schema = column_schema(table.c[field_name])
        elif schema is None:
            # no column to type it by: describing the API fails (not the import)
            schema = {UNTYPED: f"{name}.{field_name}"}
        properties[field_name] = since(schema, feature)
    if linked:
        properties["links"] = LINKS
    properties.update(extra or {})
    return Named(name, obj(properties, required=("links",) if linked else ()))


def column_schema(column: sa.ColumnElement[Any]) -> Schema:
    """The JSON a view renders a column's value as (dates in ISO 8601, JSON as objects).

    Raises:
        TypeError: a column type with no JSON rendering here.
    """
    kind = column.type
    schema: Schema
    if isinstance(kind, sa.JSON):
        schema = obj()
    elif isinstance(kind, sa.DateTime):
        schema = DATE_TIME
    elif isinstance(kind, sa.Boolean):
        schema = boolean()
    elif isinstance(kind, sa.Integer):
        schema = integer()
    elif isinstance(kind, sa.String):  # Text too
        schema = string()
    else:
        raise TypeError(f"no JSON rendering for column {column} of type {kind}")
    nullable_column = getattr(column, "nullable", True)
    return nullable(schema) if nullable_column else schema


# ----------------------------------------------------------------- request documents

_KINDS: Mapping[str, Schema] = {
    "string": string(),
    "object": obj(),
    "boolean": boolean(),
    "integer": integer(),
    "list": array(ANY),
    "any": ANY,
}
_MAC = r"^([0-9a-fA-F]{2})([:-]?)([0-9a-fA-F]{2}\2){4}[0-9a-fA-F]{2}$"
_NAME = r"^[A-Za-z0-9\-._~]+$"
#: the JSON Schema of the values the format checks of :mod:`metalcast.api.schema` accept
_CHECKS: Mapping[object, Schema] = {
    check_uuid: {"format": "uuid"},
    check_mac: {"pattern": _MAC},
    check_logical_name: {
        "pattern": _NAME,
        "description": "Letters, digits and '-', '.', '_', '~'; not a UUID.",
    },
    check_ident: {"description": "A UUID or a logical name."},
}


def field_schema(spec: Field) -> Doc:
    """The JSON Schema of the values ``spec`` accepts."""
    schema: Schema = dict(_KINDS[spec.kind])
    if spec.kind == "string" and spec.max_length is not None:
        schema["maxLength"] = spec.max_length
    if spec.kind == "integer":
        schema.update(minimum=spec.minimum, maximum=spec.maximum)
    if isinstance(spec.check, Choice):
        schema["enum"] = sorted(spec.check.choices)
    elif spec.check is not None:
        schema.update(_CHECKS.get(spec.check, {}))
    if spec.strings:
        spelled = string(
            description="A boolean's spelling: true/false, 1/0, yes/no, on/off, t/f, y/n, "
            "in any case."
        )
        schema = {"anyOf": [schema, spelled]}
    if spec.nullable and spec.kind != "any":
        schema = nullable(schema)
    return since(schema, spec.feature)


def body(
    fields: Mapping[str, Field], *, required: Collection[str] = (), name: str | None = None
) -> Doc:
    """The request body :func:`metalcast.api.schema.validate_body` accepts for ``fields``
    (``required`` ones must be there and not null)."""
    properties = {
        key: _required_value(spec) if key in required else field_schema(spec)
        for key, spec in fields.items()
    }
    schema = obj(properties, required=required)
    return Named(name, schema) if name else schema


def _required_value(spec: Field) -> Doc:
    return field_schema(dataclasses.replace(spec, nullable=False))


def patch(fields: Collection[str], *, name: str) -> Named:
    """A JSON Patch (RFC 6902, the operations :mod:`metalcast.api.jsonpatch` applies)
    of the attributes ``fields`` and anything below them."""
    alternatives = "|".join(re.escape(f) for f in sorted(fields))
    operation = obj(
        {
            "op": string(enum=list(jsonpatch.OPS)),
            "path": string(pattern=f"^/({alternatives})(/.*)?$"),
            "value": ANY,
        },
        required=("op", "path"),
    )
    return Named(name, array(operation))
