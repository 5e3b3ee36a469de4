"""The conductor's checks of an agent's inventory: hostile ones are refused."""

from __future__ import annotations

from typing import Any

import pytest

from metalcast.conductor import inventory as inv

GIB = 2**30


def good() -> dict[str, Any]:
    return {
        "cpu": {"count": 4, "model_name": "Xeon", "architecture": "x86_64", "flags": ["vmx"]},
        "memory": {"total": 8 * GIB - 12345, "physical_mb": 8192},
        "disks": [
            {"name": "/dev/sda", "size": 100 * GIB, "serial": "BIG", "rotational": True},
            {"name": "/dev/sdb", "size": 20 * GIB, "serial": "SMALL", "rotational": False},
            {"name": "/dev/sdc", "size": 2 * GIB, "serial": "TINY", "rotational": False},
        ],
        "interfaces": [
            {"name": "eth0", "mac_address": "52:54:00:00:00:01", "has_carrier": True},
            {"name": "eth1", "mac_address": "52:54:00:00:00:02", "has_carrier": False},
        ],
        "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:00:00:02"},
        "system_vendor": {"manufacturer": "QEMU", "serial_number": "S-1"},
        "bmc_address": None,
    }


def test_a_good_inventory_gives_properties_with_the_smallest_root_disk() -> None:
    checked = inv.check(good())

    assert inv.properties(checked, hints=None) == {
        "cpus": 4, "cpu_arch": "x86_64", "memory_mb": 8192, "local_gb": 19,
    }  # fmt: skip
    assert inv.boot_mode(checked) == "uefi"
    assert inv.boot_mac(checked) == "52:54:00:00:00:02"


def test_root_device_hints_choose_the_disk_of_local_gb() -> None:
    checked = inv.check(good())

    assert inv.properties(checked, hints={"serial": "BIG"})["local_gb"] == 99
    assert "local_gb" not in inv.properties(checked, hints={"serial": "NONE"})


def test_an_absurd_architecture_does_not_become_cpu_arch() -> None:
    found = good()
    found["cpu"]["architecture"] = "x" * 1000

    assert "cpu_arch" not in inv.properties(inv.check(found), hints=None)


def test_a_ten_megabyte_inventory_is_refused() -> None:
    huge = good()
    huge["disks"][0]["model"] = "x" * (10 * 2**20)

    with pytest.raises(inv.InvalidInventory, match="more than the 1048576 accepted"):
        inv.check(huge)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.pop("cpu"), "'cpu' is missing"),
        (lambda i: i.update(disks="sda"), "'disks' is missing or not a list"),
        (lambda i: i["interfaces"][1].update(mac_address="not-a-mac"), "interface 1 has no valid"),
        (lambda i: i["disks"][0].update(size=-1), "disk 0 has no name or no size"),
        (lambda i: i["system_vendor"].update(serial_number="S\x1b[2J"), "control character"),
        (lambda i: i["disks"][2].update(model="a\x00b"), "control character"),
        (
            lambda i: i.update(
                interfaces=[{"mac_address": f"52:54:00:00:01:{n:02x}"} for n in range(65)]
            ),
            "more than 64 NICs",
        ),
    ],
)
def test_malformed_or_hostile_inventories_are_refused(change: Any, message: str) -> None:
    found = good()
    change(found)

    with pytest.raises(inv.InvalidInventory, match=message):
        inv.check(found)


def test_a_list_is_not_an_inventory() -> None:
    with pytest.raises(inv.InvalidInventory, match="not a JSON object"):
        inv.check([1, 2])


@pytest.mark.parametrize(
    ("address", "used"),
    [("127.0.0.1", None), ("::1", None), ("0.0.0.0", None), ("nonsense", None),
     ("192.0.2.10", "192.0.2.10")],
)  # fmt: skip
def test_a_bmc_address_on_loopback_is_not_used(address: str, used: str | None) -> None:
    found = good()
    found["bmc_address"] = address

    assert inv.bmc_address(inv.check(found)) == used


def test_the_boot_mode_capability_is_set_once() -> None:
    assert inv.with_capability("a:1,boot_mode:bios", "boot_mode", "uefi") == "a:1,boot_mode:uefi"
    assert inv.with_capability(None, "boot_mode", "bios") == "boot_mode:bios"
