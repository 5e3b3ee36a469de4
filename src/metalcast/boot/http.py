"""The boot HTTP server: boot files, images, and a relay to the API for agents.

Routes:

``GET|HEAD /boot/<path>``
    files of the boot directory (iPXE scripts, deploy kernel and ramdisk);
``GET|HEAD /images/<path>``
    files of the images directory (cached images, config drives), streamed, with
    Range requests (206) for agents that resume or split a download; only with a URL
    the conductor signed for one node and that node's agent token in the
    ``X-Metalcast-Agent-Token`` header (:mod:`metalcast.agent_downloads`), else 403;
``GET /``, ``GET /v1``, ``GET /v1/lookup``, ``POST /v1/heartbeat/<node>``,
``POST /v1/continue_inspection`` (a discovered machine's inventory)
    relayed, streaming both ways, to the API (``api_url``): the agent on the
    provisioning network reaches an API that listens only on loopback elsewhere.
    Identity and credential headers (``X-Roles``, ``Authorization``, ``Cookie``, …)
    are dropped on the way: the relay carries the agent's calls, nobody's identity.

With TLS the boot services run two of these servers (:mod:`metalcast.boot.service`):
the whole application above over HTTPS, and :func:`create_files_app` on the plain
port, which serves ``/boot/`` only (firmware cannot verify a certificate) and
refuses the rest, so that no token, image or config drive ever crosses it.

Paths with a ``..`` or a dot-named part, and absurdly long ones, are not served
(temporary files are dot-named); errors are in Ironic's shape.  The server listens
on a socket made inside the provisioning network's namespace
(:func:`metalcast.boot.netns.socket_in_netns`) while the relay connects from the
namespace metalcast runs in.  It runs in a thread with its own event loop, beside
whatever else the process serves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metalcast.agent_downloads import TOKEN_HEADER, DownloadRefused, UrlSigner
from metalcast.boot.errors import BootHttpError
from metalcast.boot.netns import socket_in_netns
from metalcast.tls.certificates import ServerCertificate, uvicorn_options

log = logging.getLogger("metalcast.boot.http")

#: headers that concern one connection, not the message: never relayed
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
#: headers that say who is calling, or carry credentials: never relayed to the API
#: (an agent has none; anything else is someone posing as a proxy or a user)
_IDENTITY = frozenset(
    {
        "authorization",
        "cookie",
        "forwarded",
        "openstack-system-scope",
        "x-auth-token",
        "x-identity-status",
        "x-is-admin-project",
        "x-real-ip",
        "x-roles",
        "x-service-catalog",
        "x-subject-token",
        TOKEN_HEADER.lower(),
    }
)
_IDENTITY_PREFIXES = (
    "x-user-",
    "x-project-",
    "x-tenant-",
    "x-domain-",
    "x-service-",
    "x-role-",
    "x-forwarded-",
)
_RELAY_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: longer names than any file the boot services write; longer paths are not looked up
_MAX_PATH = 1024


def plain_parts(relative: str) -> tuple[str, ...] | None:
    """The parts of ``relative`` if it may name a served file: relative, no ``..``,
    no dot-named part, not absurdly long; else None."""
    if len(relative) > _MAX_PATH or relative.startswith("/"):
        return None
    parts = PurePosixPath(relative).parts
    if not parts or any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    return parts


def safe_file(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a regular file and ``relative`` stays inside
    ``root`` by name (:func:`plain_parts`); else None.  Symlinks the boot services
    made (deploy images) are followed."""
    parts = plain_parts(relative)
    if parts is None:
        return None
    path = root.joinpath(*parts)
    try:
        return path if path.is_file() else None
    except OSError:  # a name too long for the filesystem, a loop of symlinks
        return None


def error_response(status: int, message: str) -> JSONResponse:
    """An error in Ironic's shape (a JSON document inside ``error_message``), as the
    API answers, so that the agent and clients read one kind of error body."""
    inner = {
        "faultstring": message,
        "faultcode": "Client" if status < 500 else "Server",
        "debuginfo": None,
    }
    return JSONResponse({"error_message": json.dumps(inner)}, status_code=status)


