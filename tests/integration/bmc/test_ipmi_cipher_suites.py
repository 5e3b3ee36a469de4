"""``ipmi_cipher_suite`` against BMCs that do not speak every suite.

pyghmi's own BMC server (``pyghmi.ipmi.bmc.Bmc`` with its stock server session)
answers an RMCP+ Open Session Request proposing suite 17 with the algorithms of
suite 3, as some old BMCs do; ``ipmitool -C 3`` and Ironic with
``ipmi_cipher_suite=3`` work with it.  metalcast must propose suite 3 from its first
message when told to, and, when not told, name the mismatch at once instead of
waiting for its deadline (issue 12, item 2).  The lab's BMCs offering one suite
refuse the other, as a BMC should: a pinned suite is the only one proposed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bmclab import PASSWORD, USERNAME, baremetal, enroll, ipmitool, settled
from pyghmi.ipmi.private import serversession

from metalcast.drivers.base import DriverContext, NodeSnapshot
from metalcast.drivers.bmc_call import CallPolicy, NoAnswerInTime
from metalcast.drivers.ipmi import IPMIManagement, IPMIPower, IpmiSessions
from metalcast.errors import FatalDriverError, RetryableDriverError
from metalcast.lab.bmc.fleet import ServedBmc
from metalcast.lab.bmc.ipmi import IpmiBmc
from metalcast.lab.machine import BootDevice, Power, SimulatedMachine
from metalcast.states import PowerState, PowerTarget

#: a login that waited for its deadline would fail with NoAnswerInTime, not succeed
POLICY = CallPolicy(timeout=3.0, attempts=3, backoff=0.1, poll_interval=0.1)
LOG = logging.getLogger("test")


class PyghmiLoginBmc(IpmiBmc):
    """A lab BMC whose logins are pyghmi's own: its stock ``IpmiServer`` answers the
    Open Session Request and its stock ``ServerSession`` the RAKP exchange, with the
    algorithms of suite 3 whatever was proposed (the lab's own session negotiates)."""

    def handle_sessionless(self, data: bytes, sockaddr: Any) -> None:
        super(IpmiBmc, self).sessionless_data(data, sockaddr)

    def send_cipher_suites(self, *args: Any) -> None:
        super(IpmiBmc, self).send_cipher_suites(*args)  # lists suite 3 only


class _AlgorithmlessSession(serversession.ServerSession):  # type: ignore[misc]
    """pyghmi's server session, its Open Session Response cut after the session IDs."""

    def create_open_session_response(self, request: bytearray) -> bytearray:
        return bytearray(super().create_open_session_response(request)[:12])


class AlgorithmlessBmc(PyghmiLoginBmc):
    """Accepts any proposal without saying which algorithms it chose, then signs its
    RAKP 2 message with SHA-1 whatever was proposed: pyghmi cannot read that answer."""

    def handle_sessionless(self, data: bytes, sockaddr: Any) -> None:
        packet = bytearray(data)
        if len(packet) > 16 and packet[4] == 0x06 and packet[5] & 0x3F == 0x10:
            _AlgorithmlessSession(
                self.authdata, self.kg, sockaddr, self.serversocket, packet[16:], self.uuid, self
            )
            return
        super().handle_sessionless(data, sockaddr)


@pytest.fixture(scope="module")
def _bmc() -> Iterator[ServedBmc]:
    machine = SimulatedMachine("suite3")
    bmc = PyghmiLoginBmc(machine, username=USERNAME, password=PASSWORD)
    try:
        yield ServedBmc(machine, "ipmi", bmc.address, bmc.port)
    finally:
        bmc.close()


@pytest.fixture
def bmc(_bmc: ServedBmc) -> Iterator[ServedBmc]:
    yield _bmc
    assert isinstance(_bmc.machine, SimulatedMachine)
    _bmc.machine.faults.clear()


@pytest.fixture(scope="module")
def offering() -> Iterator[dict[int, ServedBmc]]:
    """Lab BMCs offering one cipher suite each, by suite."""
    served: dict[int, ServedBmc] = {}
    bmcs: list[IpmiBmc] = []
    try:
        for suite in (3, 17):
            machine = SimulatedMachine(f"suite{suite}-only")
            bmc = IpmiBmc(machine, username=USERNAME, password=PASSWORD, suites=(suite,))
            bmcs.append(bmc)
            served[suite] = ServedBmc(machine, "ipmi", bmc.address, bmc.port)
        yield served
    finally:
        for bmc in bmcs:
            bmc.close()


@pytest.fixture
def ipmi() -> Iterator[tuple[IPMIPower, IPMIManagement]]:
    pool = IpmiSessions(policy=POLICY)
    yield IPMIPower(pool), IPMIManagement(pool)
    pool.close()


def context(bmc: ServedBmc, **settings: Any) -> DriverContext:
    node = NodeSnapshot(
        uuid="00000000-0000-4000-8000-000000000003",
        name="suite3",
        driver="ipmi",
        provision_state="manageable",
        power_state=None,
        properties={"capabilities": "boot_mode:uefi"},
        instance_info={},
        driver_internal_info={},
    )
    info = {**bmc.driver_info(username=USERNAME, password=PASSWORD), **settings}
    return DriverContext(node=node, driver_info=info, logger=LOG)


def test_the_bmc_answers_ipmitool_with_suite_3(bmc: ServedBmc) -> None:
    assert ipmitool(bmc, "-C", "3", "power", "status").stdout.startswith("Chassis Power is")


def test_ipmi_cipher_suite_3_logs_in_and_drives_the_node(
    bmc: ServedBmc, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    power, management = ipmi
    ctx = context(bmc, ipmi_cipher_suite="3")  # as `baremetal node set` writes it

    power.set_power_state(ctx, PowerTarget.OFF, timeout=5)
    assert power.get_power_state(ctx) is PowerState.OFF
    power.set_power_state(ctx, PowerTarget.ON, timeout=5)
    assert bmc.machine.power() is Power.ON
    management.set_boot_device(ctx, "pxe", persistent=False)
    assert bmc.machine.boot_override().device is BootDevice.PXE


@pytest.mark.parametrize("settings", [{}, {"ipmi_cipher_suite": 17}])
def test_a_suite_3_answer_to_a_suite_17_proposal_is_named_not_waited_for(
    bmc: ServedBmc, ipmi: tuple[IPMIPower, IPMIManagement], settings: dict[str, Any]
) -> None:
    with pytest.raises(FatalDriverError) as err:
        ipmi[0].get_power_state(context(bmc, **settings))

    assert not isinstance(err.value, NoAnswerInTime)
    assert str(err.value) == (
        f"IPMI get power state of BMC 127.0.0.1:{bmc.port} failed: the BMC answered a "
        "proposal of cipher suite 17 with cipher suite 3; set ipmi_cipher_suite=3 to "
        "log in with it"
    )


def test_a_wrong_password_with_suite_3_is_an_authentication_error(
    bmc: ServedBmc, ipmi: tuple[IPMIPower, IPMIManagement]
) -> None:
    ctx = context(bmc, ipmi_cipher_suite=3, ipmi_password="not-the-password")

    with pytest.raises(FatalDriverError, match="authentication rejected") as err:
        ipmi[0].get_power_state(ctx)

    assert not isinstance(err.value, NoAnswerInTime)


@pytest.mark.parametrize(("offered", "pinned"), [(3, 17), (17, 3)])
def test_a_pinned_suite_the_bmc_refuses_is_the_only_one_proposed(
    offering: dict[int, ServedBmc],
    ipmi: tuple[IPMIPower, IPMIManagement],
    offered: int,
    pinned: int,
) -> None:
    bmc = offering[offered]
    refused = ipmitool(bmc, "-C", str(pinned), "power", "status", check=False)
    assert refused.returncode != 0 and "no matching cipher suite" in refused.stderr

    with pytest.raises(FatalDriverError) as err:
        ipmi[0].get_power_state(context(bmc, ipmi_cipher_suite=pinned))

    assert str(err.value).endswith(
        f"failed: the BMC refused cipher suite {pinned} (No Cipher suite match with "
        "proposed security algorithms); set ipmi_cipher_suite to a suite the BMC offers "
        "(metalcast speaks 3, 17), or leave it unset"
    )


@pytest.mark.parametrize("offered", [3, 17])
def test_without_a_pinned_suite_the_bmc_gets_17_or_else_3(
    offering: dict[int, ServedBmc], ipmi: tuple[IPMIPower, IPMIManagement], offered: int
) -> None:
    power, _ = ipmi
    ctx = context(offering[offered])

    power.set_power_state(ctx, PowerTarget.ON, timeout=5)

    assert power.get_power_state(ctx) is PowerState.ON


def test_a_login_answer_pyghmi_cannot_read_is_reported_not_waited_for(
    ipmi: tuple[IPMIPower, IPMIManagement],
) -> None:
    machine = SimulatedMachine("algorithmless")
    bmc = AlgorithmlessBmc(machine, username=USERNAME, password=PASSWORD)
    try:
        served = ServedBmc(machine, "ipmi", bmc.address, bmc.port)
        with pytest.raises(RetryableDriverError) as err:
            ipmi[0].get_power_state(context(served))
    finally:
        bmc.close()

    assert not isinstance(err.value, NoAnswerInTime)
    assert "the BMC's answer during login with cipher suite 17 could not be read" in str(err.value)
    assert "set ipmi_cipher_suite to the suite it uses" in str(err.value)


def test_ironic_clients_set_ipmi_cipher_suite_3_and_the_node_is_driven(
    bmc: ServedBmc, start_metalcast_server: Callable[..., Any]
) -> None:
    info = bmc.driver_info(username=USERNAME, password=PASSWORD)
    env = {"METALCAST_CONDUCTOR__BMC_CALL_TIMEOUT": "2"}
    with start_metalcast_server(env=env) as server:
        url = server.url
        enroll(url, "old-bmc", "ipmi", info)
        baremetal(url, "node", "manage", "old-bmc", "--wait", "60", check=False)
        shown = settled(url, "old-bmc")
        assert shown["provision_state"] == "enroll"
        assert shown["last_error"].endswith(
            "the BMC answered a proposal of cipher suite 17 with cipher suite 3; "
            "set ipmi_cipher_suite=3 to log in with it"
        )

        baremetal(url, "node", "set", "old-bmc", "--driver-info", "ipmi_cipher_suite=2")
        refused = baremetal(url, "node", "boot", "device", "set", "old-bmc", "pxe", check=False)
        assert "cipher suite 2 is not supported; supported cipher suites: 3, 17" in refused.stderr
        assert "(HTTP 400)" in refused.stderr

        baremetal(url, "node", "set", "old-bmc", "--driver-info", "ipmi_cipher_suite=3")
        baremetal(url, "node", "manage", "old-bmc", "--wait", "60")
        baremetal(url, "node", "power", "on", "old-bmc")
        assert bmc.machine.power() is Power.ON
        assert settled(url, "old-bmc")["power_state"] == "power on"
