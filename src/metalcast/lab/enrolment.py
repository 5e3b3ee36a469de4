"""The lab's nodes in a running metalcast: enrolled and deleted over the HTTP API,
as any user would (the lab never reaches into the server).

Each lab machine becomes an ``ipmi`` node named after it, whose ``driver_info``
points at the machine's virtual BMC, with one port for its MAC.  The node's UUID is
the machine's SMBIOS UUID (what an inspection would find); its boot mode, as Ironic
keeps it, is the lab's firmware mode: ``properties/capabilities`` ``boot_mode:bios``
or ``boot_mode:uefi`` (which the IPMI driver turns into the boot flags' EFI bit).
In a ``lab up --bmc redfish`` lab a machine is a ``redfish`` node instead (its
system on the lab's Redfish service), booting with ``redfish-virtual-media``, with
``network_data`` giving its first NIC a static address (:func:`static_network_data`):
its deploy ramdisk asks no DHCP server, and the boot services answer it none.

Errors: :class:`~metalcast.lab.errors.ServerUnreachable`,
:class:`~metalcast.lab.errors.ServerRefused`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from metalcast.lab.errors import LabError, ServerRefused, ServerUnreachable
from metalcast.lab.state import LabNode, LabState
from metalcast.tls.trust import ca_context

VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
#: a version recent enough to show the drivers' default and enabled interfaces
API_VERSION = "latest"
HARDWARE_TYPE = "ipmi"
#: the interfaces that really boot and deploy a machine (by hardware type), when the
#: server has them; otherwise the hardware type's defaults
WANTED_INTERFACES = {
    "ipmi": {"boot": "ipxe", "deploy": "direct"},
    "redfish": {"boot": "redfish-virtual-media", "deploy": "direct"},
}
#: a ``--bmc redfish`` machine's static address on the lab network: this plus its index
STATIC_HOST_BASE = 10
#: how long ``lab down`` retries deleting a node that is locked by running work
DELETE_PATIENCE = 60.0
_CONFLICT = 409
_NOT_FOUND = 404

JSON = dict[str, Any]


def _fault(response: httpx.Response) -> str:
    """The faultstring of an Ironic error body, or the best text available."""
    try:
        body = response.json()
        message = body.get("error_message", body)
        if isinstance(message, str):
            message = json.loads(message)
        return str(message.get("faultstring") or message)
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}: {response.text.strip()[:200]}"


class ServerApi:
    """The few calls of metalcast's API the lab makes, with the caller's credentials
    (``auth``) when the server wants them."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
        cacert: Path | None = None,
    ) -> None:
        """An https ``url`` is verified with ``cacert`` (None: the system's trust store).

        Raises:
            TlsError: ``cacert`` cannot be read or holds no certificate.
        """
        self.url = url.rstrip("/").removesuffix("/v1")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            auth=auth,
            headers={VERSION_HEADER: API_VERSION},
            verify=ca_context(cacert, setting="--cacert"),
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def request(self, method: str, path: str, *, body: JSON | None = None) -> Any:
        """One request; its JSON body (None if empty).

        Raises:
            ServerUnreachable: nothing answers.  ServerRefused: an error status.
        """
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url) from exc
        if response.is_error:
            raise ServerRefused(f"{method} {path}: {_fault(response)}", status=response.status_code)
        return response.json() if response.content else None

    def check(self) -> None:
        """Make sure a metalcast API answers at the URL.

        Raises:
            ServerUnreachable: nothing (or not metalcast) answers.
        """
        try:
            root = self.request("GET", "/v1")
        except ServerRefused as exc:
            raise ServerUnreachable(self.url) from exc
        if not isinstance(root, dict) or "id" not in root:
            raise ServerUnreachable(self.url)

    def find_node(self, ident: str) -> JSON | None:
        """The node named or with UUID ``ident``; None if there is none."""
        try:
            node: JSON = self.request("GET", _node_path(ident))
        except ServerRefused as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise
        return node

    def interfaces(self, hardware_type: str = HARDWARE_TYPE) -> dict[str, str]:
        """The :data:`WANTED_INTERFACES` the server enables for ``hardware_type`` but
        does not default to, as node fields (``{"boot_interface": "ipxe"}``)."""
        driver = self.request("GET", f"/v1/drivers/{quote(hardware_type, safe='')}")
        fields: dict[str, str] = {}
        for kind, wanted in WANTED_INTERFACES.get(hardware_type, {}).items():
            enabled = driver.get(f"enabled_{kind}_interfaces") or []
            if wanted in enabled and driver.get(f"default_{kind}_interface") != wanted:
                fields[f"{kind}_interface"] = wanted
        return fields

    def enrol(self, state: LabState, node: LabNode, *, extra: Mapping[str, str]) -> str:
        """Create the node for ``node`` and its port; the node's UUID.

        Raises:
            ServerRefused: the node or port was refused (a refused port deletes the
                node again).
        """
        created: JSON = self.request("POST", "/v1/nodes", body=node_body(state, node, extra))
        uuid = str(created["uuid"])
        try:
            self.request("POST", "/v1/ports", body={"address": node.mac, "node_uuid": uuid})
        except LabError:
            self.delete_node(uuid)
            raise
        return uuid

    def delete_node(self, uuid: str, *, patience: float = DELETE_PATIENCE) -> bool:
        """Delete the node (its ports go with it), in maintenance if its state
        forbids deletion; False if it was gone already.

        Raises:
            ServerRefused: the node could not be deleted within ``patience`` seconds.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                self.request("DELETE", _node_path(uuid))
                return True
            except ServerRefused as exc:
                if exc.status == _NOT_FOUND:
                    return False
                if exc.status != _CONFLICT or time.monotonic() > deadline:
                    raise
            self._force_maintenance(uuid)
            time.sleep(0.5)

    def _force_maintenance(self, uuid: str) -> None:
        """Maintenance on, so that a busy node may be deleted (a locked node: later)."""
        try:
            self.request(
                "PUT", _node_path(uuid, "maintenance"), body={"reason": "metalcast lab down"}
            )
        except ServerRefused as exc:
            if exc.status not in (_CONFLICT, _NOT_FOUND):
                raise


def _node_path(ident: str, *parts: str) -> str:
    return "/".join(["/v1/nodes", quote(ident, safe=""), *parts])


def hardware_type(state: LabState) -> str:
    """The hardware type the lab's nodes are enrolled with."""
    return "redfish" if state.bmc == "redfish" else HARDWARE_TYPE


