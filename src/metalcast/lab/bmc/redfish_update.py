"""The virtual Redfish BMC's firmware: an UpdateService with SimpleUpdate, a
FirmwareInventory and the tasks an update runs as.

The inventory holds the BMC's own firmware (``BMC``, related to the manager) and,
per machine, its BIOS (``BIOS-<machine>``) and NIC firmware (``NIC-<machine>``),
related to the machine's ComputerSystem.  ``SimpleUpdate`` takes an ``ImageURI``
(http or https) and ``Targets``: inventory items, or a ComputerSystem (its BIOS).
It answers 202 with a task monitor at once; the update then runs as a BMC's does:
the BMC fetches the image itself (never the caller), refuses an empty one or one
without a version mark (``METALCAST_FIRMWARE_VERSION=<version>`` anywhere in the
file), "flashes" it in a few steps that the task's ``PercentComplete`` shows, and
sets the targets' version to the one the image names.  The task monitor answers
202 with the task while it runs and 200 once it is over (Completed or Exception).

Nothing the image URL holds (credentials) is ever put in a task message.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from metalcast.lab.bmc import redfish_resources as rf

UPDATE_SERVICE = f"{rf.ROOT}/UpdateService"
FIRMWARE_INVENTORY = f"{UPDATE_SERVICE}/FirmwareInventory"
SIMPLE_UPDATE = f"{UPDATE_SERVICE}/Actions/UpdateService.SimpleUpdate"
TASKS = f"{rf.ROOT}/TaskService/Tasks"
MANAGER = f"{rf.ROOT}/Managers/BMC"

#: the mark an image must hold: the version it installs
VERSION_MARK = re.compile(rb"METALCAST_FIRMWARE_VERSION=([A-Za-z0-9][A-Za-z0-9._+-]{0,63})")
#: the largest image the lab BMC takes (a real BMC has a staging area of fixed size)
MAX_IMAGE_BYTES = 64 * 1024**2
#: versions a new lab BMC starts with
INITIAL_VERSIONS = {"BMC": "1.00.0", "BIOS": "1.0.0", "NIC": "14.2.1"}


class _Refused(Exception):
    """An update the BMC refuses; the message is the task's."""


@dataclass(slots=True)
class FirmwareItem:
    """One SoftwareInventory member."""

    id: str
    name: str
    version: str
    related: tuple[str, ...]

    def document(self) -> dict[str, Any]:
        return {
            "@odata.id": f"{FIRMWARE_INVENTORY}/{self.id}",
            "@odata.type": "#SoftwareInventory.v1_3_0.SoftwareInventory",
            "Id": self.id,
            "Name": self.name,
            "Version": self.version,
            "Manufacturer": "metalcast lab",
            "Updateable": True,
            "Status": {"State": "Enabled", "Health": "OK"},
            "RelatedItem": [{"@odata.id": path} for path in self.related],
        }


