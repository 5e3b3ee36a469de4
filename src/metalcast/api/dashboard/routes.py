"""The dashboard's routes: pages for browsers, partials for htmx, the event stream."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message

from metalcast.api import auth
from metalcast.api.dashboard import (
    actions,
    conductors_page,
    console_page,
    deploy,
    enrolment,
    layout,
    login,
    node_page,
    session,
    table,
)
from metalcast.api.dashboard.api_calls import Api
from metalcast.api.dashboard.markup import Html, render
from metalcast.api.endpoint import Deps
from metalcast.api.routes import node_events
from metalcast.errors import InvalidInput

STATIC = Path(__file__).parent / "static"
#: the largest form the dashboard reads (a bulk action naming a page of nodes)
MAX_FORM = 64 * 1024


def _page(
    request: Request, title: str, body: Html, status: int = 200, *, terminal: bool = False
) -> Response:
    csrf, _ = session.csrf_token(request)
    context = session.context_of(request)
    html = layout.page(
        title,
        body,
        csrf=csrf,
        context=context,
        session=session.TOKEN_COOKIE in request.cookies and context.authenticated,
        terminal=terminal,
    )
    return session.finish(request, HTMLResponse(html, status_code=status), terminal=terminal)


def _partial(request: Request, body: Html, status: int = 200) -> Response:
    return session.finish(request, HTMLResponse(body, status_code=status))


def _login_required(request: Request) -> Response | None:
    """The answer for a caller who proved nothing: the login page (htmx: a redirect
    header); None for an authenticated caller."""
    if session.context_of(request).authenticated:
        return None
    target = "/dashboard/login?next=" + request.url.path
    if request.headers.get("hx-request"):
        return session.finish(request, Response(status_code=401, headers={"HX-Redirect": target}))
    return session.finish(request, RedirectResponse(target, status_code=303))


async def nodes(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    filters = table.Filters.of(request.query_params)
    async with Api(request) as api:
        listing = await table.fetch(api, filters)
    return _page(request, "Nodes", table.nodes_page(listing, filters))


async def nodes_table(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    filters = table.Filters.of(request.query_params)
    async with Api(request) as api:
        listing = await table.fetch(api, filters)
    return _partial(request, table.table(listing, filters))


async def node_row(request: Request) -> Response:
    """One row as it is now; empty once the caller can no longer see the node."""
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        answer = await table.fetch_row(api, request.path_params["node"])
    return _partial(request, table.row(answer.document) if answer.ok else Html(""))


async def node(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        view = await node_page.fetch(api, request.path_params["node"])
    if view is None:
        text = "There is no such node, or you may not see it."
        return _page(request, "Node not found", layout.message("Node not found", text), 404)
    title = view.node.get("name") or view.node["uuid"]
    csrf, _ = session.csrf_token(request)
    return _page(request, str(title), node_page.page(view, csrf=csrf))


def _not_found(request: Request) -> Response:
    text = "There is no such node, or you may not see it."
    return _page(request, "Node not found", layout.message("Node not found", text), 404)


async def node_panel(request: Request) -> Response:
    """The node's live state and progress (the event stream redraws it)."""
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        found = await api.get("/v1/nodes/" + quote(request.path_params["node"], safe=""))
    if not found.ok:
        return _partial(request, Html(""), 404)
    return _partial(request, node_page.live(found.document))


async def node_deploy(request: Request) -> Response:
    """The deploy form's submission: the form again with the error, or accepted.

    A refused form is 400, but 200 for htmx, which swaps only successful answers."""
    if (refused := _login_required(request)) is not None:
        return refused
    form = await _form(request, limit=deploy.MAX_FORM)
    session.check_post(request, form)
    csrf, _ = session.csrf_token(request)
    given = deploy.DeployForm.of(form)
    refusal = 200 if request.headers.get("hx-request") else 400
    async with Api(request) as api:
        found = await api.get("/v1/nodes/" + quote(request.path_params["node"], safe=""))
        if not found.ok:
            return _partial(request, render_error(found.error), 404)
        node = found.document
        try:
            answer = await deploy.start(api, node, given)
        except InvalidInput as exc:
            body = deploy.form(node, csrf=csrf, given=given, error=exc.message)
            return _partial(request, body, refusal)
    if not answer.ok:
        body = deploy.form(node, csrf=csrf, given=given, error=answer.error)
        return _partial(request, body, refusal)
    return _partial(request, deploy.accepted(node))


