"""Out-of-band inspection's inventory: what the Redfish BMC said, in Ironic's format,
which the conductor's inventory check accepts as it accepts an agent's."""

from __future__ import annotations

from metalcast.conductor import inventory as inv
from metalcast.drivers.redfish.client import Disk, Nic, SystemHardware
from metalcast.drivers.redfish.interfaces import inventory_of

GIB = 1024**3


def hardware(**changes: object) -> SystemHardware:
    values: dict[str, object] = {
        "manufacturer": "Acme",
        "model": "R1",
        "serial": "SN-1",
        "uuid": None,
        "cpu_count": 8,
        "cpu_model": "Xeon",
        "cpu_arch": "x86",
        "memory_bytes": 16 * GIB,
        "disks": (Disk("d0", 480 * GIB, serial="A"), Disk("d1", 8000 * GIB, rotational=True)),
        "nics": (Nic("NIC0", "52:54:00:00:00:01", 25000), Nic("NIC1", "52:54:00:00:00:02")),
        "boot_mode": "Legacy",
    }
    values.update(changes)
    return SystemHardware(**values)  # type: ignore[arg-type]


def test_the_inventory_passes_the_conductors_check_and_gives_the_properties() -> None:
    found = inv.check(inventory_of(hardware()))
    props = inv.properties(found, hints=None)
    assert (props["cpus"], props["cpu_arch"], props["memory_mb"]) == (8, "x86_64", 16384)
    assert props["local_gb"] == 479  # the smaller disk of at least 4 GiB, less 1 GiB
    assert inv.boot_mode(found) == "bios"
    assert inv.boot_mac(found) == "52:54:00:00:00:01"  # the first NIC the BMC lists
    assert [d["rotational"] for d in found["disks"]] == [False, True]


def test_what_the_bmc_does_not_say_is_left_out_not_guessed() -> None:
    found = inventory_of(hardware(cpu_arch=None, memory_bytes=None, nics=(), boot_mode=None))
    assert found["cpu"]["architecture"] == ""
    assert found["memory"] == {"total": None, "physical_mb": None}
    assert found["boot"] == {"current_boot_mode": "unknown", "pxe_interface": None}
    assert inv.boot_mode(inv.check(found)) is None  # no boot_mode capability set
    assert found["interfaces"] == []
