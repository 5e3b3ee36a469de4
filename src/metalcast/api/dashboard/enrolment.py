"""Bulk enrolment from a CSV file, as ``metalcast node import`` reads it, but all or
nothing: when any row is bad, every row's error is shown and no node is created.

The file is checked by the CLI's own code (:mod:`metalcast.enrolment_rows`); then
each name and MAC is looked up through the API (an existing node or port is that
row's error); then each node and its ports are created through the API as the
caller.  Should a creation still fail (a node named meanwhile, a driver the
conductors do not run), what this upload created so far is deleted again and the
failing row's error shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from metalcast.api.dashboard.api_calls import Api
from metalcast.api.dashboard.markup import Html, join, path, render
from metalcast.enrolment_rows import FIELDS, NodeSpec, Rejected, check_rows, parse_csv
from metalcast.errors import InvalidInput

#: the largest CSV file taken, in bytes
MAX_CSV_BYTES = 1024 * 1024
#: the largest upload (the file and the form around it)
MAX_UPLOAD_BYTES = MAX_CSV_BYTES + 64 * 1024
#: rows one upload may hold
MAX_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an upload did: the rows refused (nothing created) or the nodes created."""

    rejected: list[Rejected] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    #: an error about the file as a whole
    problem: str | None = None


def check_text(data: bytes) -> list[NodeSpec] | Outcome:
    """The checked rows of an uploaded CSV, or the outcome refusing it."""
    if len(data) > MAX_CSV_BYTES:
        return Outcome(problem=too_large())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Outcome(problem="The file is not UTF-8 text: save the CSV as UTF-8.")
    try:
        rows = parse_csv(text)
    except InvalidInput as exc:
        return Outcome(problem=f"The CSV cannot be used: {exc.message}.")
    if not rows:
        return Outcome(problem="The CSV holds no rows under its header.")
    if len(rows) > MAX_ROWS:
        return Outcome(problem=f"The CSV holds {len(rows)} rows; at most {MAX_ROWS} an upload.")
    checked = check_rows(rows)
    rejected = [item for item in checked if isinstance(item, Rejected)]
    if rejected:
        return Outcome(rejected=rejected)
    return [item for item in checked if isinstance(item, NodeSpec)]


def too_large() -> str:
    return f"The file is larger than {MAX_CSV_BYTES // 1024} KiB: split it into several uploads."


async def enrol(api: Api, specs: Sequence[NodeSpec]) -> Outcome:
    """Create every node of ``specs`` with its ports, or none of them."""
    taken = await _taken(api, specs)
    if taken:
        return Outcome(rejected=taken)
    created: list[dict[str, Any]] = []
    ports: list[str] = []
    for spec in specs:
        answer = await api.send("POST", "/v1/nodes", body=spec.body())
        if not answer.ok:
            return await _undo(api, created, ports, Rejected(spec.row, spec.name, answer.error))
        created.append(answer.document)
        for mac in spec.macs:
            port = {"address": mac, "node_uuid": answer.document["uuid"]}
            made = await api.send("POST", "/v1/ports", body=port)
            if not made.ok:
                why = Rejected(spec.row, spec.name, f"port {mac}: {made.error}")
                return await _undo(api, created, ports, why)
            ports.append(str(made.document["uuid"]))
    return Outcome(created=created)


async def _taken(api: Api, specs: Sequence[NodeSpec]) -> list[Rejected]:
    """Rows whose name or MAC an existing node or port has (as far as the caller
    can see; the creation refuses the rest)."""
    refused = []
    for spec in specs:
        found = await api.get("/v1/nodes/" + quote(spec.name, safe=""), fields="uuid")
        if found.ok:
            uuid = found.document.get("uuid")
            refused.append(Rejected(spec.row, spec.name, f"name is already used by node {uuid}"))
            continue
        for mac in spec.macs:
            port = await api.get("/v1/ports", address=mac, fields="uuid,node_uuid")
            if port.ok and port.document.get("ports"):
                owner = port.document["ports"][0].get("node_uuid")
                reason = f"mac {mac} is already a port of node {owner}"
                refused.append(Rejected(spec.row, spec.name, reason))
                break
    return refused