def render_error(text: str) -> Html:
    return render('<p class="error">{text}</p>', text=text)


async def import_page(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    csrf, _ = session.csrf_token(request)
    return _page(request, "Import nodes", enrolment.page(csrf=csrf))


async def import_submit(request: Request) -> Response:
    """A CSV upload: every row's error and nothing created, or every node created."""
    if (refused := _login_required(request)) is not None:
        return refused
    csrf, _ = session.csrf_token(request)
    upload = await _upload(request)
    if isinstance(upload, enrolment.Outcome):
        return _page(request, "Import nodes", enrolment.page(csrf=csrf, outcome=upload), 413)
    session.check_post(request, {"csrf": [upload[0]]})
    checked = enrolment.check_text(upload[1])
    if isinstance(checked, enrolment.Outcome):
        outcome = checked
    else:
        async with Api(request) as api:
            outcome = await enrolment.enrol(api, checked)
    status = 200 if outcome.created else 400
    return _page(request, "Import nodes", enrolment.page(csrf=csrf, outcome=outcome), status)


async def _upload(request: Request) -> tuple[str, bytes] | enrolment.Outcome:
    """The CSRF field and the file of a ``multipart/form-data`` upload, read no
    further than :data:`enrolment.MAX_UPLOAD_BYTES`; the outcome refusing it else.

    Raises:
        InvalidInput: not a multipart form, or one without a file.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "multipart/form-data":
        raise InvalidInput("Upload the CSV with the form (multipart/form-data).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > enrolment.MAX_UPLOAD_BYTES:
        return enrolment.Outcome(problem=enrolment.too_large())
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > enrolment.MAX_UPLOAD_BYTES:
            return enrolment.Outcome(problem=enrolment.too_large())
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    parsed = await Request(request.scope, replay).form(
        max_files=1, max_fields=10, max_part_size=enrolment.MAX_UPLOAD_BYTES
    )
    file = parsed.get("csv")
    csrf = parsed.get("csrf")
    if not isinstance(file, UploadFile):
        raise InvalidInput("Choose a CSV file to upload.")
    data = await file.read()
    await parsed.close()
    return (csrf if isinstance(csrf, str) else ""), data


async def conductors(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        fleet = await conductors_page.fetch(api)
    return _page(request, "Conductors", conductors_page.page(fleet))


async def console(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        found = await api.get("/v1/nodes/" + quote(request.path_params["node"], safe=""))
    if not found.ok:
        return _not_found(request)
    node = found.document
    title = f"Console of {node.get('name') or node['uuid']}"
    return _page(request, title, console_page.page(node), terminal=True)


async def console_info(request: Request) -> Response:
    """The API's console_info as the caller (its URL carries the websocket's token)."""
    if (refused := _login_required(request)) is not None:
        return refused
    async with Api(request) as api:
        answer = await console_page.info(api, request.path_params["node"])
    document = answer.document if answer.ok else {"error": answer.error}
    return session.finish(request, JSONResponse(document, status_code=answer.status))


async def console_switch(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    form = await _form(request)
    session.check_post(request, form)
    enabled = (form.get("enabled") or [""])[0] == "true"
    async with Api(request) as api:
        answer = await console_page.switch(api, request.path_params["node"], enabled=enabled)
    return _partial(request, console_page.switched(answer, enabled=enabled), 200)


async def bulk_action(request: Request) -> Response:
    if (refused := _login_required(request)) is not None:
        return refused
    form = await _form(request)
    session.check_post(request, form)
    try:
        action, picked = actions.parse(form)
    except InvalidInput as exc:
        return _partial(request, actions.refusal(str(exc)), 400)
    async with Api(request) as api:
        answers = await actions.run(api, action, picked)
    return _partial(request, actions.results(action, answers))


async def login_page(request: Request) -> Response:
    csrf, _ = session.csrf_token(request)
    next_path = login.safe_next(request.query_params.get("next"))
    strategy = auth.effective_strategy(_deps(request).settings)
    if strategy == "builtin":
        return _page(request, "Log in", login.form(csrf=csrf, next_path=next_path))
    if strategy == "noauth":
        return session.finish(request, RedirectResponse(next_path, status_code=303))
    text = login.elsewhere(strategy) or "Logging in happens elsewhere."
    return _page(request, "Log in", layout.message("Log in", text))


async def login_submit(request: Request) -> Response:
    form = await _form(request)
    session.check_post(request, form)
    csrf, _ = session.csrf_token(request)
    next_path = login.safe_next((form.get("next") or [""])[0])
    user = (form.get("username") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    made = await login.create_session(request, user, password)
    if isinstance(made, str):
        body = login.form(csrf=csrf, next_path=next_path, error=made)
        return _page(request, "Log in", body, 401)
    secret, token_id, lives = made
    response = session.finish(request, RedirectResponse(next_path, status_code=303))
    session.set_cookie(request, response, session.TOKEN_COOKIE, secret, max_age=lives)
    session.set_cookie(request, response, session.TOKEN_ID_COOKIE, token_id, max_age=lives)
    return response


async def logout(request: Request) -> Response:
    form = await _form(request)
    session.check_post(request, form)
    token_id = request.cookies.get(session.TOKEN_ID_COOKIE)
    if token_id and session.context_of(request).authenticated:
        await login.end_session(request, token_id)
    response = session.finish(request, RedirectResponse("/dashboard/login", status_code=303))
    for name in (session.TOKEN_COOKIE, session.TOKEN_ID_COOKIE):
        response.delete_cookie(name, path=session.PREFIX)
    return response


async def _form(request: Request, *, limit: int = MAX_FORM) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body.

    Raises:
        InvalidInput: another kind of body, or one over :data:`MAX_FORM` bytes.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("The dashboard takes forms (application/x-www-form-urlencoded) only.")
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"The form is larger than {limit} bytes.")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000)


def _deps(request: Request) -> Deps:
    deps = request.app.state.deps
    assert isinstance(deps, Deps)
    return deps


ROUTES: list[BaseRoute] = [
    Route("/dashboard", nodes, methods=["GET"]),
    Route("/dashboard/login", login_page, methods=["GET"]),
    Route("/dashboard/login", login_submit, methods=["POST"]),
    Route("/dashboard/logout", logout, methods=["POST"]),
    Route("/dashboard/actions", bulk_action, methods=["POST"]),
    # the API's own node event stream, authenticated by the session cookie
    Route("/dashboard/events", node_events.get_events, methods=["GET"]),
    Route("/dashboard/nodes/table", nodes_table, methods=["GET"]),
    Route("/dashboard/nodes/{node}/row", node_row, methods=["GET"]),
    Route("/dashboard/nodes/{node}", node, methods=["GET"]),
    Route("/dashboard/nodes/{node}/panel", node_panel, methods=["GET"]),
    Route("/dashboard/nodes/{node}/deploy", node_deploy, methods=["POST"]),
    Route("/dashboard/nodes/{node}/console", console, methods=["GET"]),
    Route("/dashboard/nodes/{node}/console", console_switch, methods=["POST"]),
    Route("/dashboard/nodes/{node}/console/info", console_info, methods=["GET"]),
    Route("/dashboard/import", import_page, methods=["GET"]),
    Route("/dashboard/import", import_submit, methods=["POST"]),
    Route("/dashboard/conductors", conductors, methods=["GET"]),
    Mount("/dashboard/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
]
