"""The audit log's writing side: every write request leaves one row, off the event loop.

The API middleware records each ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` once its
status is known (refusals included: 400, 401, 403, 404, 409, 413, ...) with the
caller's identity from the :class:`~metalcast.context.RequestContext`, the request
id, the method, the path and the status.  What the request touched is noted by the
handler on the way (:class:`AuditNote`: the policy action, the node, the resource).
Request bodies are never recorded: they may hold secrets, and the path and outcome
say what happened.

Recording costs the request a queue put: :class:`AuditLog` writes rows from its own
thread, in batches of up to :data:`BATCH` per transaction: what arrives within
:data:`BATCH_WINDOW` of a first row goes in with it, so that a busy API writes one
transaction every few dozen requests instead of one per request (each took the
database's write turn from a request).  A reader that must see every request
answered so far (``GET /v1/audit``) calls :meth:`AuditLog.flush` first, which cuts
the window short.  Should the queue fill (the database stalled), further events go to the log
as warnings instead of blocking requests.

One exception: successful agent heartbeats (``POST /v1/heartbeat/...``, every few
seconds per deploying node, without credentials) are not recorded; refused ones are.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass

from metalcast.context import RequestContext
from metalcast.db import audit as audit_db
from metalcast.db.engine import Database
from metalcast.db.models import JSONDict
from metalcast.db.rows import new_uuid, utcnow

_log = logging.getLogger("metalcast.api.audit")

#: the methods that write, hence are audited
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: rows written per transaction, at most
BATCH = 500
#: seconds the writer gathers rows after the first one before it writes them
BATCH_WINDOW = 0.05
_HEARTBEAT = re.compile(r"^/v1/heartbeat/")
_STOP = None


@dataclass(slots=True)
class AuditNote:
    """What a handler learned about a request, for its audit row: the first node
    and resource it resolved win (a port's own node, not one a patch moves it to)."""

    action: str | None = None
    node_uuid: str | None = None
    #: the node's row id, when only that is at hand (resolved by the writer)
    node_id: int | None = None
    resource_uuid: str | None = None

    def node(self, *, uuid: str | None = None, node_id: int | None = None) -> None:
        """The node the request concerns (unless one was noted already)."""
        if self.node_uuid is None and self.node_id is None:
            self.node_uuid, self.node_id = uuid, node_id

    def resource(self, uuid: str) -> None:
        """The resource the request addresses (unless noted already)."""
        if self.resource_uuid is None:
            self.resource_uuid = uuid

    def created(self, document: object) -> None:
        """The resource a 201 response describes: it is what the request made, and
        its ``node_uuid`` (ports, portgroups, volume resources) its node."""
        if not isinstance(document, dict) or not isinstance(document.get("uuid"), str):
            return
        self.resource_uuid = document["uuid"]
        if isinstance(document.get("node_uuid"), str):
            self.node_uuid, self.node_id = document["node_uuid"], None


def audited(method: str, path: str, status: int) -> bool:
    """Whether a request gets an audit row."""
    if method not in WRITES:
        return False
    return status >= 400 or not _HEARTBEAT.match(path)


def event(
    context: RequestContext, note: AuditNote, *, method: str, path: str, status: int
) -> JSONDict:
    """The audit row of one request."""
    return {
        "uuid": new_uuid(),
        "created_at": utcnow(),
        "request_id": context.request_id,
        "user_id": context.user,
        "user_name": context.user_name,
        "project_id": context.project,
        "method": method,
        "path": path,
        "action": note.action,
        "status": status,
        "node_uuid": note.node_uuid,
        "node_id": note.node_id,
        "resource_uuid": note.resource_uuid,
    }


class AuditLog:
    """Writes audit rows from a thread of its own (started by the first record)."""

    def __init__(self, db: Database, *, capacity: int = 10_000) -> None:
        self._db = db
        self._queue: queue.Queue[JSONDict | None] = queue.Queue(maxsize=capacity)
        self._done = threading.Condition()
        self._recorded = 0
        self._handled = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        #: set by flush and close: write what is queued without waiting for more
        self._hurry = threading.Event()

    def record(self, row: JSONDict) -> None:
        """Queue ``row`` for writing; never blocks (a full queue logs it instead)."""
        if self._closed:
            _log.warning("audit log closed; not recorded: %s", _summary(row))
            return
        self._start()
        with self._done:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                _log.warning("audit queue full; not recorded: %s", _summary(row))
                return
            self._recorded += 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row recorded so far is written (or given up on); False
        when ``timeout`` seconds passed first."""
        with self._done:
            target = self._recorded
            self._hurry.set()
            return self._done.wait_for(lambda: self._handled >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._hurry.set()
        self._queue.put(_STOP)
        thread.join(timeout)
        self._thread = None

    def _start(self) -> None:
        if self._thread is None:
            with self._done:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="audit-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            stop = first is None
            if not stop:
                self._hurry.wait(BATCH_WINDOW)
            while not stop and len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = item is None
                if item is not None:
                    batch.append(item)
            self._write(batch)
            if stop:
                return
            if self._queue.empty():
                self._hurry.clear()

    def _write(self, batch: list[JSONDict]) -> None:
        try:
            with self._db.begin() as conn:
                audit_db.add_events(conn, batch)
        except Exception:  # boundary: a database failure must not kill the writer
            _log.exception("could not write %d audit event(s): %s", len(batch), batch)
        with self._done:
            self._handled += len(batch)
            self._done.notify_all()


def _summary(row: JSONDict) -> str:
    return (
        f"{row['method']} {row['path']} -> {row['status']} by user {row['user_id']} "
        f"({row['user_name']}) project {row['project_id']} request {row['request_id']}"
    )
