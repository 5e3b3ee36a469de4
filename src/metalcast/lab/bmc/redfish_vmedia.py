"""Redfish VirtualMedia of the virtual BMC: one virtual CD per ComputerSystem.

``Systems/<name>/VirtualMedia`` is a collection of one member, ``Cd``, with the
``#VirtualMedia.InsertMedia`` and ``#VirtualMedia.EjectMedia`` actions (what sushy's
``system.virtual_media`` and Ironic's ``redfish-virtual-media`` boot use).
InsertMedia takes an ``Image`` URL (http or https, without credentials in it),
downloads it as a BMC does, from inside the machine's network namespace
(:func:`metalcast.boot.netns.run_in_netns`: the network the machine's NICs are
on), into the BMC's media directory, and puts the copy in the machine's CD drive
(for a QEMU machine: QMP ``blockdev-change-medium``, or the drive it gets at its
next power on).  EjectMedia empties the drive and deletes the copy.  A boot
override to ``Cd`` then boots it.

Refusals, as a BMC answers them: 400 for a body without a usable ``Image`` or for an
image that cannot be downloaded (the message says why, never the URL's query), 409
for InsertMedia while media is in the drive.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from metalcast.boot.errors import NetnsError
from metalcast.boot.netns import run_in_netns
from metalcast.lab.bmc import redfish_resources as rf
from metalcast.lab.machine import Machine, Media

CD = "Cd"
#: seconds one image download may take
DOWNLOAD_TIMEOUT = 300.0
_CHUNK = 1 << 20


class Conflict(Exception):
    """The request conflicts with the drive's state (media is in it already)."""


def media_path(system_path: str) -> str:
    return f"{system_path}/VirtualMedia"


def collection(system_path: str) -> dict[str, Any]:
    """The VirtualMedia collection of a system: its one CD."""
    path = media_path(system_path)
    return rf.collection(path, "VirtualMedia", [f"{path}/{CD}"])


def cd(system_path: str, machine: Machine) -> dict[str, Any]:
    """The virtual CD of ``machine`` as a VirtualMedia resource."""
    path = f"{media_path(system_path)}/{CD}"
    media = machine.media()
    return {
        "@odata.id": path,
        "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia",
        "Id": CD,
        "Name": "Virtual CD",
        "MediaTypes": ["CD", "DVD"],
        "Image": media.image if media else None,
        "ImageName": _image_name(media.image) if media else None,
        "Inserted": media is not None,
        "WriteProtected": True,
        "ConnectedVia": "URI" if media else "NotConnected",
        "TransferProtocolType": urlsplit(media.image).scheme.upper() if media else None,
        "Actions": {
            "#VirtualMedia.InsertMedia": {"target": f"{path}/Actions/VirtualMedia.InsertMedia"},
            "#VirtualMedia.EjectMedia": {"target": f"{path}/Actions/VirtualMedia.EjectMedia"},
        },
    }


def _image_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def check_image(body: dict[str, Any]) -> str:
    """The ``Image`` URL of an InsertMedia body.  Raises rf.BadRequest."""
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise rf.BadRequest("InsertMedia needs Image: the URL of an ISO")
    parts = urlsplit(image)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise rf.BadRequest("Image must be an http or https URL")
    if parts.username or parts.password:
        raise rf.BadRequest(
            "Image must not hold credentials (UserName and Password are not supported)"
        )
    if body.get("Inserted") is False:
        raise rf.BadRequest("Inserted false is not supported: the media is inserted")
    if body.get("WriteProtected") is False:
        raise rf.BadRequest("the virtual CD is read-only: WriteProtected must be true")
    return image


def _download(url: str, target: Path) -> None:
    """Fetch ``url`` into ``target`` (replaced atomically).  Raises rf.BadRequest."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "metalcast-lab-bmc"})
        answer = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT)
        with answer, partial.open("wb") as out:
            shutil.copyfileobj(answer, out, _CHUNK)
        partial.replace(target)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise rf.BadRequest(f"cannot download the image: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise rf.BadRequest(f"cannot download the image: {exc}") from exc


async def insert(machine: Machine, body: dict[str, Any], *, media_dir: Path) -> None:
    """InsertMedia: download the image and put it in the drive.

    Raises:
        rf.BadRequest: no usable Image, or it cannot be downloaded.
        Conflict: media is in the drive already.
    """
    image = check_image(body)
    if machine.media() is not None:
        raise Conflict("media is inserted already: eject it first")
    media_dir.mkdir(parents=True, exist_ok=True)
    target = media_dir / f"{machine.name}.iso"
    namespace = machine.network_namespace

    def fetch() -> None:
        if namespace is None:
            _download(image, target)
            return
        try:
            run_in_netns(namespace, lambda: _download(image, target))
        except NetnsError as exc:
            raise rf.BadRequest(f"cannot reach the machine's network: {exc}") from exc

    await asyncio.to_thread(fetch)
    machine.insert_media(Media(image=image, path=target))


def eject(machine: Machine) -> None:
    """EjectMedia: empty the drive and delete the BMC's copy (empty: no error)."""
    media = machine.media()
    machine.eject_media()
    if media is not None:
        with contextlib.suppress(OSError):
            media.path.unlink(missing_ok=True)
