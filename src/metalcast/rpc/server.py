"""A conductor's JSON-RPC endpoint: the requests of API processes, executed here.

``POST /rpc`` takes one sealed JSON-RPC 2.0 request (:mod:`.wire`)::

    {"jsonrpc": "2.0", "id": "...", "method": "ChangePowerState",
     "params": {"request": <the encoded request>, "context": <the caller>}}

and answers 200 with a sealed response holding ``result`` (the encoded result) or
``error`` (``code`` -32000, ``message``, and ``data``: the error as
:func:`.codec.encode_error` describes it, which the API turns into its usual
response; a database that cannot be reached is a 503, a unique value taken by a
concurrent request a 409, as in-process).  A body that is not sealed with this
installation's key gets 401 in plain text and nothing is executed.  Each request
runs in its own thread, inside the caller's context
(:func:`metalcast.context.acting_for`), so history rows name whoever asked in the API.

``GET /metrics`` answers the conductor's Prometheus metrics (:mod:`metalcast.metrics`)
without credentials: numbers and node UUIDs, no secret; the RPC address is one only
the API processes need to reach.

Lifecycle::

    server = RpcServer(service, secret_box, host="127.0.0.1", port=0)
    server.start()          # listening; server.url is what the conductor registers
    server.stop()

:meth:`RpcServer.stop` answers every request "shutting down" with ``Connection: close``
(the API sends it to another conductor), lets the requests in flight finish, waits
until every connection left, and the server itself, has been idle for longer than an
API process keeps a connection for reuse (:data:`KEEPALIVE_EXPIRY`), and only then
stops listening and closes them:
no request is sent on a connection this side is closing, nor left unaccepted in the
listening socket's queue.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from metalcast.calls import Call
from metalcast.conductor.service import ConductorService
from metalcast.context import RequestContext, acting_for
from metalcast.db.engine import is_unreachable
from metalcast.errors import Conflict, MetalcastError, ServiceUnavailable
from metalcast.rpc import codec
from metalcast.rpc.wire import REQUEST, RESPONSE, RpcRefused, Seal
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)

#: the largest request body taken by default: a request holds at most what one API
#: request body held (``api.max_request_bytes``), encoded and sealed
MAX_BODY = 8 * 2**20
PATH = "/rpc"
#: the conductor's Prometheus metrics (docs/metrics.md), for anyone who reaches the port
METRICS_PATH = "/metrics"
#: JSON-RPC's code for an error of the application
APPLICATION_ERROR = -32000
#: what the API answers in-process for the same database errors (api/errors.py)
UNIQUE_TAKEN = "The request conflicts with an existing resource: a unique value is taken."
DATABASE_UNAVAILABLE = "The database is unavailable right now; retry the request later."
#: what a stopping RPC server answers (the API's client sends the request elsewhere)
SHUTTING_DOWN = "The conductor is shutting down; retry on another one."
#: how long an API process keeps an idle connection to a conductor for reuse
KEEPALIVE_EXPIRY = 1.0
#: how long a stopping server leaves an idle connection open: past the API's reuse
LINGER = KEEPALIVE_EXPIRY + 2.0
#: how long a stopping server waits for the requests in flight
STOP_GRACE = 10.0


class RpcServer:
    """Serves one conductor's requests over HTTP, a thread per connection."""

    def __init__(
        self,
        service: ConductorService,
        secret_box: SecretBox,
        *,
        host: str,
        port: int,
        max_body: int = MAX_BODY,
    ) -> None:
        self.service = service
        self.seal = Seal(secret_box)
        #: bodies are read whole before they can be authenticated: this bounds what
        #: anyone who reaches the port can make the conductor hold
        self.max_body = max_body
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where API processes reach this conductor (registered with it)."""
        address, port = self._httpd.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        if host in ("0.0.0.0", "::", ""):
            host = socket.getfqdn()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="rpc-server", daemon=True
        )
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` began: every request is answered "shutting down"."""
        return self._httpd.stopping.is_set()

    def stop(self) -> None:
        """Answer every request "shutting down", let those in flight finish and the
        idle connections outlive the API's reuse (at most :data:`LINGER` +
        :data:`STOP_GRACE` seconds), then stop listening and close every connection."""
        self._httpd.stopping.set()
        self._httpd.wait_unused(STOP_GRACE)
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self._httpd.close_connections()

    def answer(self, body: bytes) -> bytes:
        """The sealed response to the sealed request ``body``.

        Raises:
            RpcRefused: ``body`` is not a request of this installation.
        """
        message = self.seal.open(body, direction=REQUEST)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message.get("id")}
        if self._httpd.stopping.is_set():
            reply["error"] = _error(ServiceUnavailable(SHUTTING_DOWN))
            return self.seal.seal(reply, direction=RESPONSE)
        try:
            request, context = _parse(message)
        except MetalcastError as exc:
            reply["error"] = _error(exc)
            return self.seal.seal(reply, direction=RESPONSE)
        with structlog.contextvars.bound_contextvars(request_id=context.request_id):
            try:
                with acting_for(context):
                    result = self.service.execute(request, context=context)
                reply["result"] = codec.encode(result)
            except MetalcastError as exc:
                reply["error"] = _error(exc)
            except sa.exc.IntegrityError:
                # a unique value taken by a concurrent request, past the checks before
                reply["error"] = _error(Conflict(UNIQUE_TAKEN))
            except Exception as exc:  # boundary: the caller gets a 500 naming this conductor
                if is_unreachable(exc):
                    first = next(iter(str(exc).splitlines()), type(exc).__name__)
                    _log.warning("database unavailable: %s", first)
                    reply["error"] = _error(ServiceUnavailable(DATABASE_UNAVAILABLE))
                    return self.seal.seal(reply, direction=RESPONSE)
                _log.exception("request %s failed", type(request).__name__)
                reply["error"] = _error(
                    MetalcastError(
                        f"Internal error in conductor {self.service.hostname} while "
                        f"executing {type(request).__name__}; its log has the details "
                        f"(request {context.request_id})."
                    )
                )
        return self.seal.seal(reply, direction=RESPONSE)


