"""get_inventory against a fake /sys and /proc."""

from __future__ import annotations

import os

import pytest
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


def test_inventory_reports_the_machine_in_ironics_format(machine: FakeMachine) -> None:
    build(machine)
    write(machine.env.proc_root / "cmdline", "console=ttyS0 BOOTIF=01-52-54-00-aa-bb-02\n")
    write(machine.env.sys_root / "class" / "net" / "mcfake0" / "speed", "1000\n")
    write(machine.env.sys_root / "class" / "net" / "mcfake1" / "speed", "-1\n")
    memory = machine.env.sys_root / "devices" / "system" / "memory"
    write(memory / "block_size_bytes", "8000000\n")  # 128 MiB, in hex
    for index in range(33):  # 32 online blocks: 4 GiB installed
        write(memory / f"memory{index}" / "online", "1\n" if index < 32 else "0\n")
    by_path = machine.env.dev_root / "disk" / "by-path"
    by_path.mkdir(parents=True)
    (by_path / "pci-0000:00:1f.2-ata-1").symlink_to("../../sda")
    (by_path / "pci-0000:00:1f.2-ata-1-part1").symlink_to("../../sda1")
    dmi = machine.env.sys_root / "class" / "dmi" / "id"
    write(dmi / "product_serial", "LAB-SERIAL-7\n")

    inventory = collect_inventory(machine.env)

    assert inventory["cpu"] == {
        "count": 2,
        "model_name": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        "architecture": os.uname().machine,
        "flags": inventory["cpu"]["flags"],
        "frequency": inventory["cpu"]["frequency"],
    }
    assert inventory["memory"] == {"total": 4028880 * 1024, "physical_mb": 4096}
    assert inventory["disks"] == [
        {
            "name": "/dev/nvme0n1",
            "size": 512 * 1024 * MIB,
            "model": None,
            "serial": "S4EUNX0N",
            "wwn": "eui.0025388b71b0f3a1",
            "vendor": None,
            "rotational": False,
            "by_path": None,
        },
        {
            "name": "/dev/sda",
            "size": 1024 * 1024 * MIB,
            "model": "ST1000NM0033",
            "serial": "Z1W2X3Y4",
            "wwn": "0x5000c500a1b2c3d4",
            "vendor": "ATA",
            "rotational": True,
            "by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
        },
        {
            "name": "/dev/vda",
            "size": 20 * 1024 * MIB,
            "model": None,
            "serial": "VIRTIO-1",
            "wwn": None,
            "vendor": "0x1af4",
            "rotational": False,
            "by_path": None,
        },
    ]
    nic = {"ipv4_address": None, "ipv6_address": None, "lldp": None}
    assert inventory["interfaces"] == [
        {"name": "mcfake0", "mac_address": "52:54:00:aa:bb:01", "has_carrier": True,
         "speed_mbps": 1000, **nic},
        {"name": "mcfake1", "mac_address": "52:54:00:aa:bb:02", "has_carrier": False,
         "speed_mbps": None, **nic},
    ]  # fmt: skip
    assert inventory["boot"] == {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:aa:bb:02"}
    assert inventory["system_vendor"] == {
        "manufacturer": "QEMU",
        "product_name": "Standard PC (Q35 + ICH9, 2009)",
        "serial_number": "LAB-SERIAL-7",
        "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
        "firmware": {"vendor": None, "version": None, "build_date": None},
    }
    assert inventory["bmc_address"] is None  # no ipmitool in the ramdisk


def test_a_bare_machine_is_bios_with_nothing(machine: FakeMachine) -> None:
    inventory = collect_inventory(machine.env)

    assert inventory["boot"] == {"current_boot_mode": "bios", "pxe_interface": None}
    assert inventory["disks"] == []
    assert inventory["interfaces"] == []
    assert inventory["memory"] == {"total": None, "physical_mb": None}


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


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [
        ("vdb", "pci0000:00/0000:00:05.0/virtio2/block", "virtio-pci-0000:00:05.0"),
        ("nvme0n1", "pci0000:00/0000:00:06.0/nvme/nvme0", "pci-0000:00:06.0-nvme-1"),
        ("sdb", "pci0000:00/0000:00:07.0/virtio3/host2/target2:0:1/2:0:1:0/block",
         "pci-0000:00:07.0-scsi-2:0:1:0"),
        ("sda", "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block", None),
    ],
)  # fmt: skip
def test_without_udev_by_path_is_derived_from_sysfs(
    machine: FakeMachine, name: str, device: str, expected: str | None
) -> None:
    """The ramdisk runs no udev: the name udev's path_id would give, from sysfs."""
    real = machine.env.sys_root / "devices" / device / name
    write(real / "size", f"{8 * 1024 * 2}\n")  # 8 MiB in sectors
    (machine.env.sys_root / "block" / name).symlink_to(real)

    disks = collect_inventory(machine.env)["disks"]

    assert [(d["name"], d["by_path"]) for d in disks] == [
        (f"/dev/{name}", f"/dev/disk/by-path/{expected}" if expected else None)
    ]
