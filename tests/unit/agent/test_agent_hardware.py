"""get_inventory against a fake /sys and /proc."""

from __future__ import annotations

import os

from agent_machine import MIB, FakeMachine, write

from metalcast_agent.hardware import collect_inventory, interface_ipv4, list_disks, mac_addresses

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
"""


def build(machine: FakeMachine) -> None:
    machine.add_disk("vda", 20 * 1024 * MIB, serial="VIRTIO-1", **{"device/vendor": "0x1af4"})
    machine.add_disk(
        "sda",
        1024 * 1024 * MIB,
        **{
            "device/model": "ST1000NM0033",
            "device/vendor": "ATA     ",
            "device/wwid": "naa.5000C500A1B2C3D4",
            "queue/rotational": "1",
        },
    )
    (machine.env.sys_root / "block" / "sda" / "device" / "vpd_pg80").write_bytes(
        b"\x00\x80\x00\x0c  Z1W2X3Y4\x00\x00"
    )
    machine.add_disk(
        "nvme0n1", 512 * 1024 * MIB, wwid="eui.0025388b71b0f3a1", **{"device/serial": "S4EUNX0N"}
    )
    machine.add_disk("loop0", 100 * MIB)
    machine.add_disk("sr0", 600 * MIB)
    machine.add_disk("vdz", 0)
    machine.add_disk("vdr", 8 * MIB, ro="1")
    machine.add_nic("lo", "00:00:00:00:00:00", kind="772")
    machine.add_nic("mcfake0", "52:54:00:AA:BB:01")
    machine.add_nic("mcfake1", "52:54:00:aa:bb:02", carrier=False)
    write(machine.env.proc_root / "cpuinfo", CPUINFO)
    write(machine.env.proc_root / "meminfo", "MemTotal:        4028880 kB\nMemFree: 1 kB\n")
    dmi = machine.env.sys_root / "class" / "dmi" / "id"
    write(dmi / "sys_vendor", "QEMU\n")
    write(dmi / "product_name", "Standard PC (Q35 + ICH9, 2009)\n")
    write(dmi / "product_uuid", "1be26c0b-03f2-4d2e-ae87-c02d7f33c123\n")
    (machine.env.sys_root / "firmware" / "efi").mkdir(parents=True)


def test_inventory_reports_the_machine(machine: FakeMachine) -> None:
    build(machine)

    inventory = collect_inventory(machine.env)

    assert inventory == {
        "cpu": {
            "count": 2,
            "model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
            "architecture": os.uname().machine,
        },
        "memory": {"total_bytes": 4028880 * 1024},
        "disks": [
            {
                "name": "/dev/nvme0n1",
                "size": 512 * 1024 * MIB,
                "model": None,
                "serial": "S4EUNX0N",
                "wwn": "eui.0025388b71b0f3a1",
                "vendor": None,
                "rotational": False,
            },
            {
                "name": "/dev/sda",
                "size": 1024 * 1024 * MIB,
                "model": "ST1000NM0033",
                "serial": "Z1W2X3Y4",
                "wwn": "0x5000c500a1b2c3d4",
                "vendor": "ATA",
                "rotational": True,
            },
            {
                "name": "/dev/vda",
                "size": 20 * 1024 * MIB,
                "model": None,
                "serial": "VIRTIO-1",
                "wwn": None,
                "vendor": "0x1af4",
                "rotational": False,
            },
        ],
        "interfaces": [
            {"name": "mcfake0", "mac": "52:54:00:aa:bb:01", "ipv4": None, "has_carrier": True},
            {"name": "mcfake1", "mac": "52:54:00:aa:bb:02", "ipv4": None, "has_carrier": False},
        ],
        "boot_mode": "uefi",
        "system": {
            "vendor": "QEMU",
            "product": "Standard PC (Q35 + ICH9, 2009)",
            "serial": None,
            "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
        },
    }


def test_a_bare_machine_is_bios_with_nothing(machine: FakeMachine) -> None:
    inventory = collect_inventory(machine.env)

    assert inventory["boot_mode"] == "bios"
    assert inventory["disks"] == []
    assert inventory["interfaces"] == []
    assert inventory["memory"] == {"total_bytes": None}


def test_lookup_macs_put_bootif_first_without_duplicates(machine: FakeMachine) -> None:
    build(machine)

    assert mac_addresses(machine.env, bootif="52:54:00:aa:bb:02") == [
        "52:54:00:aa:bb:02",
        "52:54:00:aa:bb:01",
    ]
    assert mac_addresses(machine.env) == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]


def test_ipv4_of_a_real_interface() -> None:
    assert interface_ipv4("lo") == "127.0.0.1"
    assert interface_ipv4("mcnosuch0") is None


def test_a_missing_sys_tree_means_no_disks(machine: FakeMachine) -> None:
    (machine.env.sys_root / "block").rmdir()

    assert list_disks(machine.env) == []
