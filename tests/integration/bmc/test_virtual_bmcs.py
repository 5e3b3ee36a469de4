"""The lab's virtual BMCs, driven by clients nobody here wrote: Debian's ``ipmitool``
and the ``sushy`` Redfish library."""

from __future__ import annotations

import httpx
import pytest
import sushy
from bmclab import PASSWORD, USERNAME, bmc_of, ipmitool, machine_of
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc

from metalcast.lab.bmc.fleet import Fleet
from metalcast.lab.machine import BootDevice, BootMode, BootOverride, Power


def test_ipmitool_power_commands(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "ipmi", 0)
    machine = machine_of(bmc)
    ipmitool(bmc, "power", "off")
    assert ipmitool(bmc, "power", "status").stdout.strip() == "Chassis Power is off"
    assert "Up/On" in ipmitool(bmc, "power", "on").stdout
    assert machine.power() is Power.ON
    assert ipmitool(bmc, "power", "status").stdout.strip() == "Chassis Power is on"
    boots = len(machine.boots)
    ipmitool(bmc, "power", "cycle")
    ipmitool(bmc, "power", "reset")
    assert machine.power() is Power.ON
    assert len(machine.boots) == boots + 2  # a cycle and a reset each boot the machine
    assert "Soft" in ipmitool(bmc, "power", "soft").stdout
    assert machine.power() is Power.OFF
    assert ipmitool(bmc, "power", "status").stdout.strip() == "Chassis Power is off"


@pytest.mark.parametrize(
    ("device", "expected", "selector"),
    [("pxe", BootDevice.PXE, "Force PXE"), ("disk", BootDevice.DISK, "Force Boot from default")],
)
def test_ipmitool_boot_device(
    fleet: Fleet, device: str, expected: BootDevice, selector: str
) -> None:
    bmc = bmc_of(fleet, "ipmi", 1)
    machine = machine_of(bmc)
    assert f"Set Boot Device to {device}" in ipmitool(bmc, "chassis", "bootdev", device).stdout
    override = machine.boot_override()
    assert (override.device, override.persistent) == (expected, False)
    shown = ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    assert "Options apply to only next boot" in shown
    if device == "pxe":
        assert selector in shown
    ipmitool(bmc, "chassis", "bootdev", device, "options=persistent")
    assert machine.boot_override().persistent is True
    assert (
        "Options apply to all future boots"
        in ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    )


def test_ipmitool_reads_sensors_and_guid(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "ipmi", 2)
    ipmitool(bmc, "power", "on")
    sdr = ipmitool(bmc, "sdr").stdout
    assert "CPU Temp" in sdr and "45 degrees C" in sdr
    guid = ipmitool(bmc, "mc", "guid").stdout.lower()
    assert bmc.machine.uuid.replace("-", "") in guid.replace("-", "")


def test_ipmitool_with_a_wrong_password_cannot_log_in(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "ipmi", 0)
    result = ipmitool(bmc, "power", "status", password="wrong", check=False)
    assert result.returncode != 0
    assert "Unable to establish IPMI v2 / RMCP+ session" in result.stderr


def _sushy(fleet: Fleet, password: str = PASSWORD) -> sushy.Sushy:
    # HTTP basic auth: a root with a Redfish session logs out when it is garbage
    # collected, a blocking call that could run in the BMC's own server thread here
    bmc = bmc_of(fleet, "redfish", 0)
    auth = sushy_auth.BasicAuth(username=USERNAME, password=password)
    return sushy.Sushy(f"http://{bmc.address}:{bmc.port}", auth=auth)


def test_sushy_opens_and_ends_a_redfish_session(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 0)
    auth = sushy_auth.SessionAuth(username=USERNAME, password=PASSWORD)
    root = sushy.Sushy(f"http://{bmc.address}:{bmc.port}", auth=auth)
    token = auth.get_session_key()
    assert token
    assert root.get_system(bmc.system_id).name == bmc.machine.name
    url = f"http://{bmc.address}:{bmc.port}{bmc.system_id}"
    assert httpx.get(url, headers={"X-Auth-Token": token}).status_code == 200
    auth.close()  # DELETE of the session: the token no longer works afterwards
    root._auth = None
    assert httpx.get(url, headers={"X-Auth-Token": token}).status_code == 401


def test_sushy_lists_and_powers_systems(fleet: Fleet) -> None:
    root = _sushy(fleet)
    members = root.get_system_collection().get_members()
    assert [m.name for m in members] == [m.name for m in fleet.machines]
    bmc = bmc_of(fleet, "redfish", 0)
    system = root.get_system(bmc.system_id)
    machine = machine_of(bmc)
    system.reset_system(sushy.ResetType.FORCE_OFF)
    system.refresh()
    assert system.power_state is sushy.PowerState.OFF
    system.reset_system(sushy.ResetType.ON)
    system.refresh()
    assert system.power_state is sushy.PowerState.ON
    assert machine.power() is Power.ON
    system.reset_system(sushy.ResetType.GRACEFUL_SHUTDOWN)
    assert machine.power() is Power.OFF


def test_sushy_sets_boot_override_and_reads_bios(fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 1)
    system = _sushy(fleet).get_system(bmc.system_id)
    system.set_system_boot_options(
        target=sushy.BootSource.PXE,
        enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS,
        mode=sushy.BootSourceOverrideMode.UEFI,
    )
    assert machine_of(bmc).boot_override() == BootOverride(
        BootDevice.PXE, persistent=True, mode=BootMode.UEFI
    )
    system.refresh()
    assert system.boot.target is sushy.BootSource.PXE
    assert system.bios.attributes["ProcTurboMode"] == "Enabled"


def test_sushy_with_a_wrong_password_is_refused(fleet: Fleet) -> None:
    with pytest.raises(sushy_exc.AccessError):
        _sushy(fleet, password="wrong").get_system_collection()
