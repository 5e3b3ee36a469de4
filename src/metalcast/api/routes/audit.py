"""/v1/audit: the audit log of writes through the API (a metalcast extension).

Served at every microversion, to system readers only (policy action ``audit:list``).
Filters: ``node`` (a UUID, or the name of an existing node), ``user`` (a user id or
name), ``project`` (a project id), ``method``, ``since`` and ``until`` (ISO 8601
timestamps; without a zone they are UTC).  Paging as every collection: ``limit``,
``marker`` (an event's ``uuid``), ``sort_key`` (``id`` or ``created_at``),
``sort_dir``; ``fields`` picks attributes.

Errors: ``InvalidInput`` (400) naming the parameter; ``NotFound`` (404) for a node
name that names no node.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.routing import Route

from metalcast.api.audit import WRITES
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, Param, integer, resource, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    check_query,
    collection,
    fields_param,
    last_marker,
    parse_fields,
    parse_limit,
)
from metalcast.api.views.common import iso, only
from metalcast.db import audit as audit_db
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.rows import echo
from metalcast.errors import InvalidInput

FIELDS = (
    "uuid",
    "created_at",
    "request_id",
    "method",
    "path",
    "status",
    "action",
    "user_id",
    "user_name",
    "project_id",
    "node_uuid",
    "resource_uuid",
)
_SORTABLE = ("id", "created_at")
EVENT = resource("AuditEvent", dict.fromkeys(FIELDS), table=t.audit_events, linked=False)
_TIME = "An ISO 8601 date or timestamp (UTC without a zone)."
QUERY = (
    Param("node", string(), "Writes concerning this node (UUID, or an existing node's name)."),
    Param("user", string(), "Writes by this user (id or name)."),
    Param("project", string(), "Writes by callers of this project (id)."),
    Param("method", string(enum=sorted(WRITES)), "Writes with this HTTP method."),
    Param("since", string(), f"Writes at or after this time. {_TIME}"),
    Param("until", string(), f"Writes before this time. {_TIME}"),
    Param("limit", integer(minimum=0), "The page size (0: the largest, api.max_limit)."),
    Param("marker", string(format="uuid"), "The uuid of the last event of the previous page."),
    Param("sort_key", string(enum=list(_SORTABLE)), "Sort by this field (default id)."),
    Param("sort_dir", string(enum=["asc", "desc"]), "Sort direction (default asc)."),
    fields_param(FIELDS),
)
_UNESCAPED_PLUS = re.compile(r" (\d\d:?\d\d)$")


def render(event: audit_db.AuditEvent) -> dict[str, Any]:
    doc = {name: getattr(event, name) for name in FIELDS}
    doc["created_at"] = iso(event.created_at)
    return doc


def timestamp(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 query value as a naive UTC datetime (how timestamps are stored).

    Raises:
        InvalidInput: not a timestamp.
    """
    if value is None:
        return None
    # a "+01:00" sent unescaped in a query string arrives as " 01:00"
    text = _UNESCAPED_PLUS.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"Invalid value for {name}: '{echo(value)}'. Expected an ISO 8601 date or "
            "timestamp, e.g. 2026-12-06 or 2026-12-06T10:00:00Z."
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def filters(call: Call) -> audit_db.AuditFilters:
    """The filters a request asks for.

    Raises:
        InvalidInput: an unknown parameter or a bad value.
        NotFound: ``node`` names no node.
    """
    query = call.query
    check_query(query, QUERY, what="listing audit events")
    method = query.get("method")
    if method is not None:
        method = method.upper()
        if method not in WRITES:
            raise InvalidInput(
                f"Invalid value for method: '{echo(query['method'])}'. Acceptable values "
                f"are: {', '.join(sorted(WRITES))}."
            )
    return audit_db.AuditFilters(
        node_uuid=_node_uuid(call, query.get("node")),
        user=query.get("user"),
        project_id=query.get("project"),
        method=method,
        since=timestamp("since", query.get("since")),
        until=timestamp("until", query.get("until")),
    )


def _node_uuid(call: Call, ident: str | None) -> str | None:
    """A node UUID as given (the node may be gone since), or an existing node's name."""
    if ident is None or repo.is_uuid(ident):
        return None if ident is None else ident.lower()
    with call.deps.db.read() as conn:
        return repo.get_node(conn, ident).uuid


@endpoint(
    "audit:list",
    doc=Operation(
        "The audit log: every write through the API, who made it and what it answered",
        answers={200: collection_of("events", EVENT)},
        query=QUERY,
        errors=frozenset({404}),
    ),
)
def get_audit(call: Call) -> object:
    the_filters = filters(call)
    limit = parse_limit(call.query.get("limit"), call.deps.settings.api.max_limit)
    sort_key = call.query.get("sort_key", "id")
    if sort_key not in _SORTABLE:
        raise InvalidInput(
            f"The sort_key value '{echo(sort_key)}' is an invalid field for sorting; "
            f"use one of: {', '.join(_SORTABLE)}."
        )
    marker = call.query.get("marker")
    page = repo.Page(
        limit=limit,
        marker=None if marker is None else repo.canonical_uuid(marker, what="the marker"),
        sort_key=sort_key,
        sort_dir=call.query.get("sort_dir", "asc").lower(),
    )
    fields = parse_fields(call.query.get("fields"), FIELDS, version=call.version)
    if call.deps.audit is not None:
        call.deps.audit.flush()  # every write this process answered so far is listed
    with call.deps.db.read() as conn:
        events = audit_db.list_events(conn, the_filters, page)
    return collection(
        "events",
        [only(render(e), fields) for e in events],
        url=call.base_url + call.path,
        query=call.query,
        limit=limit,
        last_marker=last_marker([e.uuid for e in events], limit),
    )


ROUTES = [Route("/v1/audit", get_audit, methods=["GET"])]
