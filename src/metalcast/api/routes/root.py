"""Version discovery: ``/`` lists the API versions, ``/v1`` the v1 resources."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import LINKS, Named, Operation, array, obj, since, string
from metalcast.api.versions import MAX_VERSION, MIN_VERSION, allows

_DESCRIPTION = (
    "metalcast provisions bare-metal machines through an OpenStack Ironic compatible API."
)
#: resource -> the feature that introduced it (None: from the first version)
_RESOURCES: dict[str, str | None] = {
    "nodes": None,
    "ports": None,
    "portgroups": "portgroups",
    "chassis": None,
    "drivers": None,
    "volume": "volume",
    "conductors": "conductors",
    "lookup": "ramdisk_endpoints",
    "heartbeat": "ramdisk_endpoints",
}


VERSION = Named(
    "Version",
    obj(
        {
            "id": string(),
            "links": LINKS,
            "status": string(),
            "min_version": string(),
            "version": string(),
        },
        required=("id", "links", "status", "min_version", "version"),
    ),
)
ROOT = Named(
    "Versions",
    obj(
        {
            "name": string(),
            "description": string(),
            "versions": array(VERSION),
            "default_version": VERSION,
        },
        required=("name", "description", "versions", "default_version"),
    ),
)
V1 = Named(
    "V1",
    obj(
        {
            "id": string(),
            "links": LINKS,
            "media_types": array(obj({"base": string(), "type": string()})),
            "version": VERSION,
            **{
                name: LINKS if feature is None else since(LINKS, feature)
                for name, feature in _RESOURCES.items()
            },
        },
        required=("id", "links", "media_types", "version"),
    ),
)


def version_document(call: Call) -> dict[str, Any]:
    """The description of v1: its links and the served microversion range."""
    return {
        "id": "v1",
        "links": [{"href": call.url("v1", ""), "rel": "self"}],
        "status": "CURRENT",
        "min_version": str(MIN_VERSION),
        "version": str(MAX_VERSION),
    }


@endpoint("api:discovery", doc=Operation("The API versions", answers={200: ROOT}))
def get_root(call: Call) -> object:
    v1 = version_document(call)
    return {
        "name": "OpenStack Ironic API",
        "description": _DESCRIPTION,
        "versions": [v1],
        "default_version": v1,
    }


@endpoint("api:discovery", doc=Operation("The v1 resources", answers={200: V1}))
def get_v1(call: Call) -> object:
    doc: dict[str, Any] = {
        "id": "v1",
        "links": [
            {"href": call.url("v1", ""), "rel": "self"},
            {
                "href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html",
                "rel": "describedby",
                "type": "text/html",
            },
        ],
        "media_types": [
            {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}
        ],
        "version": version_document(call),
    }
    for name, feature in _RESOURCES.items():
        if feature is not None and not allows(feature, call.version):
            continue
        doc[name] = [
            {"href": call.url("v1", name, ""), "rel": "self"},
            {"href": call.url(name, ""), "rel": "bookmark"},
        ]
    return doc


ROUTES = [
    Route("/", get_root, methods=["GET"]),
    Route("/v1", get_v1, methods=["GET"]),
]
