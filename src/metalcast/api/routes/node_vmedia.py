"""``/v1/nodes/{node}/vmedia``: a node's virtual media, as Ironic serves it.

``POST`` (1.89) inserts a generic ISO by URL into the BMC's virtual CD
(``{"device_type": "cdrom", "image_url": "https://…"}``), ``DELETE`` (1.89) ejects
it (``?device_types=cdrom``; none: every device), ``GET`` (1.93) lists the virtual
CDs and DVDs (``media_types``, ``inserted``, ``image``).  Before those versions the
path is unknown (404), as in Ironic.

The URL must be http or https (the BMC fetches it) and hold no credentials: a
password in a URL would be stored by the BMC and shown to every reader of this
endpoint, so it is refused (400) rather than passed on; any credentials a BMC shows
in an image URL are masked.  ``image_download_source`` ``http`` (the default here:
the BMC fetches the URL itself) and ``local`` are accepted; metalcast does not
re-serve generic images, so both mean the URL as given.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.routing import Route

from metalcast.api import lookup
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    Operation,
    Param,
    array,
    boolean,
    no_content,
    nullable,
    obj,
)
from metalcast.api.operations import string as text
from metalcast.api.schema import Field, validate_body
from metalcast.api.versions import allows
from metalcast.calls import AttachVirtualMedia, DetachVirtualMedia, GetVirtualMedia
from metalcast.db.models import Node
from metalcast.errors import InvalidInput, NotFound
from metalcast.secrecy import scrub_text

#: Ironic's VMEDIA_DEVICES; metalcast's BMCs have a virtual CD only
DEVICE_TYPES = ("cdrom", "disk", "floppy")
DOWNLOAD_SOURCES = ("http", "local", "swift")
_ATTACH = {
    "device_type": Field("string", nullable=False, max_length=16),
    "image_url": Field("string", nullable=False, max_length=2048),
    "image_download_source": Field("string", nullable=False, max_length=16),
}
_MEDIA = obj(
    {
        "media_types": array(text()),
        "inserted": nullable(boolean()),
        "image": nullable(text()),
    }
)


def _require(call: Call, feature: str) -> None:
    if not allows(feature, call.version):
        raise NotFound(f"The resource could not be found: {call.path}")


def _load(call: Call, action: str) -> Node:
    with call.deps.db.read() as conn:
        return lookup.node(conn, call, ident=call.args["node"], action=action)


def check_image_url(url: str) -> str:
    """``url`` if a BMC may be given it.  Raises InvalidInput saying what to fix."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"Unsupported or missing URL scheme: {parts.scheme or 'none'}; image_url must "
            "be an http or https URL the BMC can fetch"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "image_url must not hold credentials (user:password@): the BMC would keep "
            "and show them; serve the image where the BMC may fetch it without them"
        )
    return url


def _choice(value: object, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise InvalidInput(f"Invalid {name} {value!r}; valid are {', '.join(choices)}")
    return str(value)


@endpoint(
    "baremetal:node:vmedia:attach",
    body=True,
    doc=no_content(
        "Attach a virtual media image to a node",
        body=obj(
            {
                "device_type": text(enum=list(DEVICE_TYPES)),
                "image_url": text(),
                "image_download_source": text(enum=list(DOWNLOAD_SOURCES)),
            },
            required=("device_type", "image_url"),
        ),
        feature="vmedia",
    ),
)
def attach(call: Call) -> object:
    _require(call, "vmedia")
    body = validate_body(
        call.body,
        _ATTACH,
        what="virtual media",
        version=call.version,
        required=("device_type", "image_url"),
    )
    device_type = _choice(body["device_type"], DEVICE_TYPES, "device_type")
    _choice(body.get("image_download_source", "local"), DOWNLOAD_SOURCES, "image_download_source")
    url = check_image_url(str(body["image_url"]))
    node = _load(call, "baremetal:node:vmedia:attach")
    request = AttachVirtualMedia(node.id, device_type, url)
    call.deps.conductor.call(request, context=call.context)
    return Reply(204)


@endpoint(
    "baremetal:node:vmedia:detach",
    body=True,
    doc=no_content(
        "Detach virtual media from a node",
        body=obj({"device_types": text()}),
        body_required=False,
        query=(Param("device_types", text(), "device types to eject, comma separated"),),
        feature="vmedia",
    ),
)
def detach(call: Call) -> object:
    _require(call, "vmedia")
    types = tuple(_choice(t, DEVICE_TYPES, "device type") for t in _device_types(call))
    node = _load(call, "baremetal:node:vmedia:detach")
    call.deps.conductor.call(DetachVirtualMedia(node.id, types), context=call.context)
    return Reply(204)


def _device_types(call: Call) -> list[str]:
    """``device_types`` of a DELETE: in the query, or (openstacksdk) the JSON body,
    comma separated or a list."""
    values: list[object] = list(call.query.getlist("device_types"))
    if call.body is not None:
        if not isinstance(call.body, dict) or set(call.body) - {"device_types"}:
            raise InvalidInput("The body of a virtual media detach may only hold device_types")
        given = call.body.get("device_types")
        values += given if isinstance(given, list) else [given]
    names: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput("device_types must be a comma-separated string or a list")
        names += [name for name in value.split(",") if name]
    return names


@endpoint(
    "baremetal:node:vmedia:get",
    doc=Operation(
        "List a node's virtual media devices", answers={200: array(_MEDIA)}, feature="vmedia_get"
    ),
)
def get(call: Call) -> object:
    _require(call, "vmedia_get")
    node = _load(call, "baremetal:node:vmedia:get")
    devices = call.deps.conductor.call(GetVirtualMedia(node.id), context=call.context)
    return [_shown(device) for device in devices]


def _shown(device: dict[str, Any]) -> dict[str, Any]:
    image = device.get("image")
    return {**device, "image": scrub_text(image) if isinstance(image, str) else image}


ROUTES = [
    Route("/v1/nodes/{node}/vmedia", attach, methods=["POST"]),
    Route("/v1/nodes/{node}/vmedia", detach, methods=["DELETE"]),
    Route("/v1/nodes/{node}/vmedia", get, methods=["GET"]),
]
