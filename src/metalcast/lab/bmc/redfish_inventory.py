"""The hardware documents of the virtual Redfish BMC: what out-of-band inspection reads.

Pure functions from a machine's :class:`~metalcast.lab.machine.Hardware` to the
DMTF Redfish resources below its ComputerSystem that sushy reads (and Ironic's
``redfish`` inspect interface with it)::

    Systems/<name>/Processors[/CPU<n>]             ProcessorCollection, Processor
    Systems/<name>/Memory[/DIMM0]                  MemoryCollection, Memory
    Systems/<name>/SimpleStorage[/Controller0]     SimpleStorage with one device per disk
    Systems/<name>/Storage[/Storage0]              Storage with Drives links
    Systems/<name>/Storage/Storage0/Drives/<n>     Drive (size, serial, media type)
    Systems/<name>/EthernetInterfaces[/NIC<n>]     EthernetInterface (MAC address)

:func:`system_fields` gives the ComputerSystem's own hardware properties
(Manufacturer, Model, SerialNumber, the summaries and the links to the above).
"""

from __future__ import annotations

from typing import Any

from metalcast.lab.machine import Hardware

GIB = 1024**3
#: what the lab's virtual CPUs claim to be (QEMU's default TCG model under q35)
CPU_MODEL = "QEMU Virtual CPU version 2.5+"
_OK = {"State": "Enabled", "Health": "OK"}


def system_fields(path: str, hardware: Hardware) -> dict[str, Any]:
    """The hardware part of the ComputerSystem at ``path``."""
    return {
        "Manufacturer": hardware.manufacturer,
        "Model": hardware.product,
        "SerialNumber": hardware.serial,
        "ProcessorSummary": {"Count": hardware.cpus, "Model": CPU_MODEL, "Status": _OK},
        "MemorySummary": {"TotalSystemMemoryGiB": hardware.memory_mb / 1024, "Status": _OK},
        "Processors": {"@odata.id": f"{path}/Processors"},
        "Memory": {"@odata.id": f"{path}/Memory"},
        "SimpleStorage": {"@odata.id": f"{path}/SimpleStorage"},
        "Storage": {"@odata.id": f"{path}/Storage"},
        "EthernetInterfaces": {"@odata.id": f"{path}/EthernetInterfaces"},
    }


def document(path: str, hardware: Hardware, rest: str) -> dict[str, Any] | None:
    """The document at ``<path>/<rest>`` (``path``: the ComputerSystem's); None: none."""
    return documents(path, hardware).get(f"{path}/{rest.strip('/')}")


def documents(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    """Every hardware document below the ComputerSystem at ``path``, by its path."""
    found: dict[str, dict[str, Any]] = {}
    for members, kind in (
        (_processors(path, hardware), "Processor"),
        (_memory(path, hardware), "Memory"),
        (_simple_storage(path, hardware), "SimpleStorage"),
        (_storage(path, hardware), "Storage"),
        (_ethernet_interfaces(path, hardware), "EthernetInterface"),
    ):
        collection_path = f"{path}/{_COLLECTIONS[kind]}"
        found[collection_path] = _collection(collection_path, kind, list(members))
        found.update(members)
    found.update(_drives(path, hardware))
    return found


_COLLECTIONS = {
    "Processor": "Processors",
    "Memory": "Memory",
    "SimpleStorage": "SimpleStorage",
    "Storage": "Storage",
    "EthernetInterface": "EthernetInterfaces",
}


def _collection(path: str, kind: str, members: list[str]) -> dict[str, Any]:
    return {
        "@odata.id": path,
        "@odata.type": f"#{kind}Collection.{kind}Collection",
        "Name": f"{kind} Collection",
        "Members@odata.count": len(members),
        "Members": [{"@odata.id": member} for member in members],
    }


def _processors(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    found = {}
    for number in range(hardware.cpus):
        member = f"{path}/Processors/CPU{number}"
        found[member] = {
            "@odata.id": member,
            "@odata.type": "#Processor.v1_7_0.Processor",
            "Id": f"CPU{number}",
            "Name": "Processor",
            "Socket": f"CPU {number}",
            "ProcessorType": "CPU",
            "ProcessorArchitecture": "x86",
            "InstructionSet": "x86-64",
            "Manufacturer": "QEMU",
            "Model": CPU_MODEL,
            "MaxSpeedMHz": 2000,
            "TotalCores": 1,
            "TotalThreads": 1,
            "Status": _OK,
        }
    return found


def _memory(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    member = f"{path}/Memory/DIMM0"
    return {
        member: {
            "@odata.id": member,
            "@odata.type": "#Memory.v1_7_0.Memory",
            "Id": "DIMM0",
            "Name": "DIMM 0",
            "MemoryType": "DRAM",
            "MemoryDeviceType": "DDR4",
            "CapacityMiB": hardware.memory_mb,
            "Status": _OK,
        }
    }


def _simple_storage(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    member = f"{path}/SimpleStorage/Controller0"
    devices = [
        {
            "Name": disk.name,
            "Manufacturer": "QEMU",
            "Model": "Virtio Block Device",
            "CapacityBytes": disk.size_gb * GIB,
            "Status": _OK,
        }
        for disk in hardware.disks
    ]
    return {
        member: {
            "@odata.id": member,
            "@odata.type": "#SimpleStorage.v1_2_0.SimpleStorage",
            "Id": "Controller0",
            "Name": "Virtio block controller",
            "Devices": devices,
            "Status": _OK,
        }
    }


def _storage(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    member = f"{path}/Storage/Storage0"
    drives = [{"@odata.id": drive} for drive in _drives(path, hardware)]
    return {
        member: {
            "@odata.id": member,
            "@odata.type": "#Storage.v1_7_0.Storage",
            "Id": "Storage0",
            "Name": "Virtio storage",
            "Drives": drives,
            "Drives@odata.count": len(drives),
            "Status": _OK,
        }
    }


def _drives(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    found = {}
    for number, disk in enumerate(hardware.disks):
        member = f"{path}/Storage/Storage0/Drives/{number}"
        found[member] = {
            "@odata.id": member,
            "@odata.type": "#Drive.v1_4_0.Drive",
            "Id": str(number),
            "Name": disk.name,
            "Manufacturer": "QEMU",
            "Model": "Virtio Block Device",
            "SerialNumber": disk.serial,
            "CapacityBytes": disk.size_gb * GIB,
            "MediaType": "HDD",
            "Protocol": "PCIe",
            "Status": _OK,
        }
    return found


def _ethernet_interfaces(path: str, hardware: Hardware) -> dict[str, dict[str, Any]]:
    found = {}
    for number, mac in enumerate(hardware.nics):
        member = f"{path}/EthernetInterfaces/NIC{number}"
        found[member] = {
            "@odata.id": member,
            "@odata.type": "#EthernetInterface.v1_4_0.EthernetInterface",
            "Id": f"NIC{number}",
            "Name": f"Ethernet interface {number}",
            "MACAddress": mac,
            "PermanentMACAddress": mac,
            "SpeedMbps": 1000,
            "LinkStatus": "LinkUp",
            "Status": _OK,
        }
    return found
