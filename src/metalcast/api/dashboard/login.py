"""Logging in and out of the dashboard (``builtin`` authentication).

A login is ``POST /v1/auth/tokens`` with the user's name and password (HTTP Basic,
as the CLI sends them), through the API itself: the answer's token goes into the
session cookie (:mod:`.session`) and lives as long as the token does
(``api.token_ttl``).  Logging out revokes the token (``DELETE /v1/auth/tokens/{id}``)
and clears the cookies.  Under ``noauth`` there is nothing to log in to; under
``header`` and ``keystone`` the identity comes from elsewhere (a proxy, Keystone),
so the login page says so.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request

from metalcast.api.dashboard.api_calls import Api
from metalcast.api.dashboard.markup import Html, render

DESCRIPTION = "dashboard session"

_FORM = """<h1>Log in</h1>
{error}
<form method="post" action="/dashboard/login" class="login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label>User <input type="text" name="username" autocomplete="username" required autofocus></label>
<label>Password
 <input type="password" name="password" autocomplete="current-password" required></label>
<p class="hint">To pick a project, log in as <code>name@project</code>.</p>
<button type="submit">Log in</button>
</form>"""

_ELSEWHERE = {
    "noauth": "This server does not authenticate (api.auth_strategy noauth, loopback only): "
    "every caller is an administrator.",
    "header": "This server believes the identity its authenticating proxy sets "
    "(api.auth_strategy header): log in there.",
    "keystone": "This server authenticates with Keystone tokens (api.auth_strategy keystone); "
    "the dashboard's login form works with metalcast's own users (builtin) only.",
}


def form(*, csrf: str, next_path: str, error: str | None = None) -> Html:
    shown = render('<p class="notice error">{text}</p>', text=error) if error else Html("")
    return render(_FORM, error=shown, csrf=csrf, next=next_path)


def elsewhere(strategy: str) -> str | None:
    """What the login page says instead of a form, when logins happen elsewhere."""
    return _ELSEWHERE.get(strategy)


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a dashboard path, never another site."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard"


async def create_session(request: Request, user: str, password: str) -> tuple[str, str, int] | str:
    """A token for ``user``: ``(secret, id, seconds it lives)``, or the API's refusal."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    async with Api(request, credentials={"authorization": f"Basic {basic}"}) as api:
        answer = await api.send("POST", "/v1/auth/tokens", body={"description": DESCRIPTION})
    if not answer.ok:
        return answer.error
    doc = answer.document
    lives = 3600
    expires = doc.get("expires_at")
    if isinstance(expires, str):
        try:
            at = datetime.fromisoformat(expires)
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            lives = max(int((at - datetime.now(UTC)).total_seconds()), 1)
        except ValueError:
            pass
    return str(doc["token"]), str(doc["id"]), lives


async def end_session(request: Request, token_id: str) -> None:
    """Revoke the session's token (an already revoked or expired one is gone anyway)."""
    async with Api(request) as api:
        await api.send("DELETE", "/v1/auth/tokens/" + quote(token_id, safe=""))
