"""The OpenAPI 3.1 description of the whole API, served at ``GET /v1/openapi.json``.

It is generated, once per application, from what the code declares: the Starlette
routes, each endpoint's policy rule (:mod:`metalcast.api.policy.rules`: its name,
default and description, and every rule the table says guards the operation) and
:class:`~metalcast.api.operations.Operation` (bodies, answers, query parameters,
microversion), the microversion headers (:mod:`metalcast.api.versions`), the
credentials the authentication strategies accept and the paths that need none
(:mod:`metalcast.api.auth`), and Ironic's error body (:mod:`metalcast.api.errors`).
A route whose endpoint has no description makes :func:`describe` fail, so a new
route cannot be served undescribed (the unit tests build the document).

Version-gated fields, parameters and endpoints are described as the newest version
has them; each says from which microversion it exists (its description and
``x-metalcast-min-version``).

Errors: :class:`Undescribed` for a route without a description.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

from metalcast.api.auth import PUBLIC_PATHS
from metalcast.api.endpoint import Call, Declaration, declaration, endpoint
from metalcast.api.operations import (
    ANY,
    UNTYPED,
    Named,
    Operation,
    Param,
    Schema,
    obj,
    string,
    version_note,
)
from metalcast.api.policy.rules import RULES
from metalcast.api.policy.rules.base import PUBLIC
from metalcast.api.versions import (
    FEATURES,
    HEADER,
    MAX_HEADER,
    MAX_VERSION,
    MIN_HEADER,
    MIN_VERSION,
)
from metalcast.errors import MetalcastError

PATH = "/v1/openapi.json"


class Undescribed(MetalcastError):
    """A route's endpoint declares no :class:`~metalcast.api.operations.Operation`."""


# ------------------------------------------------------------------ fixed pieces

#: the JSON document inside Ironic's error body
FAULT = obj(
    {
        "faultstring": string(description="What went wrong and what to fix."),
        "faultcode": string(enum=["Client", "Server"]),
        "debuginfo": {"type": "null"},
    },
    required=("faultstring", "faultcode", "debuginfo"),
)
ERROR = Named(
    "Error",
    obj(
        {
            "error_message": string(
                contentMediaType="application/json",
                contentSchema=FAULT,
                description="A JSON document in a string (Ironic's error body).",
            )
        },
        required=("error_message",),
    ),
)
_ERRORS: Mapping[int, str] = {
    400: "The request is wrong (body, parameter or version header); the message says what to fix.",
    401: "No valid credentials (WWW-Authenticate says which kind).",
    403: "The policy does not let the caller do this.",
    404: "No such resource, the caller may not see it, or the requested version does "
    "not have the endpoint.",
    406: "The requested microversion is not served, or is too old for what the request uses.",
    409: "The request conflicts with the resource's state: a taken name or address, a "
    "node locked by another task or in the wrong state.",
    405: "The requested version does not have this endpoint (writes; reads are 404).",
    413: "The request body is larger than api.max_request_bytes.",
    503: "No conductor worker is free, or the server is shutting down; retry later.",
}

_HEADERS: Mapping[str, Schema] = {
    MIN_HEADER: {"description": "The oldest microversion served.", "required": True},
    MAX_HEADER: {"description": "The newest microversion served.", "required": True},
    HEADER: {"description": "The microversion this response follows.", "required": False},
    "X-OpenStack-Request-Id": {
        "description": "This request's id (in the logs too).",
        "required": True,
    },
}

#: path parameter -> what it names
_PATH_PARAMS: Mapping[str, str] = {
    "node": "A node's UUID or name.",
    "port": "A port's UUID or name.",
    "portgroup": "A portgroup's UUID or name.",
    "chassis": "A chassis' UUID.",
    "ident": "The UUID of a volume connector or target.",
    "driver": "A hardware type's name.",
    "hostname": "A conductor's host name.",
    "trait": "A trait name.",
    "setting": "A BIOS setting's name.",
    "vif": "A VIF's id.",
    "event": "A history event's UUID.",
    "method": "A vendor passthru method's name.",
    "project": "A project's id or name.",
    "user": "A user's id or name.",
    "role": "A role name (reader, member, manager, admin, service).",
    "token": "An API token's id.",
    "allocation": "An allocation's UUID or name.",
    "deploy_template": "A deploy template's UUID or name.",
    "runbook": "A runbook's UUID or name.",
}


