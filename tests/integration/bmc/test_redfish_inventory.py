"""Out-of-band inspection's view of a lab machine: sushy reads the hardware the
virtual Redfish BMC describes (SMBIOS identity, processors, memory, disks, NICs)."""

from __future__ import annotations

import httpx
import sushy
from bmclab import PASSWORD, USERNAME, bmc_of
from sushy import auth as sushy_auth

from metalcast.lab.bmc.fleet import Fleet
from metalcast.lab.bmc.redfish_inventory import GIB


def _system(fleet: Fleet, index: int) -> sushy.resources.system.system.System:
    bmc = bmc_of(fleet, "redfish", index)
    auth = sushy_auth.BasicAuth(username=USERNAME, password=PASSWORD)
    root = sushy.Sushy(f"http://{bmc.address}:{bmc.port}", auth=auth)
    return root.get_system(bmc.system_id)


def test_sushy_reads_the_smbios_identity(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 1)
    hardware = bmc.machine.hardware
    system = _system(fleet, 1)
    assert (system.manufacturer, system.model) == (hardware.manufacturer, hardware.product)
    assert system.serial_number == hardware.serial
    serials = {bmc.machine.hardware.serial for bmc in fleet.bmcs}
    assert len(serials) == len(fleet.machines)  # one each


def test_sushy_reads_processors_and_memory(fleet: Fleet) -> None:
    hardware = bmc_of(fleet, "redfish", 0).machine.hardware
    system = _system(fleet, 0)
    summary = system.processors.summary
    assert summary.count == hardware.cpus
    assert summary.architecture is sushy.ProcessorArchitecture.X86
    cpu = system.processors.get_members()[0]
    assert cpu.instruction_set is sushy.InstructionSet.X86_64
    assert system.memory_summary.size_gib == hardware.memory_mb / 1024


def test_sushy_reads_both_disks(fleet: Fleet) -> None:
    hardware = bmc_of(fleet, "redfish", 0).machine.hardware
    system = _system(fleet, 0)
    sizes = sorted(disk.size_gb * GIB for disk in hardware.disks)
    assert len(sizes) == 2 and sizes[0] != sizes[1]
    assert sorted(system.simple_storage.disks_sizes_bytes) == sizes
    storage = system.storage.get_members()[0]
    drives = storage.drives
    assert [d.serial_number for d in drives] == [disk.serial for disk in hardware.disks]
    assert sorted(d.capacity_bytes for d in drives) == sizes


def test_sushy_reads_both_nics(fleet: Fleet) -> None:
    hardware = bmc_of(fleet, "redfish", 2).machine.hardware
    system = _system(fleet, 2)
    macs = {nic.mac_address.lower() for nic in system.ethernet_interfaces.get_members()}
    assert macs == {mac.lower() for mac in hardware.nics}
    assert len(macs) == 2


def test_unknown_hardware_resources_are_404_and_need_auth(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 0)
    base = f"http://{bmc.address}:{bmc.port}{bmc.system_id}"
    auth = (USERNAME, PASSWORD)
    assert httpx.get(f"{base}/Processors/CPU9", auth=auth).status_code == 404
    assert httpx.get(f"{base}/NoSuchThing", auth=auth).status_code == 404
    assert httpx.get(f"{base}/Processors").status_code == 401
    assert httpx.get(f"{base}/Processors", auth=auth).status_code == 200
