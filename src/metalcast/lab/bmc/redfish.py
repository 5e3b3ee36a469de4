"""A virtual Redfish BMC: one HTTP service on a loopback port for any number of machines.

:func:`redfish_app` is a Starlette application serving the ServiceRoot, a
SessionService (sessions with ``X-Auth-Token``; HTTP basic auth works too), the
Systems collection, each machine as a ComputerSystem (power state, boot override,
``ComputerSystem.Reset``, an IndicatorLED a PATCH sets), its Bios with a
pending-settings resource and its hardware (processors, memory, storage, NICs:
:mod:`.redfish_inventory`), the Chassis collection: each machine in a chassis of its
own name (with an IndicatorLED too), whose Thermal and Power resources hold its
sensor readings, each system's VirtualMedia: a virtual CD that InsertMedia fills
from a URL (:mod:`.redfish_vmedia`), and an UpdateService whose SimpleUpdate fetches
a firmware image and updates the FirmwareInventory (:mod:`.redfish_update`).
:class:`RedfishBmc` runs it with uvicorn in a background thread, so a test or
the lab CLI can serve one machine, or a thousand behind one port.

Injected faults apply to requests for a machine's resources: ``hang`` never
answers (until the service stops), a dropped request gets 503 (what a loaded BMC
answers), ``refuse_login`` answers 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import secrets
import socket
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from metalcast.lab.bmc import redfish_inventory, redfish_update
from metalcast.lab.bmc import redfish_resources as rf
from metalcast.lab.bmc import redfish_vmedia as vmedia
from metalcast.lab.machine import Machine, MachineError

Handler = Callable[[Request], Awaitable[Response]]


class _Service:
    """The state behind one Redfish endpoint: machines, credentials, sessions."""

    def __init__(
        self, machines: Sequence[Machine], username: str, password: str, media_dir: Path
    ) -> None:
        self.machines = {m.name: m for m in machines}
        #: where InsertMedia downloads images to (``<machine>.iso``)
        self.media_dir = media_dir
        self.username = username
        self.password = password
        self.sessions: dict[str, tuple[str, str]] = {}  # token -> (id, user)
        self.uuid = str(uuidlib.uuid4())
        self.stopped = False
        self.firmware = redfish_update.Firmware(list(self.machines))
        #: IndicatorLED of each (machine, "system" or "chassis"); "Off" until set
        self.leds: dict[tuple[str, str], str] = {}

    def led(self, machine: Machine, component: str) -> str:
        return self.leds.get((machine.name, component), "Off")

    def set_led(self, machine: Machine, component: str, body: Mapping[str, Any]) -> bool:
        """Apply a PATCH body's IndicatorLED, if it has one.  Raises BadRequest."""
        if "IndicatorLED" not in body:
            return False
        value = body["IndicatorLED"]
        if value not in rf.INDICATOR_LEDS:
            raise rf.BadRequest(
                f"IndicatorLED must be one of {', '.join(rf.INDICATOR_LEDS)}, not {value!r}"
            )
        self.leds[(machine.name, component)] = value
        return True

    def authorized(self, request: Request) -> bool:
        token = request.headers.get("x-auth-token")
        if token is not None:
            return token in self.sessions
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return self.check(user, password)

    def check(self, user: str, password: str) -> bool:
        return hmac.compare_digest(user, self.username) and hmac.compare_digest(
            password, self.password
        )