def _version_param() -> Schema:
    minors = "|".join(str(m) for m in range(MIN_VERSION.minor, MAX_VERSION.minor + 1))
    return {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": (
            f"The microversion to follow, {MIN_VERSION} to {MAX_VERSION} or 'latest' "
            f"(none: {MIN_VERSION}). 'OpenStack-API-Version: baremetal 1.Y' works too."
        ),
        "schema": string(pattern=f"^(latest|{MIN_VERSION.major}\\.({minors}))$"),
    }


_SECURITY_SCHEMES: Mapping[str, Schema] = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "A metalcast user's name and password (api.auth_strategy builtin).",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A metalcast API token (builtin), as 'Authorization: Bearer <token>'.",
    },
    "token": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
        "description": "A metalcast API token (builtin) or a Keystone token (keystone).",
    },
}

_DESCRIPTION = (
    "metalcast's API: OpenStack Ironic's v1 (microversions "
    f"{MIN_VERSION} to {MAX_VERSION}) and metalcast's additions. Who may call what is the "
    "policy's (docs/policy.md): each operation names its rules (x-policy-rules). "
    "Credentials depend on api.auth_strategy: none under noauth (loopback only), HTTP "
    "Basic or an API token under builtin, a Keystone token under keystone, identity "
    "headers from a trusted proxy under header. Errors have Ironic's body "
    "(components/schemas/Error). Fields, parameters and endpoints newer than "
    "the oldest version say since which version they exist (x-metalcast-min-version); "
    "the description shows the newest version's shapes. Every path below /v1 is served "
    "without /v1 as well (/nodes/x is /v1/nodes/x), as the bookmark links are."
)


# -------------------------------------------------------------------- the document


def describe(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``.

    Raises:
        Undescribed: a route's endpoint has no description.
    """
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for path, method, found in _operations(routes):
        if found is None or found.operation is None:
            raise Undescribed(f"{method} {path} has no description: give its endpoint doc=...")
        operation = _operation(path, method, found, found.operation)
        paths.setdefault(path, {})[method.lower()] = components.resolve(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "metalcast", "version": str(MAX_VERSION), "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": dict(_SECURITY_SCHEMES),
            "headers": {name: {**h, "schema": string()} for name, h in _HEADERS.items()},
        },
        "security": [{name: []} for name in _SECURITY_SCHEMES],
    }


def undescribed(routes: Iterable[BaseRoute]) -> list[str]:
    """``METHOD path`` of every route whose endpoint has no description."""
    return [
        f"{method} {path}"
        for path, method, found in _operations(routes)
        if found is None or found.operation is None
    ]


def _operations(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str, Declaration | None]]:
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield route.path, method, declaration(route.endpoint)


def _operation(path: str, method: str, found: Declaration, op: Operation) -> dict[str, Any]:
    public = PUBLIC_PATHS.match(path) is not None
    doc: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "description": _operation_description(path, method, found, op),
        "tags": [_tag(path)],
        "parameters": _parameters(path, op.query),
        "responses": _responses(path, method, found, op, public=public),
        "x-policy-rule": found.rule.name,
        "x-policy-rules": _rules(path, method, found),
    }
    if op.feature is not None:
        doc["x-metalcast-min-version"] = str(FEATURES[op.feature])
    if found.body:
        content: dict[str, Any] = {"schema": op.body if op.body is not None else ANY}
        if op.examples:
            content["examples"] = {
                f"example{n}": {"value": value} for n, value in enumerate(op.examples, 1)
            }
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": content},
        }
    if public:
        doc["security"] = []
    return doc


def _operation_id(method: str, path: str) -> str:
    tail = path.removeprefix("/v1").strip("/") or ("v1" if path == "/v1" else "root")
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()} {tail}").strip("_")


def _tag(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[1] == "openapi.json":
        return "discovery"
    return parts[1]


def _rules(path: str, method: str, found: Declaration) -> list[str]:
    """Every rule the table says guards this operation, the endpoint's first."""
    named = [found.rule.name]
    for rule in RULES:
        guards = any(m in (method, "*") and p.split("?")[0] == path for m, p in rule.operations)
        if guards and rule.name not in named:
            named.append(rule.name)
    return named


def _operation_description(path: str, method: str, found: Declaration, op: Operation) -> str:
    rule = found.rule
    default = "public: no credentials needed" if rule.check == PUBLIC else f"`{rule.check}`"
    lines = [op.description] if op.description else []
    lines.append(f"Policy: `{rule.name}` ({rule.description}; default {default}).")
    if op.feature is not None:
        lines.append(version_note(op.feature))
    return "\n\n".join(lines)


def _parameters(path: str, query: Sequence[Param]) -> list[Schema]:
    params: list[Schema] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PATH_PARAMS.get(name, f"The {name}."),
            "schema": string(),
        }
        for name in re.findall(r"\{(\w+)\}", path)
    ]
    for param in query:
        described: Schema = {"name": param.name, "in": "query", "required": False}
        note = f" {version_note(param.feature)}" if param.feature else ""
        described["description"] = param.description + note
        described["schema"] = param.schema
        if param.feature is not None:
            described["x-metalcast-min-version"] = str(FEATURES[param.feature])
        params.append(described)
    if path != "/":  # the root ignores the version header
        params.append(_version_param())
    return params


