"""The node rules: Ironic's ``baremetal:node:*`` with their secure-RBAC defaults."""

from __future__ import annotations

from metalcast.api.policy.rules.base import (
    API_READER,
    NODE_PATH,
    PUBLIC,
    SYSTEM_ADMIN,
    SYSTEM_MEMBER,
    SYSTEM_MEMBER_OR_OWNER_ADMIN,
    SYSTEM_MEMBER_OR_OWNER_MEMBER,
    SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
    SYSTEM_OR_OWNER_READER,
    SYSTEM_OR_PROJECT_MEMBER,
    SYSTEM_OR_PROJECT_READER,
    SYSTEM_READER,
    Rule,
    Subject,
)

_N = NODE_PATH
_NODE = Subject.NODE


def _node(name: str, check: str, description: str, *ops: tuple[str, str]) -> Rule:
    return Rule(f"baremetal:node:{name}", check, description, ops, _NODE)


NODE_RULES: tuple[Rule, ...] = (
    Rule(
        "baremetal:node:create",
        "rule:system_admin or rule:system_service",
        "Create Node records",
        (("POST", "/v1/nodes"),),
    ),
    Rule(
        "baremetal:node:create:self_owned_node",
        "role:admin or role:service",
        "Create node records which will be tracked as owned by the associated user "
        "project (checked when baremetal:node:create refuses; the node's owner becomes "
        "the caller's project).",
        (("POST", "/v1/nodes"),),
    ),
    Rule(
        "baremetal:node:list",
        API_READER,
        "Retrieve multiple Node records, filtered by the caller's project (owner or lessee)",
        (("GET", "/v1/nodes"), ("GET", "/v1/nodes/detail"), ("GET", "/v1/chassis/{chassis}/nodes")),
        Subject.LIST,
    ),
    Rule(
        "baremetal:node:list_all",
        SYSTEM_READER,
        "Retrieve multiple Node records",
        (("GET", "/v1/nodes"), ("GET", "/v1/nodes/detail"), ("GET", "/v1/chassis/{chassis}/nodes")),
        Subject.LIST,
    ),
    _node(
        "get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve a single Node record (and, from 1.83, the UUIDs of its children)",
        ("GET", _N),
        ("GET", f"{_N}/children"),
    ),
    _node(
        "get:filter_threshold",
        SYSTEM_READER,
        "Filter to allow operators to govern the threshold where information should be "
        "filtered. Non-authorized users will be subjected to additional API policy "
        "checks for API content response bodies.",
        ("GET", _N),
    ),
    _node(
        "get:last_error",
        SYSTEM_OR_OWNER_READER,
        "Governs if the node last_error field is masked from API clients with "
        "insufficient privileges.",
        ("GET", _N),
    ),
    _node(
        "get:reservation",
        SYSTEM_OR_OWNER_READER,
        "Governs if the node reservation field is masked from API clients with "
        "insufficient privileges.",
        ("GET", _N),
    ),
    _node(
        "get:driver_internal_info",
        SYSTEM_OR_OWNER_READER,
        "Governs if the node driver_internal_info field is masked from API clients "
        "with insufficient privileges.",
        ("GET", _N),
    ),
    _node(
        "get:driver_info",
        SYSTEM_OR_OWNER_READER,
        "Governs if the driver_info field is masked from API clients with insufficient privileges.",
        ("GET", _N),
    ),
    *(
        _node(
            f"update:{field}",
            check,
            f"Governs if node {what} can be updated via the API clients.",
            ("PATCH", _N),
        )
        for field, check, what in (
            ("driver_info", SYSTEM_MEMBER_OR_OWNER_MEMBER, "driver_info field"),
            ("properties", SYSTEM_MEMBER_OR_OWNER_MEMBER, "properties field"),
            ("chassis_uuid", SYSTEM_ADMIN, "chassis_uuid field"),
            ("instance_uuid", SYSTEM_MEMBER_OR_OWNER_MEMBER, "instance_uuid field"),
            ("lessee", SYSTEM_MEMBER_OR_OWNER_MEMBER, "lessee field"),
            ("owner", SYSTEM_MEMBER, "owner field"),
            (
                "driver_interfaces",
                SYSTEM_MEMBER_OR_OWNER_ADMIN,
                "driver and *_interface fields (network_interface included)",
            ),
            ("network_data", SYSTEM_MEMBER_OR_OWNER_MEMBER, "network_data field"),
            ("conductor_group", SYSTEM_MEMBER, "conductor_group field"),
            ("name", SYSTEM_MEMBER_OR_OWNER_MEMBER, "name field"),
            ("retired", SYSTEM_MEMBER_OR_OWNER_MEMBER, "retired and retired_reason fields"),
            ("shard", SYSTEM_ADMIN, "shard field"),
            ("parent_node", SYSTEM_MEMBER, "parent_node field"),
            ("disable_power_off", SYSTEM_ADMIN, "disable_power_off field"),
        )
    ),
    _node(
        "update",
        SYSTEM_OR_PROJECT_MEMBER,
        "Generalized update of node records (any field without a rule of its own, e.g. "
        "description, protected, resource_class, maintenance_reason)",
        ("PATCH", _N),
    ),
    _node("update_extra", SYSTEM_OR_PROJECT_MEMBER, "Update Node extra field", ("PATCH", _N)),
    _node(
        "update_instance_info",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Update Node instance_info field",
        ("PATCH", _N),
    ),
    _node(
        "update_owner_provisioned",
        SYSTEM_ADMIN,
        "Update Node owner even when Node is provisioned (refused: 409)",
        ("PATCH", _N),
    ),
    _node(
        "disable_cleaning",
        SYSTEM_ADMIN,
        "Disable Node disk cleaning (automated_clean set to false)",
        ("PATCH", _N),
    ),
    _node("delete", SYSTEM_ADMIN, "Delete Node records", ("DELETE", _N)),
    _node(
        "delete:self_owned_node",
        "rule:owner_admin",
        "Delete node records which are associated with the requesting project (checked "
        "when baremetal:node:delete refuses).",
        ("DELETE", _N),
    ),
    _node(
        "validate",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Request active validation of Nodes",
        ("GET", f"{_N}/validate"),
    ),
    _node(
        "set_maintenance",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Set maintenance flag, taking a Node out of service",
        ("PUT", f"{_N}/maintenance"),
    ),
    _node(
        "clear_maintenance",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Clear maintenance flag, placing the Node into service again",
        ("DELETE", f"{_N}/maintenance"),
    ),
    _node(
        "get_boot_device",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Retrieve Node boot device metadata",
        ("GET", f"{_N}/management/boot_device"),
        ("GET", f"{_N}/management/boot_device/supported"),
    ),
    _node(
        "set_boot_device",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Change Node boot device",
        ("PUT", f"{_N}/management/boot_device"),
    ),
    _node(
        "inject_nmi",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Inject NMI for a node",
        ("PUT", f"{_N}/management/inject_nmi"),
    ),
    _node(
        "get_indicator_state",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Node indicators and their states",
        ("GET", f"{_N}/management/indicators"),
        ("GET", f"{_N}/management/indicators/{{indicator}}"),
    ),
    _node(
        "set_indicator_state",
        SYSTEM_MEMBER_OR_OWNER_MEMBER,
        "Change Node indicator state",
        ("PUT", f"{_N}/management/indicators/{{indicator}}"),
    ),
    _node(
        "vmedia:attach",
        SYSTEM_OR_PROJECT_MEMBER,
        "Attach a virtual media device to a node",
        ("POST", f"{_N}/vmedia"),
    ),
    _node(
        "vmedia:detach",
        SYSTEM_OR_PROJECT_MEMBER,
        "Detach a virtual media device from a node",
        ("DELETE", f"{_N}/vmedia"),
    ),
    _node(
        "vmedia:get",
        SYSTEM_OR_PROJECT_READER,
        "Get virtual media device details from a node",
        ("GET", f"{_N}/vmedia"),
    ),
    _node(
        "get_states",
        SYSTEM_OR_PROJECT_READER,
        "View Node power and provision state",
        ("GET", f"{_N}/states"),
    ),
    _node(
        "set_power_state",
        SYSTEM_OR_PROJECT_MEMBER,
        "Change Node power status",
        ("PUT", f"{_N}/states/power"),
    ),
    _node(
        "set_boot_mode",
        SYSTEM_OR_PROJECT_MEMBER,
        "Change Node boot mode",
        ("PUT", f"{_N}/states/boot_mode"),
    ),
    _node(
        "set_secure_boot",
        SYSTEM_OR_PROJECT_MEMBER,
        "Change Node secure boot state",
        ("PUT", f"{_N}/states/secure_boot"),
    ),
    _node(
        "set_provision_state",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Change Node provision status",
        ("PUT", f"{_N}/states/provision"),
    ),
    _node(
        "set_provision_state:clean_steps",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Allow execution of arbitrary steps on a node (manual cleaning with clean_steps)",
        ("PUT", f"{_N}/states/provision"),
    ),
    _node(
        "set_provision_state:service_steps",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Allow execution of arbitrary steps on a node (servicing with service_steps)",
        ("PUT", f"{_N}/states/provision"),
    ),
    _node(
        "set_raid_state",
        SYSTEM_MEMBER_OR_OWNER_MEMBER,
        "Change Node RAID status",
        ("PUT", f"{_N}/states/raid"),
    ),
    _node(
        "get_console",
        SYSTEM_MEMBER_OR_OWNER_MEMBER,
        "Get Node console connection information",
        ("GET", f"{_N}/states/console"),
        ("GET", f"{_N}/console/log"),
    ),
    _node(
        "set_console_state",
        SYSTEM_MEMBER_OR_OWNER_MEMBER,
        "Change Node console status",
        ("PUT", f"{_N}/states/console"),
    ),
    _node(
        "vif:list", SYSTEM_OR_PROJECT_READER, "List VIFs attached to node", ("GET", f"{_N}/vifs")
    ),
    _node(
        "vif:attach",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Attach a VIF to a node",
        ("POST", f"{_N}/vifs"),
    ),
    _node(
        "vif:detach",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Detach a VIF from a node",
        ("DELETE", f"{_N}/vifs/{{vif}}"),
    ),
    _node("traits:list", SYSTEM_OR_PROJECT_READER, "List node traits", ("GET", f"{_N}/traits")),
    _node(
        "traits:set",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Add a trait to, or replace all traits of, a node",
        ("PUT", f"{_N}/traits"),
        ("PUT", f"{_N}/traits/{{trait}}"),
    ),
    _node(
        "traits:delete",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Remove one or all traits from a node",
        ("DELETE", f"{_N}/traits"),
        ("DELETE", f"{_N}/traits/{{trait}}"),
    ),
    _node(
        "bios:get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Node BIOS information",
        ("GET", f"{_N}/bios"),
        ("GET", f"{_N}/bios/{{setting}}"),
    ),
    _node(
        "firmware:get",
        SYSTEM_OR_PROJECT_READER,
        "Retrieve Node Firmware components information",
        ("GET", f"{_N}/firmware"),
    ),
    _node(
        "history:get",
        SYSTEM_OR_OWNER_READER,
        "Retrieve Node history records",
        ("GET", f"{_N}/history"),
        ("GET", f"{_N}/history/{{event}}"),
    ),
    _node(
        "inventory:get",
        SYSTEM_OR_OWNER_READER,
        "Retrieve introspection data for a node.",
        ("GET", f"{_N}/inventory"),
    ),
    _node(
        "vendor_passthru",
        SYSTEM_ADMIN,
        "Access vendor-specific Node functions",
        ("GET", f"{_N}/vendor_passthru/methods"),
        ("*", f"{_N}/vendor_passthru?method={{method}}"),
        ("*", f"{_N}/vendor_passthru/{{method}}"),
    ),
    Rule(
        "baremetal:node:ipa_heartbeat",
        PUBLIC,
        "Receive heartbeats from IPA ramdisk",
        (("POST", "/v1/heartbeat/{node}"),),
    ),
)
