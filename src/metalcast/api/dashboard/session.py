"""The browser's session: cookies, CSRF protection and the login guard.

A login (:mod:`.login`, ``builtin`` authentication) makes an API token for the user
and keeps it in the ``metalcast_session`` cookie: ``HttpOnly`` (no script reads it),
``SameSite=Strict`` (no other site's page sends it), ``Path=/dashboard`` and
``Secure`` over HTTPS (or when ``api.public_url`` is an ``https`` one).
:class:`SessionCookie` hands it to the API's authentication as ``X-Auth-Token`` for
dashboard paths only: the ``/v1`` API itself never takes cookies, so no other site
can make a browser call it.

Every dashboard POST must carry the ``metalcast_csrf`` cookie's value (a random
string the dashboard sets; double submit) in the ``X-CSRF-Token`` header or a
``csrf`` form field, and an ``Origin`` header, when the browser sends one, naming
this server (as the browser reached it, or ``api.public_url``).  That holds under
``noauth`` too, where no session cookie exists and a hostile page on the operator's
machine could otherwise post to the loopback API.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from metalcast.context import RequestContext
from metalcast.errors import Forbidden

PREFIX = "/dashboard"
TOKEN_COOKIE = "metalcast_session"
TOKEN_ID_COOKIE = "metalcast_session_id"
CSRF_COOKIE = "metalcast_csrf"
CSRF_HEADER = "x-csrf-token"

#: what every dashboard answer says about itself: only this server's scripts and
#: styles, no framing, no sniffing, nothing cached
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


#: the console page's policy: xterm.js draws the terminal's dimensions and colours
#: with ``<style>`` elements it makes itself, which ``style-src 'self'`` blocks; that
#: page alone lets inline styles apply (scripts stay this server's files only)
TERMINAL_CSP = SECURITY_HEADERS["content-security-policy"].replace(
    "style-src 'self';", "style-src 'self' 'unsafe-inline';"
)


def is_dashboard(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class SessionCookie:
    """ASGI middleware: the session cookie becomes ``X-Auth-Token`` on dashboard
    paths of requests that carry no credentials of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_dashboard(scope["path"]):
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
            names = {name for name, _ in headers}
            token = _cookies(headers).get(TOKEN_COOKIE)
            if token and b"x-auth-token" not in names and b"authorization" not in names:
                headers.append((b"x-auth-token", token.encode("latin-1", "replace")))
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def _cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: no session, not an error
                return {}
    return {key: morsel.value for key, morsel in jar.items()}


def context_of(request: Request) -> RequestContext:
    """The caller, as the API's middleware authenticated them."""
    context = request.scope.get("state", {}).get("context")
    assert isinstance(context, RequestContext)
    return context


def csrf_token(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (the answer must set it); the
    same for the whole request."""
    known = getattr(request.state, "csrf", None)
    if isinstance(known, tuple):
        return known
    token = request.cookies.get(CSRF_COOKIE, "")
    found = (token, False) if len(token) >= 32 and token.isascii() else (_new_token(), True)
    request.state.csrf = found
    return found


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def check_post(request: Request, form: dict[str, list[str]] | None = None) -> None:
    """Refuse a POST another site could have made.

    Raises:
        Forbidden: the Origin is another site's, or the CSRF token is missing or wrong.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin not in _origins(request):
        raise Forbidden(f"This request comes from another site ({origin[:100]}); refused.")
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER) or ((form or {}).get("csrf") or [""])[0]
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden(
            "The dashboard's CSRF token is missing or wrong: reload the page and try again."
        )


def _public_url(request: Request) -> str | None:
    deps = getattr(request.app.state, "deps", None)
    url = getattr(getattr(getattr(deps, "settings", None), "api", None), "public_url", None)
    return str(url) if url else None


def _origins(request: Request) -> set[str]:
    """This server's origins: where the browser reached it, and ``api.public_url``
    (a TLS-terminating proxy in front)."""
    found = {f"{request.url.scheme}://{request.url.netloc}"}
    public = _public_url(request)
    if public:
        parts = urlsplit(public)
        found.add(f"{parts.scheme}://{parts.netloc}")
    return found


def _https(request: Request) -> bool:
    public = _public_url(request)
    return request.url.scheme == "https" or bool(public and public.startswith("https:"))


def set_cookie(request: Request, response: Response, name: str, value: str, **kw: int) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_https(request),
        **kw,  # type: ignore[arg-type]
    )


def finish(request: Request, response: Response, *, terminal: bool = False) -> Response:
    """``response`` with the security headers and, when the browser has none yet,
    the CSRF cookie; ``terminal``: the console page's policy (:data:`TERMINAL_CSP`)."""
    response.headers.update(SECURITY_HEADERS)
    if terminal:
        response.headers["content-security-policy"] = TERMINAL_CSP
    token, new = csrf_token(request)
    if new:
        set_cookie(request, response, CSRF_COOKIE, token)
    return response