def _responses(
    path: str, method: str, found: Declaration, op: Operation, *, public: bool
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in op.answers.items():
        headers = _headers()
        if status == 201 or op.location:
            headers["Location"] = {
                "description": "The URL of the resource created or acted on.",
                "required": status == 201 or status == 202,
                "schema": string(),
            }
        response: dict[str, Any] = {"description": _success(status), "headers": headers}
        if answer is not None:
            response["content"] = {"application/json": {"schema": answer}}
        responses[str(status)] = response
    for status in sorted(_errors(path, method, found, op, public=public)):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "headers": _headers(),
            "content": {"application/json": {"schema": ERROR}},
        }
    return responses


def _headers() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in _HEADERS}


def _success(status: int) -> str:
    return {200: "OK", 201: "Created", 202: "Accepted", 204: "Done; no content"}.get(
        status, "Success"
    )


def _errors(path: str, method: str, found: Declaration, op: Operation, *, public: bool) -> set[int]:
    """The error statuses of an operation: what any request may get (a bad version
    header), what its kind may get, and what it declares."""
    errors = set(op.errors)
    if path != "/":
        errors |= {400, 406}
    if not public:
        errors.add(401)
    if found.rule.check not in (PUBLIC, "@"):
        errors.add(403)
    if "{" in path or op.feature is not None:
        errors.add(404)
    if found.body:
        errors.add(413)
    if method != "GET":
        errors |= {409, 503}
    return errors


class _Components:
    """The named schemas met so far; a schema tree with references in their place."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._seen: dict[str, Schema] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping) and UNTYPED in value:
            raise Undescribed(
                f"the field {value[UNTYPED]} has no type: it is no column of the table its "
                "view renders; give resource(..., special=) its schema"
            )
        if isinstance(value, Named):
            self._register(value)
            return {"$ref": f"#/components/schemas/{value.name}"}
        if isinstance(value, Mapping):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(v) for v in value]
        return value

    def _register(self, named: Named) -> None:
        known = self._seen.get(named.name)
        if known is not None:
            if known is not named.schema and known != named.schema:
                raise ValueError(f"two different schemas are both named {named.name}")
            return
        self._seen[named.name] = named.schema
        self.schemas[named.name] = self.resolve(named.schema)


# ------------------------------------------------------------------------- serving


class DocumentCache:
    """The description of one application's routes, built on first use."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes
        self._document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def document(self) -> Mapping[str, Any]:
        """The document (built once).  Raises :class:`Undescribed`."""
        with self._lock:
            if self._document is None:
                self._document = describe(self._routes)
            return self._document


DOCUMENT = obj(
    {"openapi": string(), "info": obj(additional=True), "paths": obj(additional=True)},
    required=("openapi", "info", "paths"),
    additional=True,
    description="An OpenAPI 3.1 document.",
)


@endpoint(
    "api:discovery",
    doc=Operation("This description of the API (OpenAPI 3.1)", answers={200: DOCUMENT}),
)
def get_openapi(call: Call) -> object:
    describer: Callable[[], Mapping[str, Any]] | None = call.deps.openapi
    if describer is None:
        raise Undescribed("this application has no description")
    return describer()


ROUTES = [Route(PATH, get_openapi, methods=["GET"])]
