"""Listing a simple collection: one table of resources named by UUID, paged by
UUID markers, with ``fields`` and ``detail`` (deploy templates, runbooks,
inspection rules).

:class:`Listed` says how one such collection is listed; :meth:`Listed.page`
answers a ``GET`` of it.  Errors: those of :mod:`metalcast.api.params` (400).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from metalcast.api.endpoint import Call
from metalcast.api.operations import Param
from metalcast.api.params import check_query, collection, last_marker, paging, parse_listing
from metalcast.db.rows import Page


class Named(Protocol):
    """A resource named by a UUID."""

    @property
    def uuid(self) -> str: ...


R = TypeVar("R", bound=Named)
#: (connection, page) -> the resources of the page
Fetch = Callable[[sa.Connection, Page], Sequence[R]]
#: (resource, fields or None for all) -> its document
Render = Callable[[R, tuple[str, ...] | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Listed:
    """How one collection is listed."""

    #: the collection's key in the answer and its path: "runbooks"
    key: str
    #: every field of a document
    fields: tuple[str, ...]
    #: what a list shows without ``detail`` or ``fields``
    list_fields: tuple[str, ...]
    sortable: frozenset[str]
    #: the feature that brought ``?detail=``
    detail_feature: str
    #: the query parameters (for :func:`check_query` and the OpenAPI description)
    query: tuple[Param, ...] = field(init=False)

    def __post_init__(self) -> None:
        query = paging(
            sortable=self.sortable, fields=self.fields, detail_feature=self.detail_feature
        )
        object.__setattr__(self, "query", query)

    def page(self, call: Call, fetch: Fetch[R], render: Render[R]) -> dict[str, Any]:
        """The page ``call`` asks for, rendered.  Raises InvalidInput for a bad query."""
        check_query(call.query, self.query, what=f"listing {self.key.replace('_', ' ')}")
        listing = parse_listing(
            call.query,
            max_limit=call.deps.settings.api.max_limit,
            sortable=self.sortable,
            known_fields=self.fields,
            version=call.version,
            detail_feature=self.detail_feature,
        )
        with call.deps.db.read() as conn:
            found = fetch(conn, listing.page)
        fields = None if listing.detail else (listing.fields or self.list_fields)
        return collection(
            self.key,
            [render(item, fields) for item in found],
            url=call.base_url + call.path,
            query=call.query,
            limit=listing.page.limit,
            last_marker=last_marker([item.uuid for item in found], listing.page.limit),
        )
