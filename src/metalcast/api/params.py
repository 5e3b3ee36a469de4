"""Query parameters shared by the collections: paging, sorting, fields, detail.

Each endpoint declares the parameters it accepts as :class:`~metalcast.api.operations.
Param` tuples (:func:`paging` builds the shared ones); :func:`check_query` refuses any
other, and the OpenAPI description lists them.

Errors: ``InvalidInput`` (400) naming the parameter and what it accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import QueryParams

from metalcast.api.operations import Param, boolean, integer, names, string
from metalcast.api.versions import Version, allows
from metalcast.db.repository import Page, canonical_uuid
from metalcast.errors import InvalidInput, NotAcceptable

_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def check_query(query: QueryParams, params: Collection[Param], *, what: str) -> None:
    """Refuse a request with a query parameter not in ``params``.

    Raises:
        InvalidInput: naming the unknown parameters and the accepted ones.
    """
    accepted = names(params)
    unknown = sorted(set(query) - accepted)
    if unknown:
        listed = ", ".join(sorted(accepted)) or "none"
        raise InvalidInput(
            f"Unknown parameter(s) for {what}: {', '.join(unknown)}. Accepted: {listed}."
        )


#: how the API spells booleans in query parameters (:func:`parse_bool`)
BOOL_NOTE = "Also 1/0, yes/no, on/off, t/f, y/n, in any case."


def flag(name: str, description: str, *, feature: str | None = None) -> Param:
    """A boolean query parameter."""
    return Param(name, boolean(), f"{description} {BOOL_NOTE}", feature)


def paging(
    *,
    sortable: Collection[str],
    fields: Collection[str],
    detail_feature: str | None = "detail_param",
) -> tuple[Param, ...]:
    """The collection parameters :func:`parse_listing` reads, for a collection sorted
    by ``sortable`` whose documents have ``fields`` (``detail_feature`` None: a
    collection without ``?detail=``)."""
    params = (
        Param("limit", integer(minimum=0), "The page size (0: the largest, api.max_limit)."),
        Param("marker", string(format="uuid"), "The UUID of the last item of the previous page."),
        Param("sort_key", string(enum=sorted(sortable)), "Sort by this field (default id)."),
        Param("sort_dir", string(enum=["asc", "desc"]), "Sort direction (default asc)."),
        fields_param(fields),
    )
    if detail_feature is None:
        return params
    return (*params, flag("detail", "Show every field (not with fields).", feature=detail_feature))


def fields_param(fields: Collection[str]) -> Param:
    """``?fields=a,b``: only these fields (from API version 1.8)."""
    alternatives = "|".join(sorted(fields))
    return Param(
        "fields",
        string(pattern=f"^({alternatives})(,({alternatives}))*$"),
        "Comma-separated fields to show (links always).",
        "fields",
    )


def parse_bool(name: str, value: str | None) -> bool | None:
    """``None`` when absent; raises ``InvalidInput`` for a non-boolean."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(
        f"Invalid value for {name}: '{value}'. Acceptable values are: true, false "
        "(also 1/0, yes/no, on/off)."
    )