def _parse(message: dict[str, Any]) -> tuple[Call[Any], RequestContext]:
    params = message.get("params")
    if not isinstance(params, dict):
        raise codec.CodecError("an RPC request without params")
    request = codec.decode(params.get("request"))
    context = codec.decode(params.get("context"))
    if not isinstance(request, Call) or type(request).__name__ != message.get("method"):
        raise codec.CodecError(f"an RPC request for {message.get('method')!r} holds no such call")
    if not isinstance(context, RequestContext):
        raise codec.CodecError("an RPC request without its caller")
    return request, context


def _error(exc: MetalcastError) -> dict[str, Any]:
    return {"code": APPLICATION_ERROR, "message": exc.message, "data": codec.encode_error(exc)}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[Any], rpc: RpcServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.rpc = rpc
        self.stopping = threading.Event()
        #: connection -> since when it is idle (monotonic), None while a request is in
        #: it (a new connection is opened to send one)
        self._connections: dict[socket.socket, float | None] = {}
        #: when the last request was answered (monotonic), on any connection, closed
        #: ones included: whoever sent it may send the next on a new connection
        self._last_answer = float("-inf")
        self._guard = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._guard:
            self._connections[request] = None
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def mark(self, connection: socket.socket, *, busy: bool) -> None:
        """Record that a request started (``busy``) or was answered on ``connection``."""
        with self._guard:
            now = time.monotonic()
            if not busy:
                self._last_answer = now
            if connection in self._connections:
                self._connections[connection] = None if busy else now

    def wait_unused(self, grace: float) -> None:
        """Block until no request is in flight, every connection left has been idle
        for :data:`LINGER` seconds and so has the server (a request answered on a
        connection closed since counts: its sender may open a new one), or for
        ``grace`` seconds beyond ``LINGER``."""
        deadline = time.monotonic() + LINGER + grace
        while time.monotonic() < deadline:
            with self._guard:
                since = [*self._connections.values(), self._last_answer]
            now = time.monotonic()
            if all(s is not None and now - s >= LINGER for s in since):
                return
            time.sleep(0.05)

    def close_connections(self) -> None:
        with self._guard:
            connections, self._connections = list(self._connections), {}
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: headers and body go out in two writes: without this, the body waits for the
    #: client's delayed ACK (40 ms a request on Linux)
    disable_nagle_algorithm = True
    server: _HTTPServer

    def parse_request(self) -> bool:
        self.server.mark(self.connection, busy=True)  # the request line was read
        return super().parse_request()

    def handle_one_request(self) -> None:
        super().handle_one_request()
        self.server.mark(self.connection, busy=False)

    def do_GET(self) -> None:
        """The conductor's own metrics (its transitions, BMC calls, workers, locks and
        its nodes' sensor readings); nothing else answers GET."""
        if self.path != METRICS_PATH:
            self._plain(HTTPStatus.NOT_FOUND, f"no such endpoint; GET {METRICS_PATH}")
            return
        body = generate_latest(REGISTRY)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != PATH:
            self._plain(HTTPStatus.NOT_FOUND, f"no such endpoint; POST {PATH}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._plain(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return
        limit = self.server.rpc.max_body
        if not 0 < length <= limit:
            self._plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {limit} bytes")
            return
        body = self.rfile.read(length)
        try:
            reply = self.server.rpc.answer(body)
        except RpcRefused as exc:
            _log.warning("refused an RPC request from %s: %s", self.client_address[0], exc)
            self._plain(HTTPStatus.UNAUTHORIZED, exc.message)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(reply)))
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")  # sets close_connection
        self.end_headers()
        self.wfile.write(reply)

    def _plain(self, status: HTTPStatus, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the conductor logs what it does, not each exchange."""
