"""How the CLI prints: rich tables for people, plain JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

NONE = Text("-", style="dim")
#: the width tables may take when stdout is a pipe or file rather than a terminal
PIPE_WIDTH = 200


def stdout() -> Console:
    """The console for results (resolved at call time, so tests can capture it).

    Piped output is not cut to 80 columns: a script or a log wants whole cells.
    """
    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def stderr() -> Console:
    """The console for errors and progress."""
    return Console(file=sys.stderr, soft_wrap=False)


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def print_error(message: str) -> None:
    """Write one red error line to stderr."""
    stderr().print(Text(f"error: {message}", style="bold red"), soft_wrap=True)


def print_ok(message: str) -> None:
    """Write one confirmation line to stdout."""
    stdout().print(Text(message, style="green"), soft_wrap=True)


def cell(value: Any) -> Text:
    """A table cell for an API value: dicts and lists as JSON, None as a dash."""
    if value is None or value == "":
        return NONE
    if isinstance(value, (dict, list)):
        return Text(json.dumps(value, indent=2, sort_keys=True))
    return Text(str(value))


def short(text: str | None, width: int = 60) -> str:
    """The first line of ``text``, cut to ``width`` characters."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    wrap: str | None = None,
    title: str | None = None,
) -> Table:
    """A table with a header row; only the ``wrap`` column (default: the last)
    wraps when the terminal is too narrow."""
    result = Table(title=title, title_justify="left", header_style="bold")
    wrapping = wrap or columns[-1]
    for name in columns:
        result.add_column(name, no_wrap=name != wrapping, overflow="fold")
    for row in rows:
        result.add_row(*(v if isinstance(v, Text) else cell(v) for v in row))
    return result


def fields_table(values: Mapping[str, Any], keys: Sequence[str], *, title: str) -> Table:
    """A two-column ``field | value`` table of ``keys`` present in ``values``."""
    result = Table(title=title, title_justify="left", show_header=False, title_style="bold")
    result.add_column("field", style="cyan", no_wrap=True)
    result.add_column("value", overflow="fold")
    for key in keys:
        if key in values:
            result.add_row(key, cell(values[key]))
    return result