def parse_list(name: str, value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list (Ironic's ``string_list``: ``shard=a,b``); ``None``
    when absent.  Raises ``InvalidInput`` for a list naming nothing."""
    if value is None:
        return None
    items = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not items:
        raise InvalidInput(f"Invalid value for {name}: it names nothing.")
    return items


def parse_limit(value: str | None, max_limit: int) -> int:
    """The page size: absent means ``max_limit``; larger values are capped."""
    if value is None:
        return max_limit
    try:
        limit = int(value)
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise InvalidInput(f"Invalid value for limit: '{shown}'. It must be an integer.") from None
    if limit < 0:
        raise InvalidInput(f"Limit must be positive, got {limit}.")
    return min(limit, max_limit) if limit else max_limit


@dataclass(frozen=True, slots=True)
class Listing:
    """The parsed collection parameters of one request."""

    page: Page
    fields: tuple[str, ...] | None
    detail: bool


def parse_listing(
    query: QueryParams,
    *,
    max_limit: int,
    sortable: Collection[str],
    known_fields: Collection[str],
    newer_fields: Collection[str] = (),
    version: Version,
    detail_path: bool = False,
    detail_feature: str = "detail_param",
) -> Listing:
    """Paging, sorting, ``fields`` and ``detail`` of a collection request.

    ``detail_path`` is true on ``/detail`` endpoints, which are always detailed.
    ``?detail=`` needs ``detail_feature`` (1.43 for the older collections; newer
    ones, like volume resources, had it from the start).
    """
    sort_key = query.get("sort_key", "id")
    if sort_key not in sortable:
        raise InvalidInput(f"The sort_key value '{sort_key}' is an invalid field for sorting.")
    sort_dir = query.get("sort_dir", "asc").lower()
    if sort_dir not in ("asc", "desc"):
        raise InvalidInput(
            f"Invalid sort direction: {sort_dir}. Acceptable values are 'asc' or 'desc'."
        )
    marker = query.get("marker")
    if marker is not None:
        marker = canonical_uuid(marker, what="the marker to be a UUID")
    page = Page(
        limit=parse_limit(query.get("limit"), max_limit),
        marker=marker,
        sort_key=sort_key,
        sort_dir=sort_dir,
    )
    detail = detail_path or _detail(query, version, feature=detail_feature)
    fields = parse_fields(query.get("fields"), known_fields, version=version, newer=newer_fields)
    if fields is not None and detail:
        raise InvalidInput("Can not specify ?detail=True and fields in the same request.")
    return Listing(page=page, fields=fields, detail=detail)


def _detail(query: QueryParams, version: Version, *, feature: str) -> bool:
    value = parse_bool("detail", query.get("detail"))
    if value is not None and not allows(feature, version):
        raise NotAcceptable("The detail parameter is not supported by this API version.")
    return bool(value)


def parse_fields(
    value: str | None,
    known: Collection[str],
    *,
    version: Version,
    newer: Collection[str] = (),
) -> tuple[str, ...] | None:
    """The ``fields`` parameter: a comma-separated subset of ``known``; one naming no
    field (``?fields=``) is as if absent.  A field of ``newer`` (a later version's) is
    406, as in Ironic; any other unknown one 400."""
    if value is None:
        return None
    if not allows("fields", version):
        raise NotAcceptable("The fields parameter requires API version 1.8 or later.")
    fields = tuple(f.strip() for f in value.split(",") if f.strip())
    if not fields:
        return None
    unknown = [f for f in fields if f not in known]
    if unknown and all(f in newer for f in unknown):
        raise NotAcceptable(
            f'Field(s) "{", ".join(unknown)}" need a later API version than {version}.'
        )
    if unknown:
        raise InvalidInput(f'Field(s) "{", ".join(unknown)}" are not valid')
    return fields


def collection(
    key: str,
    docs: list[dict[str, Any]],
    *,
    url: str,
    query: QueryParams,
    limit: int,
    last_marker: str | None,
) -> dict[str, Any]:
    """A collection body: ``{key: docs}``, plus a ``next`` link to the page after
    ``last_marker`` (the UUID of the last row of a full page; ``None`` otherwise)."""
    body: dict[str, Any] = {key: docs}
    if last_marker is not None:
        kept = [(k, v) for k, v in query.multi_items() if k not in ("limit", "marker")]
        args = "".join(f"{quote(k)}={quote(v, safe=',')}&" for k, v in kept)
        body["next"] = f"{url}?{args}limit={limit}&marker={last_marker}"
    return body


def last_marker(uuids: Sequence[str], limit: int) -> str | None:
    """The marker of the next page: the last UUID when the page is full."""
    return uuids[-1] if uuids and len(uuids) >= limit else None
