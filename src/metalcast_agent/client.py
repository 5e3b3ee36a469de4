"""HTTP to metalcast: lookup, heartbeat and downloads, over :mod:`urllib.request`.

Each call is one attempt with a timeout; the protocol loop decides when to retry.
Proxies from the environment are ignored: the agent talks straight to the conductor.
Downloads of what a command names go through :class:`DownloadAccess`: a relative URL
is resolved against the API URL the agent was booted with (the boot HTTP server,
which serves /images), and the agent token goes along in :data:`TOKEN_HEADER`.
Raises :class:`~metalcast_agent.errors.ApiError` (metalcast answered an error status),
:class:`~metalcast_agent.errors.ApiUnreachable` (no answer) and, for downloads,
:class:`~metalcast_agent.errors.DownloadError`.

Every request goes through one :class:`Transport`.  When the agent reaches metalcast
over HTTPS it verifies every server with the CA it was given (hostname included) and
refuses any ``http://`` URL and any redirect to one: an image, a config drive and the
agent's token only ever travel encrypted.  Verification cannot be switched off.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import quote, urljoin, urlsplit

from metalcast_agent.errors import ApiError, ApiUnreachable, ConfigError, DownloadError
from metalcast_agent.log import redact_url
from metalcast_agent.protocol import (
    API_VERSION,
    TOKEN_HEADER,
    VERSION_HEADER,
    HeartbeatAnswer,
    HeartbeatBody,
    LookupAnswer,
    parse_discovered,
    parse_heartbeat,
    parse_lookup,
)

if TYPE_CHECKING:
    import ssl

API_TIMEOUT = 30.0
DOWNLOAD_TIMEOUT = 60.0
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class Readable(Protocol):
    """A byte stream: an HTTP response body, a file, a BytesIO."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...


