"""HTML built from templates whose every value is escaped unless it is :class:`Html`.

Node names, descriptions, properties, errors and history are chosen by tenants or by
the machines themselves: nothing from the API reaches a page unescaped.  A template
is a ``str.format`` pattern written in this package; :func:`render` escapes each
value (quotes too, so values may stand in attributes) unless it is markup this
module made already.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import quote, urlencode


class Html(str):
    """Text that is safe HTML: made by :func:`render`, :func:`escape` or :func:`join`."""

    __slots__ = ()


def escape(value: object) -> Html:
    """``value`` as HTML text (None is empty); markup stays as it is."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def render(template: str, **values: object) -> Html:
    """``template`` with ``{name}`` replaced by each value, escaped."""
    return Html(template.format(**{name: escape(value) for name, value in values.items()}))


def join(parts: Iterable[object], separator: str = "") -> Html:
    """The parts, each escaped, one after the other."""
    return Html(separator.join(escape(part) for part in parts))


def path(*elements: str) -> str:
    """A dashboard path: ``path("nodes", name)`` is ``/dashboard/nodes/<name quoted>``."""
    return "/dashboard" + "".join("/" + quote(element, safe="") for element in elements)


def with_query(base: str, query: dict[str, str]) -> str:
    """``base?query`` without the empty values."""
    kept = {name: value for name, value in query.items() if value}
    return f"{base}?{urlencode(kept)}" if kept else base
