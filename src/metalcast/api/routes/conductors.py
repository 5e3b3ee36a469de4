"""/v1/conductors: the conductor processes and whether they are alive."""

from __future__ import annotations

from starlette.routing import Route

from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, Param, integer, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    check_query,
    collection,
    fields_param,
    flag,
    parse_bool,
    parse_fields,
    parse_limit,
)
from metalcast.api.versions import allows
from metalcast.api.views.common import only
from metalcast.api.views.conductors import CONDUCTOR, DEFAULT_FIELDS, FIELDS, render_conductor
from metalcast.db import repository as repo
from metalcast.errors import InvalidInput, NotFound

LIST_QUERY = (
    Param("limit", integer(minimum=0), "The page size (0: the largest, api.max_limit)."),
    Param("marker", string(), "The host name of the last conductor of the previous page."),
    Param("sort_key", string(enum=["hostname"]), "Conductors sort by host name."),
    Param("sort_dir", string(enum=["asc", "desc"]), "Sort direction (default asc)."),
    fields_param(FIELDS),
    flag("detail", "Show every field (not with fields)."),
)


def _require_conductors(call: Call) -> None:
    if not allows("conductors", call.version):
        raise NotFound("The resource could not be found.")


@endpoint(
    "baremetal:conductor:get",
    doc=Operation(
        "List conductors",
        answers={200: collection_of("conductors", CONDUCTOR)},
        query=LIST_QUERY,
        feature="conductors",
    ),
)
def get_conductors(call: Call) -> object:
    _require_conductors(call)
    check_query(call.query, LIST_QUERY, what="listing conductors")
    limit = parse_limit(call.query.get("limit"), call.deps.settings.api.max_limit)
    detail = bool(parse_bool("detail", call.query.get("detail")))
    fields = parse_fields(call.query.get("fields"), FIELDS, version=call.version)
    if detail and fields is not None:
        raise InvalidInput("Can not specify ?detail=True and fields in the same request.")
    with call.deps.db.read() as conn:
        rows = repo.list_conductors(conn)
    rows.sort(key=lambda c: c.hostname, reverse=call.query.get("sort_dir") == "desc")
    marker = call.query.get("marker")
    if marker is not None:
        rows = [c for c in rows if (c.hostname < marker if _desc(call) else c.hostname > marker)]
    page = rows[:limit]
    timeout = call.deps.settings.conductor.heartbeat_timeout
    chosen = fields or (None if detail else DEFAULT_FIELDS)
    docs = [
        only(render_conductor(c, base_url=call.base_url, timeout=timeout), chosen) for c in page
    ]
    return collection(
        "conductors",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=limit,
        last_marker=page[-1].hostname if len(page) == limit else None,
    )


def _desc(call: Call) -> bool:
    return call.query.get("sort_dir") == "desc"


@endpoint(
    "baremetal:conductor:get",
    doc=Operation(
        "Show a conductor",
        answers={200: CONDUCTOR},
        query=(fields_param(FIELDS),),
        feature="conductors",
    ),
)
def get_conductor(call: Call) -> object:
    _require_conductors(call)
    fields = parse_fields(call.query.get("fields"), FIELDS, version=call.version)
    with call.deps.db.read() as conn:
        conductor = repo.get_conductor(conn, call.args["hostname"])
    timeout = call.deps.settings.conductor.heartbeat_timeout
    doc = render_conductor(conductor, base_url=call.base_url, timeout=timeout)
    return only(doc, fields)


ROUTES = [
    Route("/v1/conductors", get_conductors, methods=["GET"]),
    Route("/v1/conductors/{hostname}", get_conductor, methods=["GET"]),
]