class ConductorApi(Protocol):
    """The two calls the protocol loop makes (a fake in tests)."""

    def lookup(self, macs: Sequence[str]) -> LookupAnswer: ...

    def heartbeat(self, node_uuid: str, body: HeartbeatBody) -> HeartbeatAnswer: ...


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to https URLs only."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme != "https":
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to {redact_url(newurl)} refused: not HTTPS",
                headers, fp,
            )  # fmt: skip
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Transport:
    """How the agent opens URLs: plain HTTP allowed (no TLS set up), or HTTPS only,
    verified with ``context``."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.context = context

    @classmethod
    def for_config(cls, api_url: str, cacert: Path | None) -> Transport:
        """HTTPS only, verified with ``cacert`` (None: the system's trust store), when
        ``api_url`` is https; else plain.

        Raises:
            ConfigError: the CA file is unusable, or this Python has no ``ssl``.
        """
        if urlsplit(api_url).scheme != "https":
            return cls()
        try:
            import ssl  # here: an agent without TLS runs on a Python without ssl too
        except ImportError:
            raise ConfigError(
                "this Python has no ssl module: rebuild the ramdisk (metalcast ramdisk build)"
            ) from None
        try:
            context = ssl.create_default_context(cafile=str(cacert) if cacert else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot verify metalcast with CA {cacert}: {exc}") from None
        # a CA file holding the server's own certificate (not a root) is an anchor too
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return cls(context)

    @property
    def https_only(self) -> bool:
        """Whether plain-HTTP URLs are refused."""
        return self.context is not None

    def opener(self) -> urllib.request.OpenerDirector:
        """A urllib opener without proxies, verifying with the context."""
        if self.context is None:
            return urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self.context),
            _HttpsOnlyRedirects(),
        )

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be opened (plain HTTP while HTTPS only), or None."""
        if self.https_only and urlsplit(url).scheme != "https":
            return "the agent talks to metalcast over HTTPS and refuses plain HTTP"
        return None


class ApiClient:
    """metalcast's ``/v1/lookup``, ``/v1/heartbeat`` and ``/v1/continue_inspection`` at
    ``base_url``."""

    def __init__(
        self, base_url: str, *, timeout: float = API_TIMEOUT, transport: Transport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = (transport or Transport()).opener()

    def lookup(self, macs: Sequence[str]) -> LookupAnswer:
        """Find the node these MACs belong to. Raises ApiError (404: none waiting)."""
        path = "/v1/lookup?addresses=" + quote(",".join(macs), safe=",:")
        return parse_lookup(self._call("Lookup", "GET", path, None))

    def heartbeat(self, node_uuid: str, body: HeartbeatBody) -> HeartbeatAnswer:
        """Send ``body``; the conductor's answer. Raises ApiError or ApiUnreachable."""
        path = f"/v1/heartbeat/{quote(node_uuid, safe='')}"
        return parse_heartbeat(self._call("Heartbeat", "POST", path, dict(body)))

    def continue_inspection(self, report: Mapping[str, object]) -> str:
        """Report an unknown machine's inventory for discovery (``{"inventory": ...}``);
        the UUID of the node it was enrolled as.  Raises ApiError (404: discovery is
        off; 409: the machine is known) or ApiUnreachable."""
        data = self._call("Discovery", "POST", "/v1/continue_inspection", dict(report))
        return parse_discovered(data)

    def _call(self, what: str, method: str, path: str, body: object) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header(VERSION_HEADER, API_VERSION)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw: bytes = response.read()
        except urllib.error.HTTPError as exc:
            detail = _fault(_drain(exc))
            raise ApiError(
                f"{what} failed: HTTP {exc.code} {exc.reason}{detail}", status=exc.code
            ) from None
        except _NETWORK_ERRORS as exc:
            raise ApiUnreachable(
                f"{what} failed: cannot reach {redact_url(self.base_url)}: {_reason(exc)}"
            ) from None
        return _json(raw)


def _json(raw: bytes) -> object:
    if not raw.strip():
        return None
    try:
        parsed: object = json.loads(raw)
    except ValueError:
        raise ApiError("metalcast answered something that is not JSON", status=None) from None
    return parsed


def _drain(error: urllib.error.HTTPError) -> bytes:
    """The body of an error answer (empty when even that fails), the answer closed."""
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""
    finally:
        error.close()


def _fault(raw: bytes) -> str:
    """``": <faultstring>"`` of an Ironic error body, or nothing."""
    try:
        body = json.loads(raw)
        message = body.get("error_message", "") if isinstance(body, dict) else ""
        if isinstance(message, str) and message.startswith("{"):
            message = json.loads(message).get("faultstring", "")
    except (ValueError, AttributeError):
        return ""
    return f": {message[:300]}" if isinstance(message, str) and message else ""


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return str(reason) or type(reason).__name__


class Download:
    """An open HTTP download: its body stream and its length when the server said it."""

    def __init__(self, stream: Readable, length: int | None, closer: _Closable) -> None:
        self.stream = stream
        self.length = length
        self._closer = closer

    def __enter__(self) -> Download:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closer.close()


class _Closable(Protocol):
    def close(self) -> None: ...


class DownloadAccess:
    """How commands download: relative URLs against ``base_url`` (the agent's API URL),
    with the agent token once the lookup gave it (:attr:`token`, never logged),
    through ``transport`` (HTTPS only, verified, once the API URL is https)."""

    def __init__(self, base_url: str = "", *, transport: Transport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None
        self.transport = transport or Transport()

    def resolve(self, url: str) -> str:
        """``url`` made absolute against the API URL when it is a path."""
        if url.startswith("/") and not url.startswith("//") and self.base_url:
            return urljoin(self.base_url + "/", url)
        return url

    def open(self, url: str, *, what: str, timeout: float = DOWNLOAD_TIMEOUT) -> Download:
        """Start downloading ``url`` with the token. Raises DownloadError."""
        headers = {TOKEN_HEADER: self.token} if self.token else {}
        return open_download(
            self.resolve(url), what=what, timeout=timeout, headers=headers, transport=self.transport
        )


def open_download(
    url: str,
    *,
    what: str,
    timeout: float = DOWNLOAD_TIMEOUT,
    headers: dict[str, str] | None = None,
    transport: Transport | None = None,
) -> Download:
    """Start downloading ``url`` with ``headers`` through ``transport`` (default: plain
    HTTP allowed). ``headers`` go to ``url`` only, never to where it redirects: they
    carry the agent token. Raises DownloadError saying ``what`` failed and why."""
    shown = redact_url(url)
    transport = transport or Transport()
    if urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{what} from {shown} failed: only http:// and https:// URLs work")
    refusal = transport.refusal(url)
    if refusal is not None:
        raise DownloadError(f"{what} from {shown} refused: {refusal}")
    request = urllib.request.Request(url)
    for name, value in (headers or {}).items():
        request.add_unredirected_header(name, value)
    try:
        response: http.client.HTTPResponse = transport.opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        detail = _fault(_drain(exc))
        raise DownloadError(
            f"{what} from {shown} failed: HTTP {exc.code} {exc.reason}{detail}"
        ) from None
    except _NETWORK_ERRORS as exc:
        raise DownloadError(f"{what} from {shown} failed: {_reason(exc)}") from None
    return Download(response, _length(response.getheader("Content-Length")), response)


def _length(header: str | None) -> int | None:
    try:
        return int(header) if header is not None else None
    except ValueError:
        return None