class _LargeChunks(FileResponse):
    """A file in 1 MiB pieces rather than starlette's 64 KiB: an image of a few GiB
    is thousands of thread hops and event-loop turns fewer, on the conductor's CPU."""

    chunk_size = 1024 * 1024


def _file_response(root: Path, relative: str) -> Response:
    path = safe_file(root, relative)
    if path is None:
        return error_response(404, "No such file.")
    if path.suffix == ".ipxe":
        media_type = "text/plain; charset=utf-8"
    else:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _LargeChunks(path, media_type=media_type)


async def _boot_file(request: Request) -> Response:
    root: Path = request.app.state.boot_dir
    return _file_response(root, request.path_params["path"])


async def _image(request: Request) -> Response:
    """An image or config drive, for the agent the conductor signed its URL for."""
    signer: UrlSigner | None = request.app.state.signer
    clock: Callable[[], float] = request.app.state.clock
    if plain_parts(request.path_params["path"]) is None:
        return error_response(404, "No such file.")  # no name the conductor hands out
    if signer is None:
        return error_response(403, "This boot server hands out no images: it has no signing key.")
    query = {name: request.query_params.getlist(name) for name in request.query_params}
    try:
        signer.check(request.url.path, query, token=request.headers.get(TOKEN_HEADER), now=clock())
    except DownloadRefused as exc:
        log.warning("refused %s from %s: %s", request.url.path, _peer(request), exc.message)
        return error_response(403, exc.message)
    root: Path = request.app.state.images_dir
    return _file_response(root, request.path_params["path"])


def _peer(request: Request) -> str:
    return request.client.host if request.client else "-"


def _relayed_headers(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(key, value) for key, value in items if key.lower() not in _HOP_BY_HOP]


