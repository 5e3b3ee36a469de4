"""HTTP to metalcast: lookup, heartbeat and downloads, over :mod:`urllib.request`.

Each call is one attempt with a timeout; the protocol loop decides when to retry.
Proxies from the environment are ignored: the agent talks straight to the conductor.
Downloads of what a command names go through :class:`DownloadAccess`: a relative URL
is resolved against the API URL the agent was booted with (the boot HTTP server,
which serves /images), and the agent token goes along in :data:`TOKEN_HEADER`.
Raises :class:`~metalcast_agent.errors.ApiError` (metalcast answered an error status),
:class:`~metalcast_agent.errors.ApiUnreachable` (no answer) and, for downloads,
:class:`~metalcast_agent.errors.DownloadError`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

from metalcast_agent.errors import ApiError, ApiUnreachable, DownloadError
from metalcast_agent.log import redact_url
from metalcast_agent.protocol import (
    API_VERSION,
    TOKEN_HEADER,
    VERSION_HEADER,
    HeartbeatAnswer,
    HeartbeatBody,
    LookupAnswer,
    parse_heartbeat,
    parse_lookup,
)

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


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiClient:
    """metalcast's ``/v1/lookup`` and ``/v1/heartbeat`` at ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = API_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = _opener()

    def lookup(self, macs: Sequence[str]) -> LookupAnswer:
        """Find the node these MACs belong to. Raises ApiError (404: none waiting)."""
        path = "/v1/lookup?addresses=" + quote(",".join(macs), safe=",:")
        return parse_lookup(self._call("Lookup", "GET", path, None))

    def heartbeat(self, node_uuid: str, body: HeartbeatBody) -> HeartbeatAnswer:
        """Send ``body``; the conductor's answer. Raises ApiError or ApiUnreachable."""
        path = f"/v1/heartbeat/{quote(node_uuid, safe='')}"
        return parse_heartbeat(self._call("Heartbeat", "POST", path, dict(body)))

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
    with the agent token once the lookup gave it (:attr:`token`, never logged)."""

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None

    def resolve(self, url: str) -> str:
        """``url`` made absolute against the API URL when it is a path."""
        if url.startswith("/") and not url.startswith("//") and self.base_url:
            return urljoin(self.base_url + "/", url)
        return url

    def open(self, url: str, *, what: str, timeout: float = DOWNLOAD_TIMEOUT) -> Download:
        """Start downloading ``url`` with the token. Raises DownloadError."""
        headers = {TOKEN_HEADER: self.token} if self.token else {}
        return open_download(self.resolve(url), what=what, timeout=timeout, headers=headers)


def open_download(
    url: str,
    *,
    what: str,
    timeout: float = DOWNLOAD_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> Download:
    """Start downloading ``url``. Raises DownloadError saying ``what`` failed and why."""
    shown = redact_url(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{what} from {shown} failed: only http:// and https:// URLs work")
    request = urllib.request.Request(url, headers=headers or {})
    try:
        response: http.client.HTTPResponse = _opener().open(request, timeout=timeout)
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
