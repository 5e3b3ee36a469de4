"""The frame of every dashboard page: head, navigation, the logout button."""

from __future__ import annotations

from metalcast.api.dashboard.markup import Html, escape, render
from metalcast.context import RequestContext

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<title>{title} · metalcast</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/static/app.css">
<script src="/dashboard/static/vendor/htmx.min.js" defer></script>
<script src="/dashboard/static/app.js" defer></script>
{extra}
</head>
<body>
<header>
<a class="brand" href="/dashboard">metalcast</a>
<nav><a href="/dashboard">Nodes</a> <a href="/dashboard/import">Import</a>
<a href="/dashboard/conductors">Conductors</a></nav>
<span class="who">{who}</span>
{logout}
</header>
<main>
{body}
</main>
</body>
</html>
"""

TERMINAL = Html(
    '<link rel="stylesheet" href="/dashboard/static/vendor/xterm.css">\n'
    '<script src="/dashboard/static/vendor/xterm.js" defer></script>\n'
    '<script src="/dashboard/static/console.js" defer></script>'
)

_LOGOUT = """<form method="post" action="/dashboard/logout" class="logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Log out</button>
</form>"""


def page(
    title: str,
    body: Html,
    *,
    csrf: str,
    context: RequestContext | None,
    session: bool,
    terminal: bool = False,
) -> Html:
    """A whole page; ``session``: the caller logged in here (they may log out);
    ``terminal``: the page holds a console (xterm.js and its script)."""
    who = ""
    if context is not None and context.authenticated:
        who = who_is(context)
    logout = render(_LOGOUT, csrf=csrf) if session else Html("")
    extra = TERMINAL if terminal else Html("")
    return render(_PAGE, title=title, body=body, csrf=csrf, who=who, logout=logout, extra=extra)


def who_is(context: RequestContext) -> str:
    """``alice · project team-a`` or ``admin · system``."""
    user = context.user_name or context.user or "anonymous"
    if context.system_scope == "all":
        return f"{user} · system"
    project = context.project_name or context.project
    return f"{user} · project {project}" if project else user


def message(title: str, text: str) -> Html:
    """A page body that only says something (not found, refused)."""
    return render('<h1>{title}</h1>\n<p class="notice">{text}</p>', title=title, text=text)


__all__ = ["escape", "message", "page", "who_is"]
