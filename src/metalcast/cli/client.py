"""The CLI's HTTP client for metalcast's Ironic-compatible REST API.

It negotiates the API microversion once (the server's newest, like
python-ironicclient does, unless ``--api-version`` pins one), sends it in
``X-OpenStack-Ironic-API-Version`` on every request, follows ``next`` links and turns
Ironic's error bodies into one readable message.  Credentials, when given, go on every
request: an API token in ``X-Auth-Token`` (:class:`TokenAuth`) or a user name and
password as HTTP Basic.

Errors::

    MetalcastError
    └── CliError             shown to the operator as one red line, exit code 1
        ├── ApiError         the API answered with an error status (``status``)
        └── Unreachable      nothing answers at the URL
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Generator, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from metalcast.errors import MetalcastError
from metalcast.tls.trust import ca_context

VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
MAX_VERSION_HEADER = "X-OpenStack-Ironic-API-Maximum-Version"
DEFAULT_URL = "http://127.0.0.1:6385"

JSON = dict[str, Any]


class CliError(MetalcastError):
    """A failure the CLI reports as one line and exit code 1."""


class ApiError(CliError):
    """The API refused or failed a request; ``message`` is its faultstring."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(CliError):
    """No metalcast API answers at ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach metalcast at {url}: is `metalcast server` running?")
        self.url = url


#: what a 401 adds when the client sent no credentials
CREDENTIALS_HINT = (
    "Give credentials: METALCAST_TOKEN (or --token), or METALCAST_USERNAME and METALCAST_PASSWORD."
)


class TokenAuth(httpx.Auth):
    """Sends an API token in ``X-Auth-Token``, as Ironic's clients do."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = self._token
        yield request


def node_path(node: str, *parts: str) -> str:
    """The API path of a node (by UUID or name) or of one of its sub-resources."""
    return "/".join(["/v1/nodes", quote(node, safe=""), *parts])


def fault_message(response: httpx.Response) -> str:
    """The faultstring of an Ironic error body, or the best text available."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:200]
        return f"HTTP {response.status_code}: {text or response.reason_phrase}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {body}"
    raw = body.get("error_message", body)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return str(raw)
    if isinstance(raw, dict):
        for key in ("faultstring", "description", "title", "message"):
            if raw.get(key):
                return str(raw[key])
    return f"HTTP {response.status_code}: {raw}"


def _verification_failed(exc: httpx.HTTPError) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class ApiClient:
    """A synchronous client for one metalcast API endpoint.

    An https URL is verified with ``tls`` (by default the system's trust store, as
    OpenSSL finds it: ``SSL_CERT_FILE`` and ``/etc/ssl/certs`` included).
    """

    def __init__(
        self,
        url: str,
        api_version: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self._pinned = api_version if api_version not in (None, "", "latest") else None
        self._version: str | None = self._pinned
        self._authenticated = auth is not None
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            auth=auth,
            verify=tls if tls is not None else ca_context(),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def http(self) -> httpx.Client:
        """The underlying HTTP client (for what is not a JSON request: the event
        stream, :mod:`metalcast.cli.events`)."""
        return self._http

    @property
    def api_version(self) -> str:
        """The microversion in use, negotiated on first use.

        Raises:
            Unreachable, ApiError: the API root cannot be read.
        """
        if self._version is None:
            self._version = self._negotiate()
        return self._version

    def _negotiate(self) -> str:
        response = self._send("GET", "/v1", headers={})
        header = response.headers.get(MAX_VERSION_HEADER)
        if header:
            return str(header)
        body = response.json()
        version = body.get("version") if isinstance(body, dict) else None
        if isinstance(version, dict) and version.get("version"):
            return str(version["version"])
        raise CliError(f"{self.url}/v1 does not say which API versions it serves")

    def _send(
        self, method: str, path: str, *, headers: Mapping[str, str], **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if _verification_failed(exc):
                raise CliError(
                    f"cannot trust {self.url}: {exc}; give the CA certificate that signed "
                    "its certificate with --cacert or METALCAST_CACERT"
                ) from None
            raise Unreachable(self.url) from None
        except httpx.HTTPError as exc:
            raise CliError(f"{method} {path} failed: {exc}") from exc
        if response.is_error:
            message = fault_message(response)
            if response.status_code == 401 and not self._authenticated:
                message = f"{message} {CREDENTIALS_HINT}"
            raise ApiError(message, status=response.status_code)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return its decoded JSON body (``None`` if empty).

        Raises:
            ApiError: the API answered 4xx/5xx.  Unreachable: connection refused.
        """
        headers = {VERSION_HEADER: self.api_version}
        response = self._send(method, path, headers=headers, **kwargs)
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` (see :meth:`request`)."""
        return self.request("GET", path, params=dict(params or {}))

    def post(self, path: str, body: JSON) -> Any:
        """POST a JSON body (see :meth:`request`)."""
        return self.request("POST", path, json=body)

    def put(self, path: str, body: JSON | None = None) -> Any:
        """PUT a JSON body (see :meth:`request`)."""
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        """DELETE ``path`` (see :meth:`request`)."""
        return self.request("DELETE", path)

    def paginate(
        self, path: str, key: str, *, params: Mapping[str, Any], limit: int = 0
    ) -> Iterator[JSON]:
        """Yield the items of a collection, following ``next`` links.

        ``limit`` > 0 stops after that many items; 0 lists everything.
        """
        query = dict(params)
        if limit > 0:
            query["limit"] = limit
        page: Any = self.get(path, query)
        count = 0
        while True:
            for item in page.get(key, []):
                yield item
                count += 1
                if 0 < limit <= count:
                    return
            next_url = page.get("next")
            if not next_url:
                return
            page = self.request("GET", next_url)
