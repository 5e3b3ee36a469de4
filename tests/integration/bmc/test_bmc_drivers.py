"""metalcast's ipmi and redfish drivers against the lab's virtual BMCs, with every
failure an operator meets: wrong credentials, an unreachable BMC, one that hangs, lost
packets, and one that accepts a power command and never carries it out.

Each failure must end within the call policy's bounds, with a message naming the
protocol, the BMC, the operation and the cause."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bmclab import PASSWORD, USERNAME, bmc_of, ipmitool, machine_of

from metalcast.drivers.base import DriverContext, NodeSnapshot
from metalcast.drivers.bmc_call import CallPolicy, NoAnswerInTime
from metalcast.drivers.ipmi import IPMIManagement, IPMIPower, IpmiSessions
from metalcast.drivers.redfish import (
    RedfishBIOS,
    RedfishManagement,
    RedfishPower,
    RedfishSessions,
)
from metalcast.errors import FatalDriverError, RetryableDriverError
from metalcast.lab.bmc.fleet import Fleet, ServedBmc
from metalcast.lab.machine import BootDevice, Power
from metalcast.states import PowerState, PowerTarget

POLICY = CallPolicy(timeout=3.0, attempts=3, backoff=0.1, poll_interval=0.1)
LOG = logging.getLogger("test")


def context(driver_info: dict[str, Any], *, boot_mode: str = "uefi") -> DriverContext:
    node = NodeSnapshot(
        uuid="00000000-0000-4000-8000-000000000001",
        name="n",
        driver="ipmi",
        provision_state="manageable",
        power_state=None,
        properties={"capabilities": f"boot_mode:{boot_mode}"},
        instance_info={},
        driver_internal_info={},
    )
    return DriverContext(node=node, driver_info=driver_info, logger=LOG)


def info(bmc: ServedBmc, password: str = PASSWORD) -> dict[str, Any]:
    return bmc.driver_info(username=USERNAME, password=password)


@pytest.fixture
def ipmi() -> Iterator[tuple[IPMIPower, IPMIManagement]]:
    pool = IpmiSessions(policy=POLICY)
    yield IPMIPower(pool), IPMIManagement(pool)
    pool.close()


@pytest.fixture
def redfish() -> Iterator[tuple[RedfishPower, RedfishManagement, RedfishBIOS]]:
    pool = RedfishSessions(policy=POLICY)
    yield RedfishPower(pool), RedfishManagement(pool), RedfishBIOS(pool)
    pool.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ------------------------------------------------------------------------ IPMI


def test_ipmi_power_and_boot_device_agree_with_ipmitool(
    fleet: Fleet, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    power, management = ipmi
    bmc = bmc_of(fleet, "ipmi", 0)
    ctx = context(info(bmc))
    power.set_power_state(ctx, PowerTarget.OFF, timeout=5)
    assert power.get_power_state(ctx) is PowerState.OFF
    power.set_power_state(ctx, PowerTarget.ON, timeout=5)
    assert ipmitool(bmc, "power", "status").stdout.strip() == "Chassis Power is on"
    boots = len(machine_of(bmc).boots)
    power.set_power_state(ctx, PowerTarget.REBOOT, timeout=5)
    assert len(machine_of(bmc).boots) == boots + 1
    management.set_boot_device(ctx, "pxe", persistent=True)
    assert "Force PXE" in ipmitool(bmc, "chassis", "bootparam", "get", "5").stdout
    ipmitool(bmc, "chassis", "bootdev", "disk")
    assert management.get_boot_device(ctx) == ("disk", False)
    assert machine_of(bmc).boot_override().device is BootDevice.DISK
    sensors = management.get_sensors_data(ctx)
    assert sensors["Temperature"]["CPU Temp"]["Sensor Reading"] == "45 °C"
    management.inject_nmi(ctx)
    assert machine_of(bmc).nmis == 1
    power.set_power_state(ctx, PowerTarget.SOFT_OFF, timeout=5)
    assert machine_of(bmc).power() is Power.OFF


def test_ipmi_wrong_password_is_a_clear_fatal_error(
    fleet: Fleet, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    bmc = bmc_of(fleet, "ipmi", 1)
    with pytest.raises(FatalDriverError) as err:
        ipmi[0].get_power_state(context(info(bmc, password="wrong")))
    assert str(err.value).startswith(f"IPMI get power state of BMC 127.0.0.1:{bmc.port} failed")
    assert "authentication rejected" in str(err.value)
    assert "wrong" not in str(err.value).replace("wrong Kg", "")


def test_ipmi_refused_login_is_an_authentication_error(
    fleet: Fleet, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    bmc = bmc_of(fleet, "ipmi", 1)
    machine_of(bmc).faults.refuse_login = True
    with pytest.raises(FatalDriverError, match="authentication rejected"):
        ipmi[0].get_power_state(context(info(bmc)))


def test_ipmi_unreachable_bmc_fails_within_the_deadline(
    ipmi: tuple[IPMIPower, IPMIManagement],
) -> None:
    port = free_udp_port()
    ctx = context({"ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_password": "x"})
    started = time.monotonic()
    with pytest.raises(NoAnswerInTime) as err:
        ipmi[0].get_power_state(ctx)
    assert time.monotonic() - started < POLICY.timeout + 2
    assert f"IPMI get power state of BMC 127.0.0.1:{port} failed: no answer" in str(err.value)
    assert "ipmi_address/ipmi_port" in str(err.value)


def test_ipmi_hanging_bmc_frees_the_caller_and_recovers(
    fleet: Fleet, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    power, _ = ipmi
    bmc = bmc_of(fleet, "ipmi", 2)
    ctx = context(info(bmc))
    assert power.get_power_state(ctx) in (PowerState.ON, PowerState.OFF)  # a live session
    machine_of(bmc).faults.hang = True
    started = time.monotonic()
    with pytest.raises(RetryableDriverError, match="no answer"):
        power.get_power_state(ctx)
    assert time.monotonic() - started < POLICY.timeout + 2
    machine_of(bmc).faults.clear()
    assert power.get_power_state(ctx) in (PowerState.ON, PowerState.OFF)


def test_ipmi_lost_packets_are_retried(fleet: Fleet) -> None:
    # pyghmi retransmits a lost packet after about a second, then backs off: with a
    # quarter of the packets lost, a call needs the default deadline, not the short one
    pool = IpmiSessions(policy=CallPolicy(timeout=20.0, poll_interval=0.1))
    power, management = IPMIPower(pool), IPMIManagement(pool)
    bmc = bmc_of(fleet, "ipmi", 0)
    ctx = context(info(bmc))
    # seeded: unseeded drops once lost enough packets in a row to exhaust pyghmi's
    # retransmissions (seen in a whole-suite run)
    machine_of(bmc).faults.reseed(20261206)
    machine_of(bmc).faults.drop_rate = 0.25
    try:
        for _ in range(3):
            power.set_power_state(ctx, PowerTarget.ON, timeout=20)
            management.set_boot_device(ctx, "pxe", persistent=False)
            power.set_power_state(ctx, PowerTarget.OFF, timeout=20)
    finally:
        pool.close()
    assert machine_of(bmc).power() is Power.OFF
    assert machine_of(bmc).boot_override().device is BootDevice.PXE


def test_ipmi_power_command_never_carried_out_is_reported(
    fleet: Fleet, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    power, _ = ipmi
    bmc = bmc_of(fleet, "ipmi", 1)
    ctx = context(info(bmc))
    power.set_power_state(ctx, PowerTarget.OFF, timeout=5)
    machine_of(bmc).faults.ignore_power = True
    with pytest.raises(FatalDriverError) as err:
        power.set_power_state(ctx, PowerTarget.ON, timeout=1)
    assert "accepted 'on' but the node did not reach 'power on' within 1 s" in str(err.value)
    assert f"IPMI power on of BMC 127.0.0.1:{bmc.port}" in str(err.value)


# --------------------------------------------------------------------- Redfish


def test_redfish_power_boot_and_bios(
    fleet: Fleet, redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS]
) -> None:
    power, management, bios = redfish
    bmc = bmc_of(fleet, "redfish", 0)
    ctx = context(info(bmc))
    power.set_power_state(ctx, PowerTarget.ON, timeout=5)
    assert machine_of(bmc).power() is Power.ON
    assert power.get_power_state(ctx) is PowerState.ON
    power.set_power_state(ctx, PowerTarget.SOFT_REBOOT, timeout=5)
    assert machine_of(bmc).power() is Power.ON
    management.set_boot_device(ctx, "pxe", persistent=False)
    assert management.get_boot_device(ctx) == ("pxe", False)
    override = machine_of(bmc).boot_override()
    assert override.device is BootDevice.PXE
    management.set_boot_mode(ctx, "bios")
    assert management.get_boot_mode(ctx) == "bios"
    assert set(management.get_supported_boot_modes(ctx)) == {"uefi", "bios"}
    assert bios.get_settings(ctx)["ProcTurboMode"] == "Enabled"


def test_redfish_wrong_password_is_a_clear_fatal_error(
    fleet: Fleet, redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS]
) -> None:
    bmc = bmc_of(fleet, "redfish", 1)
    with pytest.raises(FatalDriverError) as err:
        redfish[0].get_power_state(context(info(bmc, password="wrong")))
    text = str(err.value)
    assert text.startswith(f"Redfish get power state of BMC http://127.0.0.1:{bmc.port}")
    assert "authentication rejected (check redfish_username/redfish_password)" in text


def test_redfish_unreachable_bmc(
    redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = context({"redfish_address": f"http://127.0.0.1:{port}", "redfish_password": "x"})
    with pytest.raises(RetryableDriverError, match="cannot reach the BMC"):
        redfish[0].get_power_state(ctx)


def test_redfish_hanging_bmc_frees_the_caller(
    fleet: Fleet, redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS]
) -> None:
    bmc = bmc_of(fleet, "redfish", 2)
    machine_of(bmc).faults.hang = True
    started = time.monotonic()
    with pytest.raises(NoAnswerInTime, match="no answer from the BMC within 3 s"):
        redfish[0].get_power_state(context(info(bmc)))
    assert time.monotonic() - started < POLICY.timeout + 2


def test_redfish_dropped_requests_are_retried(
    fleet: Fleet, redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS]
) -> None:
    power, _, _ = redfish
    bmc = bmc_of(fleet, "redfish", 0)
    ctx = context(info(bmc))
    machine_of(bmc).faults.drop_next = 2
    power.set_power_state(ctx, PowerTarget.OFF, timeout=5)
    assert machine_of(bmc).power() is Power.OFF
    assert machine_of(bmc).faults.drop_next == 0


def test_redfish_power_command_never_carried_out_is_reported(
    fleet: Fleet, redfish: tuple[RedfishPower, RedfishManagement, RedfishBIOS]
) -> None:
    power, _, _ = redfish
    bmc = bmc_of(fleet, "redfish", 1)
    ctx = context(info(bmc))
    power.set_power_state(ctx, PowerTarget.OFF, timeout=5)
    machine_of(bmc).faults.ignore_power = True
    with pytest.raises(FatalDriverError, match="did not reach 'power on' within 1 s"):
        power.set_power_state(ctx, PowerTarget.ON, timeout=1)
