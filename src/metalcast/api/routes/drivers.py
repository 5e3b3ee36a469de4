"""/v1/drivers: the hardware types the live conductors serve, their RAID logical disk
properties (1.12) and their own vendor passthru methods."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from metalcast.api import vendor
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    LINKS,
    Named,
    Operation,
    Param,
    array,
    nullable,
    obj,
    since,
    string,
)
from metalcast.api.params import flag, parse_bool
from metalcast.api.versions import Version, allows, shows
from metalcast.api.views.common import links
from metalcast.calls import (
    DriverProperties,
    DriverVendorMethods,
    DriverVendorPassthru,
    HardwareTypeInfo,
    ListHardwareTypes,
    RaidLogicalDiskProperties,
)
from metalcast.errors import InvalidInput, NotAcceptable, NotFound

#: interface -> the feature that added it to driver documents
INTERFACES: dict[str, str] = {
    **{
        name: "dynamic_drivers"
        for name in ("boot", "console", "deploy", "inspect", "management", "network", "power")
    },
    "raid": "dynamic_drivers",
    "vendor": "dynamic_drivers",
    "storage": "storage_interface",
    "rescue": "rescue",
    "bios": "bios_interface",
    "firmware": "firmware_interface",
}


def _interface_fields() -> dict[str, object]:
    fields: dict[str, object] = {}
    for name, feature in INTERFACES.items():
        fields[f"default_{name}_interface"] = since(nullable(string()), feature)
        fields[f"enabled_{name}_interfaces"] = since(array(string()), feature)
    return fields


#: a driver document; the interfaces only in details (a driver's own, ?detail=true)
DRIVER = Named(
    "Driver",
    obj(
        {
            "name": string(),
            "hosts": array(string(), description="The live conductors serving it."),
            "type": since(string(enum=["dynamic"]), "dynamic_drivers"),
            "links": LINKS,
            "properties": LINKS,
            **_interface_fields(),  # type: ignore[dict-item]
        },
        required=("name", "hosts", "links", "properties"),
    ),
)
_DESCRIBED = obj(additional=string(), description="Name -> what it means.")


def render_driver(
    driver: HardwareTypeInfo, *, base_url: str, version: Version, detail: bool
) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": driver.name, "hosts": list(driver.hosts)}
    if shows("dynamic_drivers", version):
        doc["type"] = "dynamic"
    doc["links"] = links(base_url, f"drivers/{driver.name}")
    doc["properties"] = links(base_url, f"drivers/{driver.name}/properties")
    if detail and shows("dynamic_drivers", version):
        for name, feature in INTERFACES.items():
            if not shows(feature, version):
                continue
            enabled = list(driver.interfaces.get(name, []))
            doc[f"default_{name}_interface"] = enabled[0] if enabled else None
            doc[f"enabled_{name}_interfaces"] = enabled
    return doc


def _fields(call: Call) -> tuple[str, ...] | None:
    """``?fields=`` of a driver or the list (Ironic 1.77; 406 before)."""
    value = call.query.get("fields")
    if value is None:
        return None
    if not allows("driver_fields", call.version):
        raise NotAcceptable("The fields parameter of drivers requires API version 1.77.")
    return tuple(f.strip() for f in value.split(",") if f.strip()) or None


def _select(doc: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """Only ``fields`` of a driver document, and its links.  Raises InvalidInput
    for a field the document does not have, as Ironic."""
    if fields is None:
        return doc
    unknown = [f for f in fields if f not in doc]
    if unknown:
        raise InvalidInput(f'Field(s) "{", ".join(unknown)}" are not valid')
    return {k: v for k, v in doc.items() if k in fields or k == "links"}


_FIELDS_PARAM = Param(
    "fields", string(), "Comma-separated fields to show (links always).", "driver_fields"
)


def _served(call: Call) -> list[HardwareTypeInfo]:
    return [
        d for d in call.deps.conductor.call(ListHardwareTypes(), context=call.context) if d.hosts
    ]


@endpoint(
    "baremetal:driver:get",
    doc=Operation(
        "List the hardware types live conductors serve",
        answers={200: obj({"drivers": array(DRIVER)}, required=("drivers",))},
        query=(
            Param(
                "type",
                string(enum=["classic", "dynamic"]),
                "Only this type (classic: none).",
                "dynamic_drivers",
            ),
            flag("detail", "Show each one's interfaces.", feature="dynamic_drivers"),
            _FIELDS_PARAM,
        ),
    ),
)
def get_drivers(call: Call) -> object:
    kind = call.query.get("type")
    if kind is not None and kind not in ("classic", "dynamic"):
        raise InvalidInput(f"Invalid driver type '{kind}': use 'classic' or 'dynamic'.")
    detail = bool(parse_bool("detail", call.query.get("detail")))
    if (kind or detail) and not allows("dynamic_drivers", call.version):
        raise InvalidInput("The type and detail parameters require API version 1.30.")
    fields = _fields(call)
    if fields and detail:
        raise InvalidInput("Can not specify ?detail=True and fields in the same request.")
    drivers = [] if kind == "classic" else _served(call)
    return {
        "drivers": [
            _select(
                render_driver(
                    d, base_url=call.base_url, version=call.version, detail=detail or bool(fields)
                ),
                fields,
            )
            for d in drivers
        ]
    }


def _find(call: Call) -> HardwareTypeInfo:
    name = call.args["driver"]
    for driver in _served(call):
        if driver.name == name:
            return driver
    raise NotFound(f"Could not find the following driver(s) or hardware type(s): {name}.")


@endpoint(
    "baremetal:driver:get",
    doc=Operation("Show a hardware type", answers={200: DRIVER}, query=(_FIELDS_PARAM,)),
)
def get_driver(call: Call) -> object:
    fields = _fields(call)
    doc = render_driver(_find(call), base_url=call.base_url, version=call.version, detail=True)
    return _select(doc, fields)


@endpoint(
    "baremetal:driver:get_properties",
    doc=Operation("Describe the driver_info a hardware type takes", answers={200: _DESCRIBED}),
)
def get_driver_properties(call: Call) -> object:
    return call.deps.conductor.call(DriverProperties(_find(call).name), context=call.context)


@endpoint(
    "baremetal:driver:get_raid_logical_disk_properties",
    doc=Operation(
        "Describe what a logical disk of a target RAID configuration may say",
        answers={200: _DESCRIBED},
        errors=frozenset({406}),
        description="Needs 1.12 (406 before).",
    ),
)
def get_raid_logical_disk_properties(call: Call) -> object:
    if not allows("raid", call.version):
        raise NotAcceptable("RAID logical disk properties require API version 1.12 or later.")
    return call.deps.conductor.call(
        RaidLogicalDiskProperties(_find(call).name), context=call.context
    )


# -------------------------------------------------------------------- vendor passthru


@endpoint(
    "baremetal:driver:vendor_passthru",
    doc=Operation("List a hardware type's vendor passthru methods", answers={200: vendor.METHODS}),
)
def get_vendor_methods(call: Call) -> object:
    return call.deps.conductor.call(DriverVendorMethods(_find(call).name), context=call.context)


@endpoint("baremetal:driver:vendor_passthru", body=True, doc=vendor.PASSTHRU)
def vendor_passthru(call: Call) -> object:
    method, args = vendor.passthru_request(call)
    name = _find(call).name
    result = call.deps.conductor.call(
        DriverVendorPassthru(name, method, args=args, http_method=call.method), context=call.context
    )
    return Reply(200, result)


_DRIVER = "/v1/drivers/{driver}"
_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROUTES = [
    Route("/v1/drivers", get_drivers, methods=["GET"]),
    Route(_DRIVER, get_driver, methods=["GET"]),
    Route(f"{_DRIVER}/properties", get_driver_properties, methods=["GET"]),
    Route(
        f"{_DRIVER}/raid/logical_disk_properties", get_raid_logical_disk_properties, methods=["GET"]
    ),
    Route(f"{_DRIVER}/vendor_passthru/methods", get_vendor_methods, methods=["GET"]),
    Route(f"{_DRIVER}/vendor_passthru", vendor_passthru, methods=_ANY),
    # python-ironicclient names the method in the path
    Route(f"{_DRIVER}/vendor_passthru/{{method}}", vendor_passthru, methods=_ANY),
]
