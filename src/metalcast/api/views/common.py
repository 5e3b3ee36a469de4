"""Pieces every resource renders alike: links, timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

Link = dict[str, str]


def links(base_url: str, tail: str) -> list[Link]:
    """Ironic's ``self`` (versioned) and ``bookmark`` (unversioned) links to ``tail``,
    a path below the version like ``nodes/<uuid>/ports``."""
    return [
        {"href": f"{base_url}/v1/{tail}", "rel": "self"},
        {"href": f"{base_url}/{tail}", "rel": "bookmark"},
    ]


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) timestamp as Ironic renders it: ``...T12:00:00+00:00``."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat() + "+00:00"
    return value.isoformat()


def only(document: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep the requested ``fields`` (and ``links``) of a rendered resource."""
    if fields is None:
        return document
    return {k: v for k, v in document.items() if k in fields or k == "links"}
