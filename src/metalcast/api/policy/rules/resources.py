"""Ports, portgroups, chassis, drivers, volume resources, conductors: Ironic's rules."""

from __future__ import annotations

from metalcast.api.policy.rules.base import (
    API_READER,
    NODE_PATH,
    PUBLIC,
    SYSTEM_ADMIN,
    SYSTEM_ADMIN_OR_OWNER_ADMIN,
    SYSTEM_MEMBER,
    SYSTEM_MEMBER_OR_OWNER_ADMIN,
    SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
    SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    SYSTEM_OR_PROJECT_READER,
    SYSTEM_READER,
    Subject,
    group,
)

_N = NODE_PATH
_NODE = Subject.NODE


_LISTED = Subject.LIST
PORT_RULES = group(
    "port",
    (
        "get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Port records",
        (("GET", "/v1/ports/{port}"),),
        _NODE,
    ),
    (
        "list",
        API_READER,
        "Retrieve multiple Port records, filtered by the caller's project (through the "
        "port's node)",
        (
            ("GET", "/v1/ports"),
            ("GET", "/v1/ports/detail"),
            ("GET", f"{_N}/ports"),
            ("GET", f"{_N}/ports/detail"),
            ("GET", "/v1/portgroups/{portgroup}/ports"),
            ("GET", "/v1/portgroups/{portgroup}/ports/detail"),
        ),
        _LISTED,
    ),
    (
        "list_all",
        SYSTEM_READER,
        "Retrieve multiple Port records",
        (
            ("GET", "/v1/ports"),
            ("GET", "/v1/ports/detail"),
            ("GET", f"{_N}/ports"),
            ("GET", f"{_N}/ports/detail"),
            ("GET", "/v1/portgroups/{portgroup}/ports"),
            ("GET", "/v1/portgroups/{portgroup}/ports/detail"),
        ),
        _LISTED,
    ),
    ("create", SYSTEM_ADMIN_OR_OWNER_ADMIN, "Create Port records", (("POST", "/v1/ports"),), _NODE),
    (
        "delete",
        SYSTEM_ADMIN_OR_OWNER_ADMIN,
        "Delete Port records",
        (("DELETE", "/v1/ports/{port}"),),
        _NODE,
    ),
    (
        "update",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Update Port records",
        (("PATCH", "/v1/ports/{port}"),),
        _NODE,
    ),
)

PORTGROUP_RULES = group(
    "portgroup",
    (
        "get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Portgroup records",
        (("GET", "/v1/portgroups/{portgroup}"),),
        _NODE,
    ),
    (
        "create",
        SYSTEM_ADMIN_OR_OWNER_ADMIN,
        "Create Portgroup records",
        (("POST", "/v1/portgroups"),),
        _NODE,
    ),
    (
        "delete",
        SYSTEM_ADMIN_OR_OWNER_ADMIN,
        "Delete Portgroup records",
        (("DELETE", "/v1/portgroups/{portgroup}"),),
        _NODE,
    ),
    (
        "update",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Update Portgroup records",
        (("PATCH", "/v1/portgroups/{portgroup}"),),
        _NODE,
    ),
    (
        "list",
        API_READER,
        "Retrieve multiple Portgroup records, filtered by the caller's project (through "
        "the portgroup's node)",
        (
            ("GET", "/v1/portgroups"),
            ("GET", "/v1/portgroups/detail"),
            ("GET", f"{_N}/portgroups"),
            ("GET", f"{_N}/portgroups/detail"),
        ),
        _LISTED,
    ),
    (
        "list_all",
        SYSTEM_READER,
        "Retrieve multiple Portgroup records",
        (
            ("GET", "/v1/portgroups"),
            ("GET", "/v1/portgroups/detail"),
            ("GET", f"{_N}/portgroups"),
            ("GET", f"{_N}/portgroups/detail"),
        ),
        _LISTED,
    ),
)

_CALLER = Subject.CALLER
CHASSIS_RULES = group(
    "chassis",
    (
        "get",
        SYSTEM_READER,
        "Retrieve Chassis records",
        (("GET", "/v1/chassis"), ("GET", "/v1/chassis/detail"), ("GET", "/v1/chassis/{chassis}")),
        _CALLER,
    ),
    ("create", SYSTEM_ADMIN, "Create Chassis records", (("POST", "/v1/chassis"),), _CALLER),
    (
        "delete",
        SYSTEM_ADMIN,
        "Delete Chassis records",
        (("DELETE", "/v1/chassis/{chassis}"),),
        _CALLER,
    ),
    (
        "update",
        SYSTEM_MEMBER,
        "Update Chassis records",
        (("PATCH", "/v1/chassis/{chassis}"),),
        _CALLER,
    ),
)

