"""An agent's inventory, checked before anything is stored: pure, no I/O.

The inventory comes from a ramdisk the node's tenant may have controlled, so it is
hostile input: :func:`check` refuses one that is too large, is not Ironic's shape,
holds control characters in a string, or has a NIC without a valid MAC.  What is
derived from it (:func:`properties`, :func:`root_disk`) never trusts more than that.

Errors::

    InvalidInventory   (400) the message says what is wrong; nothing was stored
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any, cast

from metalcast.errors import InvalidInput
from metalcast_agent import hints as agent_hints
from metalcast_agent.errors import AgentError
from metalcast_agent.protocol import Disk, InventoryDisk
from metalcast_agent.protocol import Inventory as Inventory

#: the largest inventory stored, as compact JSON
MAX_BYTES = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline may appear in flags
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SECTIONS: Mapping[str, type] = {
    "cpu": dict,
    "memory": dict,
    "disks": list,
    "interfaces": list,
}
GIB = 2**30
#: the most NICs and disks an inventory may list: each NIC may become a port, and no
#: server has more (a hostile one would otherwise create thousands)
MAX_INTERFACES = 64
MAX_DISKS = 256
#: the longest cpu_arch taken from an inventory ("x86_64", "aarch64", "ppc64le", …)
_MAX_ARCH = 32


class InvalidInventory(InvalidInput):
    """An inventory that is refused."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"The agent's inventory was refused: {problem}.")
        self.problem = problem


def check(found: object) -> Inventory:
    """``found`` as an inventory, or why not.

    Raises:
        InvalidInventory: too large, not an object with Ironic's sections, a control
            character in a string, too many NICs or disks, a NIC without a valid MAC,
            a disk without a size.
    """
    size = len(json.dumps(found, separators=(",", ":")))
    if size > MAX_BYTES:
        raise InvalidInventory(f"it is {size} bytes, more than the {MAX_BYTES} accepted")
    if not isinstance(found, dict):
        raise InvalidInventory("it is not a JSON object")
    for key, kind in _SECTIONS.items():
        if not isinstance(found.get(key), kind):
            raise InvalidInventory(f"'{key}' is missing or not a {kind.__name__}")
    _check_strings(found, "inventory")
    if len(found["interfaces"]) > MAX_INTERFACES or len(found["disks"]) > MAX_DISKS:
        raise InvalidInventory(f"it lists more than {MAX_INTERFACES} NICs or {MAX_DISKS} disks")
    for index, nic in enumerate(found["interfaces"]):
        mac = nic.get("mac_address") if isinstance(nic, dict) else None
        if not isinstance(mac, str) or not _MAC.match(mac.lower()):
            raise InvalidInventory(f"interface {index} has no valid mac_address")
    for index, disk in enumerate(found["disks"]):
        size_ok = isinstance(disk, dict) and _natural(disk.get("size"))
        if not size_ok or not isinstance(disk.get("name"), str):
            raise InvalidInventory(f"disk {index} has no name or no size in bytes")
    return cast(Inventory, found)


def _check_strings(value: object, where: str) -> None:
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise InvalidInventory(f"{where} holds a control character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, where)
            _check_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{where}[{index}]")


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def macs(inventory: Inventory) -> list[str]:
    """The MACs of the inventory's NICs, lower case, in its order."""
    return [nic["mac_address"].lower() for nic in inventory["interfaces"]]


def boot_mac(inventory: Inventory) -> str | None:
    """The MAC the machine booted from, when it is one of its NICs."""
    boot = inventory.get("boot")
    mac = boot.get("pxe_interface") if isinstance(boot, dict) else None
    return mac.lower() if isinstance(mac, str) and mac.lower() in macs(inventory) else None


def bmc_address(inventory: Inventory) -> str | None:
    """The BMC's address, unless absent, not an IP address, unspecified or loopback
    (never a BMC metalcast should talk to)."""
    value = inventory.get("bmc_address")
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if address is None or address.is_loopback or address.is_unspecified:
        return None
    return str(address)


def root_disk(inventory: Inventory, hints: object) -> InventoryDisk | None:
    """The root disk as the agent would choose it: the one matching the root-device
    ``hints`` (the node's ``properties.root_device``), else the smallest disk of at
    least 4 GiB (Ironic's rule), else the largest; ``None`` when none matches."""
    disks = list(inventory["disks"])
    if isinstance(hints, dict) and hints:
        try:
            agent_hints.check_hints(hints)
            fitting = [d for d in disks if agent_hints.matches(_as_disk(d), hints)]
        except (AgentError, ValueError, TypeError):
            return None  # hints the agent would refuse: no root disk
        return min(fitting, key=lambda d: d["size"], default=None)
    big = [d for d in disks if d["size"] >= 4 * GIB]
    if big:
        return min(big, key=lambda d: d["size"])
    return max(disks, key=lambda d: d["size"], default=None)


def _as_disk(disk: InventoryDisk) -> Disk:
    return Disk(
        name=disk["name"],
        size=disk["size"],
        model=disk.get("model"),
        serial=disk.get("serial"),
        wwn=disk.get("wwn"),
        vendor=disk.get("vendor"),
        rotational=bool(disk.get("rotational")),
    )


def properties(inventory: Inventory, *, hints: object) -> dict[str, Any]:
    """The node properties the inventory gives: ``cpus``, ``memory_mb``, ``local_gb``
    (the root disk, less 1 GiB for partitioning as Ironic does), ``cpu_arch``; a
    property the inventory does not tell is left out."""
    out: dict[str, Any] = {}
    cpu, memory = inventory["cpu"], inventory["memory"]
    if _natural(cpu.get("count")) and cpu["count"] > 0:
        out["cpus"] = cpu["count"]
    arch = cpu.get("architecture")
    if isinstance(arch, str) and 0 < len(arch) <= _MAX_ARCH:
        out["cpu_arch"] = arch
    physical, total = memory.get("physical_mb"), memory.get("total")
    if _natural(physical) and physical:
        out["memory_mb"] = physical
    elif _natural(total) and total:
        out["memory_mb"] = total // 2**20
    disk = root_disk(inventory, hints)
    if disk is not None:
        out["local_gb"] = max(disk["size"] // GIB - 1, 0)
    return out


def boot_mode(inventory: Inventory) -> str | None:
    """``uefi`` or ``bios``, as the machine booted."""
    boot = inventory.get("boot")
    mode = boot.get("current_boot_mode") if isinstance(boot, dict) else None
    return mode if mode in ("uefi", "bios") else None


def with_capability(capabilities: object, name: str, value: str) -> str:
    """A node's ``properties.capabilities`` string (``a:1,b:2``) with ``name`` set."""
    text = capabilities if isinstance(capabilities, str) else ""
    pairs = [p for p in text.split(",") if p and p.split(":", 1)[0] != name]
    return ",".join([*pairs, f"{name}:{value}"])