async def _undo(
    api: Api, created: list[dict[str, Any]], ports: list[str], why: Rejected
) -> Outcome:
    """Delete what this upload created, newest first; the outcome says why."""
    left = []
    for port in reversed(ports):
        await api.send("DELETE", "/v1/ports/" + port)
    for node in reversed(created):
        gone = await api.send("DELETE", "/v1/nodes/" + str(node["uuid"]))
        if not gone.ok and gone.status != 404:
            left.append(str(node["uuid"]))
    problem = None
    if created:
        problem = f"The {len(created)} node(s) created before row {why.row} were deleted again."
    if left:
        problem = f"Deleting the nodes created before row {why.row} failed for {', '.join(left)}."
    return Outcome(rejected=[why], problem=problem)


# ------------------------------------------------------------------------ rendering

_FORM = """<form method="post" action="/dashboard/import" enctype="multipart/form-data"
 class="upload" id="import-form">
<input type="hidden" name="csrf" value="{csrf}">
<label>CSV file <input type="file" name="csv" accept=".csv,text/csv" required></label>
<button type="submit">Import</button>
</form>
<p class="hint">A header row, then one node a row, as <code>metalcast node import</code>
reads it. Columns: {columns}. Several MACs in one cell are separated by spaces or
<code>;</code>. At most {limit} KiB and {rows} rows. If any row is wrong, no node is
created and every row's error is listed.</p>"""


def page(*, csrf: str, outcome: Outcome | None = None) -> Html:
    body = render(
        _FORM,
        csrf=csrf,
        columns=", ".join(FIELDS),
        limit=MAX_CSV_BYTES // 1024,
        rows=MAX_ROWS,
    )
    shown = result(outcome) if outcome is not None else Html("")
    return render(
        '<h1>Import nodes</h1>\n<div id="import-result">{shown}</div>\n{form}',
        shown=shown,
        form=body,
    )


def result(outcome: Outcome) -> Html:
    parts = []
    if outcome.rejected:
        parts.append(
            Html(
                '<p class="error" id="import-refused">Nothing was imported: fix these rows '
                "and upload the file again.</p>"
            )
        )
    if outcome.problem:
        parts.append(render('<p class="error import-problem">{text}</p>', text=outcome.problem))
    if outcome.rejected:
        rows = [
            render(
                '<tr class="failed" data-row="{row}"><td>{row}</td><td>{name}</td>'
                "<td>{reason}</td></tr>",
                row=item.row,
                name=item.name or "",
                reason=item.reason,
            )
            for item in outcome.rejected
        ]
        parts.append(
            render(
                '<table class="import-errors"><thead><tr><th>Line</th><th>Name</th>'
                "<th>Error</th></tr></thead><tbody>{rows}</tbody></table>",
                rows=join(rows),
            )
        )
    if outcome.created:
        parts.append(_created(outcome.created))
    return join(parts, "\n")


def _created(nodes: Sequence[dict[str, Any]]) -> Html:
    rows = [
        render(
            '<tr class="ok" data-uuid="{uuid}"><td><a href="{href}">{name}</a></td>'
            '<td class="uuid">{uuid}</td><td>{state}</td></tr>',
            uuid=node.get("uuid"),
            href=path("nodes", str(node.get("uuid"))),
            name=node.get("name") or node.get("uuid"),
            state=node.get("provision_state") or "",
        )
        for node in nodes
    ]
    return render(
        '<p class="ok" id="import-done">{count} node(s) created. '
        '<a href="/dashboard">Go to the node table</a> to manage and provide them.</p>'
        '<table class="import-created"><thead><tr><th>Node</th><th>UUID</th>'
        "<th>Provision state</th></tr></thead><tbody>{rows}</tbody></table>",
        count=len(nodes),
        rows=join(rows),
    )