def _identity_free(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``items`` without the headers that carry an identity or credentials."""
    return [
        (key, value)
        for key, value in items
        if key.lower() not in _IDENTITY and not key.lower().startswith(_IDENTITY_PREFIXES)
    ]


def _upstream_request(client: httpx.AsyncClient, request: Request) -> httpx.Request:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = _identity_free(_relayed_headers(request.headers.items()))
    if request.client is not None:
        headers.append(("x-forwarded-for", request.client.host))
    # the API's links point back through here only if api.trusted_proxies lists this
    # server (agents need no links: their download URLs are relative)
    if "host" in request.headers:
        headers.append(("x-forwarded-host", request.headers["host"]))
        headers.append(("x-forwarded-proto", request.url.scheme))
    has_body = request.method in ("POST", "PUT", "PATCH")
    return client.build_request(
        request.method, target, headers=headers, content=request.stream() if has_body else None
    )


async def _relay(request: Request) -> Response:
    client: httpx.AsyncClient = request.app.state.upstream
    try:
        upstream = await client.send(_upstream_request(client, request), stream=True)
    except httpx.HTTPError as exc:
        log.warning("relay of %s %s failed: %s", request.method, request.url.path, exc)
        return error_response(502, f"metalcast API unreachable from the boot server: {exc}")
    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    response.raw_headers = [
        (key.encode("latin-1"), value.encode("latin-1"))
        for key, value in _relayed_headers(upstream.headers.multi_items())
    ]
    return response


class AccessLog:
    """Logs every request: client, method, path, status (boot debugging starts here)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %d", client[0], scope["method"], scope["path"], status)


def create_app(
    *,
    boot_dir: Path,
    images_dir: Path,
    api_url: str,
    signer: UrlSigner | None,
    upstream: httpx.AsyncClient | None = None,
    upstream_tls: ssl.SSLContext | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The boot HTTP application.

    ``signer`` checks the signed URLs of /images (None: /images refuses everything);
    ``upstream`` is the client the relay uses (tests pass one with a mock
    transport); by default one is opened for ``api_url`` while the app runs, which
    verifies an https ``api_url`` with ``upstream_tls`` (None: the system's trust
    store).  ``clock`` tells the time signed URLs expire against.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if upstream is not None:
            yield
            return
        verify: ssl.SSLContext | bool = upstream_tls if upstream_tls is not None else True
        async with httpx.AsyncClient(
            base_url=api_url, timeout=_RELAY_TIMEOUT, verify=verify
        ) as client:
            app.state.upstream = client
            yield

    app = Starlette(
        routes=[
            Route("/boot/{path:path}", _boot_file, methods=["GET", "HEAD"]),
            Route("/images/{path:path}", _image, methods=["GET", "HEAD"]),
            Route("/", _relay, methods=["GET"]),
            Route("/v1", _relay, methods=["GET"]),
            Route("/v1/lookup", _relay, methods=["GET"]),
            Route("/v1/heartbeat/{node}", _relay, methods=["POST"]),
            Route("/v1/continue_inspection", _relay, methods=["POST"]),
        ],
        middleware=[Middleware(AccessLog)],
        lifespan=lifespan,
    )
    app.state.boot_dir = boot_dir
    app.state.images_dir = images_dir
    app.state.signer = signer
    app.state.clock = clock
    if upstream is not None:
        app.state.upstream = upstream
    return app


def create_files_app(*, boot_dir: Path, https_url: str) -> Starlette:
    """The plain-HTTP side of a boot server that has TLS: boot files only.

    Anything else gets 403 and the HTTPS address, so that an agent (or a person)
    sent here learns where to go instead of sending its token in the clear.
    """

    async def elsewhere(request: Request) -> Response:
        return error_response(403, f"{request.url.path} is served over HTTPS only, at {https_url}")

    app = Starlette(
        routes=[
            Route("/boot/{path:path}", _boot_file, methods=["GET", "HEAD"]),
            Route("/{path:path}", elsewhere, methods=["GET", "HEAD", "POST", "PUT", "PATCH"]),
        ],
        middleware=[Middleware(AccessLog)],
    )
    app.state.boot_dir = boot_dir
    return app


class BootHttpServer:
    """Serves an ASGI app on ``host``:``port`` inside network namespace ``netns``,
    from a thread of its own (uvicorn, its own event loop); over TLS with ``tls``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        netns: str | None = None,
        tls: ServerCertificate | None = None,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._netns = netns
        self._tls = tls
        self._server: Any = None  # uvicorn.Server, untyped
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def where(self) -> str:
        """``http(s)://host:port`` and the namespace, for messages."""
        inside = f" in network namespace {self._netns}" if self._netns else ""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self._host}:{self._port}{inside}"

    @property
    def running(self) -> bool:
        thread, server = self._thread, self._server
        return bool(thread and thread.is_alive() and server is not None and server.started)

    def start(self, *, timeout: float = 10.0) -> None:
        """Listen and serve; returns once requests are answered.

        Raises:
            BootHttpError: the socket cannot be made (address not on the interface,
                port taken, namespace missing) or the server did not start.
        """
        if self.running:
            return
        sock = self._listen()
        config = uvicorn.Config(
            self._app,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
            **uvicorn_options(self._tls),
            # the peer is who connected: uvicorn would take X-Forwarded-For from a
            # loopback client for it (and the relay passes the peer on to the API)
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._failure = None
        self._thread = threading.Thread(
            target=self._serve,
            args=(sock,),
            name="boot-https" if self._tls else "boot-http",
            daemon=True,
        )
        self._thread.start()
        self._await_started(timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving: finish requests in flight for up to ``timeout`` seconds."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join()
        self._thread = None

    def _listen(self) -> socket.socket:
        try:
            return socket_in_netns(self._netns, self._host, self._port)
        except OSError as exc:
            raise BootHttpError(f"cannot listen on {self.where}: {exc}") from exc

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed start: report it
            self._failure = exc
        finally:
            sock.close()

    def _await_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        thread = self._thread
        assert thread is not None
        while time.monotonic() < deadline and thread.is_alive():
            if self._server.started:
                log.info("boot HTTP server listening on %s", self.where)
                return
            time.sleep(0.02)
        self.stop(timeout=1.0)
        why = repr(self._failure) if self._failure else "no answer in time"
        raise BootHttpError(f"boot HTTP server on {self.where} did not start: {why}")