def _json(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def _fail(status: int, message: str) -> JSONResponse:
    return _json(rf.error(message), status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise rf.BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise rf.BadRequest("the body must be a JSON object")
    return body


def _authed(svc: _Service, handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        if not svc.authorized(request):
            return _fail(401, "authentication required")
        return await handler(request)

    return guarded


def _system_route(
    svc: _Service, handler: Callable[[Request, Machine], Awaitable[Response]]
) -> Handler:
    async def with_machine(request: Request) -> Response:
        machine = svc.machines.get(request.path_params["system"])
        if machine is None:
            return _fail(404, f"no system {request.path_params['system']!r}")
        refusal = await _faults(svc, machine)
        if refusal is not None:
            return refusal
        try:
            return await handler(request, machine)
        except rf.BadRequest as exc:
            return _fail(400, str(exc))
        except vmedia.Conflict as exc:
            return _fail(409, str(exc))
        except MachineError as exc:
            return _fail(500, f"the machine could not do it: {exc}")

    return _authed(svc, with_machine)


def _routes(svc: _Service) -> list[Route]:
    def authed(handler: Handler) -> Handler:
        return _authed(svc, handler)

    def system(handler: Callable[[Request, Machine], Awaitable[Response]]) -> Handler:
        return _system_route(svc, handler)

    def document(render: Callable[[Machine], dict[str, Any]]) -> Handler:
        async def show(request: Request, machine: Machine) -> Response:
            return _json(render(machine))

        return _system_route(svc, show)

    async def chassis_collection(request: Request) -> Response:
        members = [f"{rf.CHASSIS}/{name}" for name in svc.machines]
        return _json(rf.collection(rf.CHASSIS, "Chassis", members))

    async def root(request: Request) -> Response:
        return _json(rf.service_root(svc.uuid))

    return [
        Route("/redfish", _versions),
        Route("/redfish/v1", root),
        Route("/redfish/v1/", root),
        Route("/redfish/v1/SessionService", authed(_session_service)),
        Route(rf.SESSIONS, _sessions_handler(svc), methods=["GET", "POST"]),
        Route(rf.SESSIONS + "/{sid}", _session_handler(svc), methods=["GET", "DELETE"]),
        Route(rf.SYSTEMS, authed(_systems_handler(svc))),
        Route(rf.SYSTEMS + "/{system}", system(_system_handler(svc)), methods=["GET", "PATCH"]),
        Route(
            rf.SYSTEMS + "/{system}/Actions/ComputerSystem.Reset",
            system(_reset),
            methods=["POST"],
        ),
        Route(rf.SYSTEMS + "/{system}/Bios", system(_bios)),
        Route(rf.SYSTEMS + "/{system}/VirtualMedia", system(_media_collection)),
        Route(rf.SYSTEMS + "/{system}/VirtualMedia/Cd", system(_cd)),
        Route(
            rf.SYSTEMS + "/{system}/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia",
            system(_insert_handler(svc)),
            methods=["POST"],
        ),
        Route(
            rf.SYSTEMS + "/{system}/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia",
            system(_eject),
            methods=["POST"],
        ),
        *[
            Route(path, authed(handler), methods=methods)
            for path, (handler, methods) in redfish_update.routes_of(svc.firmware).items()
        ],
        Route(rf.CHASSIS, authed(chassis_collection)),
        Route(rf.CHASSIS + "/{system}", system(_chassis_handler(svc)), methods=["GET", "PATCH"]),
        Route(rf.CHASSIS + "/{system}/Thermal", document(rf.thermal)),
        Route(rf.CHASSIS + "/{system}/Power", document(rf.power)),
        Route(
            rf.SYSTEMS + "/{system}/Bios/Settings", system(_bios_settings), methods=["GET", "PATCH"]
        ),
        # last: processors, memory, storage, NICs (read only)
        Route(rf.SYSTEMS + "/{system}/{rest:path}", system(_hardware)),
    ]


async def _faults(svc: _Service, machine: Machine) -> Response | None:
    faults = machine.faults
    while faults.hang and not svc.stopped:
        await asyncio.sleep(0.05)  # a hung BMC: no answer until the fault clears
    if svc.stopped:
        return _fail(503, "the service is stopping")
    if faults.swallow():
        return _fail(503, "the BMC is busy; try again")
    if faults.refuse_login:
        return _fail(401, "authentication refused")
    return None


async def _versions(request: Request) -> Response:
    return _json({"v1": "/redfish/v1/"})


async def _session_service(request: Request) -> Response:
    return _json(rf.session_service())


def _sessions_handler(svc: _Service) -> Handler:
    async def sessions(request: Request) -> Response:
        if request.method == "GET":
            if not svc.authorized(request):
                return _fail(401, "authentication required")
            members = [f"{rf.SESSIONS}/{sid}" for sid, _ in svc.sessions.values()]
            return _json(rf.collection(rf.SESSIONS, "Session", members))
        try:
            body = await _body(request)
        except rf.BadRequest as exc:
            return _fail(400, str(exc))
        user, password = str(body.get("UserName", "")), str(body.get("Password", ""))
        if not svc.check(user, password):
            return _fail(401, "invalid credentials")
        token, sid = secrets.token_hex(16), secrets.token_hex(4)
        svc.sessions[token] = (sid, user)
        location = f"{rf.SESSIONS}/{sid}"
        return _json(rf.session(sid, user), 201, **{"X-Auth-Token": token, "Location": location})

    return sessions


def _session_handler(svc: _Service) -> Handler:
    async def one_session(request: Request) -> Response:
        if not svc.authorized(request):
            return _fail(401, "authentication required")
        sid = request.path_params["sid"]
        found = [(t, user) for t, (s, user) in svc.sessions.items() if s == sid]
        if not found:
            return _fail(404, f"no session {sid!r}")
        token, user = found[0]
        if request.method == "DELETE":
            del svc.sessions[token]
            return Response(status_code=204)
        return _json(rf.session(sid, user))

    return one_session


def _systems_handler(svc: _Service) -> Handler:
    async def systems(request: Request) -> Response:
        members = [f"{rf.SYSTEMS}/{name}" for name in svc.machines]
        return _json(rf.collection(rf.SYSTEMS, "ComputerSystem", members))

    return systems


def _system_handler(svc: _Service) -> Callable[[Request, Machine], Awaitable[Response]]:
    async def system(request: Request, machine: Machine) -> Response:
        if request.method == "PATCH":
            body = await _body(request)
            boot = body.get("Boot")
            if boot is not None and not isinstance(boot, dict):
                raise rf.BadRequest("Boot must be an object")
            if boot is None and "IndicatorLED" not in body:
                raise rf.BadRequest("only Boot and IndicatorLED can be changed")
            svc.set_led(machine, "system", body)
            if boot is not None:
                machine.set_boot_override(rf.patched_boot(machine.boot_override(), boot))
            return Response(status_code=204)
        return _json(rf.computer_system(machine, led=svc.led(machine, "system")))

    return system


def _chassis_handler(svc: _Service) -> Callable[[Request, Machine], Awaitable[Response]]:
    async def chassis(request: Request, machine: Machine) -> Response:
        if request.method == "PATCH":
            if not svc.set_led(machine, "chassis", await _body(request)):
                raise rf.BadRequest("only IndicatorLED can be changed")
            return Response(status_code=204)
        return _json(rf.chassis(machine, led=svc.led(machine, "chassis")))

    return chassis


async def _reset(request: Request, machine: Machine) -> Response:
    body = await _body(request)
    machine.act(rf.power_action(body.get("ResetType"), machine.power()))
    return Response(status_code=204)


async def _hardware(request: Request, machine: Machine) -> Response:
    path = f"{rf.SYSTEMS}/{machine.name}"
    found = redfish_inventory.document(path, machine.hardware, request.path_params["rest"])
    if found is None:
        return _fail(404, f"no resource {request.url.path!r}")
    return _json(found)


async def _media_collection(request: Request, machine: Machine) -> Response:
    return _json(vmedia.collection(f"{rf.SYSTEMS}/{machine.name}"))


async def _cd(request: Request, machine: Machine) -> Response:
    return _json(vmedia.cd(f"{rf.SYSTEMS}/{machine.name}", machine))


def _insert_handler(svc: _Service) -> Callable[[Request, Machine], Awaitable[Response]]:
    async def insert(request: Request, machine: Machine) -> Response:
        await vmedia.insert(machine, await _body(request), media_dir=svc.media_dir)
        return Response(status_code=204)

    return insert


async def _eject(request: Request, machine: Machine) -> Response:
    await request.body()  # an empty body, {} or none: all mean eject
    vmedia.eject(machine)
    return Response(status_code=204)


async def _bios(request: Request, machine: Machine) -> Response:
    return _json(rf.bios(machine))


async def _bios_settings(request: Request, machine: Machine) -> Response:
    if request.method == "PATCH":
        attributes = (await _body(request)).get("Attributes")
        if not isinstance(attributes, dict):
            raise rf.BadRequest("Attributes must be an object")
        machine.stage_bios_settings({str(k): str(v) for k, v in attributes.items()})
        return Response(status_code=204)
    return _json(rf.bios_settings(machine, machine.staged_bios_settings()))


def redfish_app(
    machines: Sequence[Machine], *, username: str, password: str, media_dir: Path
) -> Starlette:
    """The Redfish service of ``machines`` (each a ComputerSystem named by its name),
    downloading virtual media into ``media_dir``."""
    service = _Service(machines, username, password, media_dir)
    app = Starlette(routes=_routes(service))
    app.state.service = service
    return app


class RedfishBmc:
    """A Redfish service for ``machines`` on ``address``:``port`` (0: any free port)."""

    def __init__(
        self,
        machines: Sequence[Machine],
        *,
        username: str,
        password: str,
        port: int = 0,
        address: str = "127.0.0.1",
        media_dir: Path | None = None,
    ) -> None:
        self.machines = list(machines)
        #: without a ``media_dir``, a temporary one removed by :meth:`stop`
        self._scratch = None if media_dir else tempfile.TemporaryDirectory(prefix="redfish-media-")
        self.media_dir = media_dir or Path(self._scratch.name if self._scratch else ".")
        self.app = redfish_app(
            self.machines, username=username, password=password, media_dir=self.media_dir
        )
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((address, port))
        self.address, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def firmware(self) -> redfish_update.Firmware:
        """The firmware of this BMC and its machines (its UpdateService's state)."""
        service: _Service = self.app.state.service
        return service.firmware

    def system_path(self, machine: Machine) -> str:
        """The ComputerSystem path of ``machine`` (``redfish_system_id``)."""
        return f"{rf.SYSTEMS}/{machine.name}"

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; return once the port accepts requests.

        Raises:
            RuntimeError: the server did not start within ``timeout``.
        """
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"redfish-bmc-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"Redfish BMC on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving (hanging requests are let go) and release the port."""
        self.app.state.service.stopped = True
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        if self._scratch is not None:
            self._scratch.cleanup()