def _driver_info(state: LabState, node: LabNode) -> JSON:
    if state.bmc == "redfish":
        return {
            "redfish_address": f"http://{state.bmc_address}:{state.redfish_port}",
            "redfish_system_id": f"/redfish/v1/Systems/{node.name}",
            "redfish_username": state.bmc_username,
            "redfish_password": state.bmc_password,
        }
    return {
        "ipmi_address": state.bmc_address,
        "ipmi_port": node.bmc_port,
        "ipmi_username": state.bmc_username,
        "ipmi_password": state.bmc_password,
    }


def static_network_data(state: LabState, node: LabNode) -> JSON:
    """A ``--bmc redfish`` machine's ``network_data`` (Ironic's shape): a static
    address on the lab network for its first NIC (below the DHCP range), the boot
    services' address as its gateway and DNS server."""
    network = state.lab_network
    prefix = network.address.rsplit(".", 1)[0]
    return {
        "links": [{"id": "port0", "type": "phy", "ethernet_mac_address": node.mac}],
        "networks": [
            {
                "id": "provisioning",
                "link": "port0",
                "type": "ipv4",
                "ip_address": f"{prefix}.{STATIC_HOST_BASE + node.index}",
                "netmask": "255.255.255.0",
                "routes": [
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": network.address}
                ],
            }
        ],
        "services": [{"type": "dns", "address": network.address}],
    }


def node_body(state: LabState, node: LabNode, extra: Mapping[str, str]) -> JSON:
    """The ``POST /v1/nodes`` body of a lab machine."""
    static = {"network_data": static_network_data(state, node)} if state.bmc == "redfish" else {}
    return {
        "name": node.name,
        "uuid": node.machine_uuid,
        "driver": hardware_type(state),
        "driver_info": _driver_info(state, node),
        **static,
        "properties": {
            "cpus": state.cpus,
            "memory_mb": state.memory_mb,
            "local_gb": state.disk_size_gb,
            "cpu_arch": "x86_64",
            "capabilities": f"boot_mode:{state.boot_mode.value}",
        },
        **({"conductor_group": state.conductor_group} if state.conductor_group else {}),
        **extra,
    }