_D = "/v1/drivers/{driver}"
DRIVER_RULES = group(
    "driver",
    (
        "get",
        SYSTEM_READER,
        "View list of available drivers",
        (("GET", "/v1/drivers"), ("GET", _D)),
        _CALLER,
    ),
    (
        "get_properties",
        SYSTEM_READER,
        "View driver-specific properties",
        (("GET", f"{_D}/properties"),),
        _CALLER,
    ),
    (
        "get_raid_logical_disk_properties",
        SYSTEM_READER,
        "View driver-specific RAID metadata",
        (("GET", f"{_D}/raid/logical_disk_properties"),),
        _CALLER,
    ),
    (
        "vendor_passthru",
        SYSTEM_ADMIN,
        "Access vendor-specific Driver functions",
        (
            ("GET", f"{_D}/vendor_passthru/methods"),
            ("*", f"{_D}/vendor_passthru?method={{method}}"),
            ("*", f"{_D}/vendor_passthru/{{method}}"),
        ),
        _CALLER,
    ),
    (
        "ipa_lookup",
        PUBLIC,
        "Access IPA ramdisk lookup endpoint",
        (("GET", "/v1/lookup"),),
        _CALLER,
    ),
    (
        "ipa_continue_inspection",
        PUBLIC,
        "Receive inspection data from the ramdisk",
        (("POST", "/v1/continue_inspection"),),
        _CALLER,
    ),
)

_VC = "/v1/volume/connectors"
_VT = "/v1/volume/targets"
_VOLUME_LISTS = (
    ("GET", _VC),
    ("GET", _VT),
    ("GET", f"{_N}/volume/connectors"),
    ("GET", f"{_N}/volume/targets"),
)
VOLUME_RULES = group(
    "volume",
    (
        "list_all",
        SYSTEM_READER,
        "Retrieve a list of all Volume connector and target records",
        (*_VOLUME_LISTS, ("GET", f"{_VC}/detail"), ("GET", f"{_VT}/detail")),
        _LISTED,
    ),
    (
        "list",
        API_READER,
        "Retrieve a list of Volume connector and target records, filtered by the "
        "caller's project (through the node)",
        (*_VOLUME_LISTS, ("GET", f"{_VC}/detail"), ("GET", f"{_VT}/detail")),
        _LISTED,
    ),
    (
        "get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Volume connector and target records (the /v1/volume and "
        "/v1/nodes/{node}/volume link documents are checked without a node, so only "
        "system readers get them, as in Ironic)",
        (
            ("GET", "/v1/volume"),
            ("GET", f"{_N}/volume"),
            ("GET", f"{_VC}/{{connector}}"),
            ("GET", f"{_VT}/{{target}}"),
        ),
        _NODE,
    ),
    (
        "create",
        SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
        "Create Volume connector and target records",
        (("POST", _VC), ("POST", _VT)),
        _NODE,
    ),
    (
        "delete",
        SYSTEM_MEMBER_OR_OWNER_LESSEE_ADMIN,
        "Delete Volume connector and target records",
        (("DELETE", f"{_VC}/{{connector}}"), ("DELETE", f"{_VT}/{{target}}")),
        _NODE,
    ),
    (
        "update",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Update Volume connector and target records",
        (("PATCH", f"{_VC}/{{connector}}"), ("PATCH", f"{_VT}/{{target}}")),
        _NODE,
    ),
    (
        "view_target_properties",
        "rule:system_reader or role:admin",
        "Ability to view volume target properties (otherwise shown redacted)",
        (("GET", _VT), ("GET", f"{_VT}/{{target}}"), ("PATCH", f"{_VT}/{{target}}")),
        _CALLER,
    ),
)

SHARD_RULES = group(
    "shards",
    (
        "get",
        SYSTEM_READER,
        "Governs if shards can be read via the API clients.",
        (("GET", "/v1/shards"),),
        Subject.CALLER,
    ),
)

CONDUCTOR_RULES = group(
    "conductor",
    (
        "get",
        SYSTEM_READER,
        "Retrieve Conductor records",
        (("GET", "/v1/conductors"), ("GET", "/v1/conductors/{hostname}")),
        _CALLER,
    ),
)