@dataclass(slots=True)
class UpdateTask:
    """One SimpleUpdate, as a Task resource."""

    id: str
    targets: tuple[str, ...]
    state: str = "New"
    percent: int = 0
    health: str = "OK"
    messages: list[str] = field(default_factory=list)
    start: str = field(default_factory=lambda: _now())
    end: str | None = None

    @property
    def running(self) -> bool:
        return self.state not in ("Completed", "Exception")

    def document(self) -> dict[str, Any]:
        path = f"{TASKS}/{self.id}"
        doc: dict[str, Any] = {
            "@odata.id": path,
            "@odata.type": "#Task.v1_4_3.Task",
            "Id": self.id,
            "Name": "Firmware update",
            "TaskState": self.state,
            "TaskStatus": self.health,
            "PercentComplete": self.percent,
            "StartTime": self.start,
            "TaskMonitor": f"{path}/Monitor",
            "Messages": [
                {"MessageId": "Update.1.0.UpdateInProgress", "Message": m} for m in self.messages
            ],
        }
        if self.end is not None:
            doc["EndTime"] = self.end
        return doc


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Firmware:
    """The firmware of one virtual BMC and its machines, and its update tasks."""

    def __init__(self, machine_names: Sequence[str], *, flash_seconds: float = 0.5) -> None:
        self.items: dict[str, FirmwareItem] = {
            "BMC": FirmwareItem("BMC", "BMC firmware", INITIAL_VERSIONS["BMC"], (MANAGER,))
        }
        for name in machine_names:
            system = f"{rf.SYSTEMS}/{name}"
            self.items[f"BIOS-{name}"] = FirmwareItem(
                f"BIOS-{name}", "BIOS", INITIAL_VERSIONS["BIOS"], (system,)
            )
            self.items[f"NIC-{name}"] = FirmwareItem(
                f"NIC-{name}",
                "NIC firmware",
                INITIAL_VERSIONS["NIC"],
                (f"{system}/EthernetInterfaces",),
            )
        #: how long "flashing" takes, spread over the task's progress steps
        self.flash_seconds = flash_seconds
        self.tasks: dict[str, UpdateTask] = {}
        #: the image URLs this BMC fetched, in order (credentials and all: tests
        #: check the BMC, not the conductor, fetched them)
        self.fetched: list[str] = []
        self._ids = itertools.count(1)
        self._running: set[asyncio.Task[None]] = set()

    def item_paths(self) -> list[str]:
        return [f"{FIRMWARE_INVENTORY}/{item_id}" for item_id in self.items]

    def resolve_targets(self, targets: object) -> tuple[str, ...]:
        """The inventory items ``Targets`` names.  Raises rf.BadRequest."""
        if not isinstance(targets, list) or not targets:
            raise rf.BadRequest("Targets must be a non-empty list of resource URIs")
        found: list[str] = []
        for target in targets:
            path = str(target).rstrip("/")
            item_id = path.removeprefix(f"{FIRMWARE_INVENTORY}/")
            if path.startswith(f"{FIRMWARE_INVENTORY}/") and item_id in self.items:
                found.append(item_id)
            elif path.startswith(f"{rf.SYSTEMS}/") and f"BIOS-{path.rsplit('/', 1)[1]}" in (
                self.items
            ):
                found.append(f"BIOS-{path.rsplit('/', 1)[1]}")
            else:
                raise rf.BadRequest(f"no such update target {path!r}")
        return tuple(dict.fromkeys(found))

    def start(self, image_uri: object, targets: object) -> UpdateTask:
        """Start an update of ``targets`` from ``image_uri``.  Raises rf.BadRequest."""
        if not isinstance(image_uri, str) or urlsplit(image_uri).scheme not in ("http", "https"):
            raise rf.BadRequest("ImageURI must be an http or https URL")
        items = self.resolve_targets(targets)
        task = UpdateTask(str(next(self._ids)), items)
        self.tasks[task.id] = task
        running = asyncio.get_running_loop().create_task(self._run(task, image_uri))
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        return task

    async def _run(self, task: UpdateTask, url: str) -> None:
        task.state = "Running"
        try:
            image = await self._fetch(task, url)
            version = _version_in(image)
            for step in range(6, 11):
                await asyncio.sleep(self.flash_seconds / 5)
                task.percent = step * 10
            for item_id in task.targets:
                self.items[item_id].version = version
            task.messages.append(f"{', '.join(task.targets)} updated to version {version}")
            task.state = "Completed"
        except _Refused as exc:
            task.messages.append(str(exc))
            task.state, task.health = "Exception", "Critical"
        except Exception as exc:  # the task's boundary: a BMC's task never hangs on a bug
            task.messages.append(f"the BMC failed: {type(exc).__name__}")
            task.state, task.health = "Exception", "Critical"
        finally:
            task.end = _now()

    async def _fetch(self, task: UpdateTask, url: str) -> bytes:
        """The image, read by the BMC (task progress 0 to 50 %).  Raises _Refused."""
        self.fetched.append(url)
        parts = urlsplit(url)
        # credentials in the URL are the BMC's to use, as a real one does
        auth = (parts.username or "", parts.password or "") if parts.username else None
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port is not None else ""
        bare = parts._replace(netloc=host + port).geturl()
        data = bytearray()
        try:
            async with (
                httpx.AsyncClient(timeout=30, auth=auth, verify=False) as client,
                client.stream("GET", bare) as answer,
            ):
                if answer.status_code != 200:
                    raise _Refused(f"the image server answered HTTP {answer.status_code}")
                total = int(answer.headers.get("content-length") or 0)
                async for chunk in answer.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise _Refused(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
                    if total:
                        task.percent = min(50, 50 * len(data) // total)
        except httpx.HTTPError as exc:
            raise _Refused(f"the image could not be fetched: {type(exc).__name__}") from exc
        if not data:
            raise _Refused("the image is empty")
        task.percent = 50
        return bytes(data)


def _version_in(image: bytes) -> str:
    found = VERSION_MARK.search(image)
    if found is None:
        raise _Refused("the image holds no METALCAST_FIRMWARE_VERSION=<version> mark")
    return found.group(1).decode()


def update_service() -> dict[str, Any]:
    return {
        "@odata.id": UPDATE_SERVICE,
        "@odata.type": "#UpdateService.v1_8_0.UpdateService",
        "Id": "UpdateService",
        "Name": "Update Service",
        "ServiceEnabled": True,
        "Status": {"State": "Enabled", "Health": "OK"},
        "FirmwareInventory": {"@odata.id": FIRMWARE_INVENTORY},
        "Actions": {
            "#UpdateService.SimpleUpdate": {
                "target": SIMPLE_UPDATE,
                "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
            }
        },
    }


async def show_update_service(request: Request) -> Response:
    return JSONResponse(update_service())


class _Handlers:
    """The request handlers of one BMC's firmware (the caller adds authentication)."""

    def __init__(self, firmware: Firmware) -> None:
        self.firmware = firmware

    async def inventory(self, request: Request) -> Response:
        paths = self.firmware.item_paths()
        return JSONResponse(rf.collection(FIRMWARE_INVENTORY, "SoftwareInventory", paths))

    async def item(self, request: Request) -> Response:
        found = self.firmware.items.get(request.path_params["item"])
        if found is None:
            return JSONResponse(rf.error("no such firmware item"), status_code=404)
        return JSONResponse(found.document())

    async def simple_update(self, request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise rf.BadRequest("the body must be a JSON object")
            protocol = body.get("TransferProtocol", "HTTP")
            if protocol not in ("HTTP", "HTTPS"):
                raise rf.BadRequest(f"TransferProtocol {protocol!r} is not offered")
            task = self.firmware.start(body.get("ImageURI"), body.get("Targets"))
        except (rf.BadRequest, ValueError) as exc:
            return JSONResponse(rf.error(str(exc)), status_code=400)
        return Response(status_code=202, headers={"Location": f"{TASKS}/{task.id}/Monitor"})

    async def task(self, request: Request) -> Response:
        found = self.firmware.tasks.get(request.path_params["task"])
        if found is None:
            return JSONResponse(rf.error("no such task"), status_code=404)
        return JSONResponse(found.document())

    async def monitor(self, request: Request) -> Response:
        found = self.firmware.tasks.get(request.path_params["task"])
        if found is None:
            return JSONResponse(rf.error("no such task"), status_code=404)
        status = 202 if found.running else 200
        return JSONResponse(found.document(), status_code=status, headers={"Retry-After": "1"})


def routes_of(firmware: Firmware) -> dict[str, Any]:
    """``{path: (handler, methods)}`` (the caller wraps them in authentication)."""
    h = _Handlers(firmware)
    return {
        UPDATE_SERVICE: (show_update_service, ["GET"]),
        FIRMWARE_INVENTORY: (h.inventory, ["GET"]),
        FIRMWARE_INVENTORY + "/{item}": (h.item, ["GET"]),
        SIMPLE_UPDATE: (h.simple_update, ["POST"]),
        TASKS + "/{task}": (h.task, ["GET"]),
        TASKS + "/{task}/Monitor": (h.monitor, ["GET"]),
    }
