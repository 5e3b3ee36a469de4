"""The ``redfish`` firmware interface through real sushy against the lab's virtual
Redfish BMC on loopback: listing components, updates through SimpleUpdate that the BMC
fetches itself, and every refusal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from firmware_images import PASSWORD as IMAGE_PASSWORD
from firmware_images import ImageServer, image, serving

from metalcast.drivers.base import DriverContext, NodeSnapshot, StepProgress
from metalcast.drivers.bmc_call import CallPolicy
from metalcast.drivers.redfish.client import RedfishSessions
from metalcast.drivers.redfish.firmware import RedfishFirmware
from metalcast.errors import FatalDriverError, InvalidInput
from metalcast.lab.bmc.fleet import simulated_machines
from metalcast.lab.bmc.redfish import RedfishBmc

USER, PASSWORD = "admin", "lab-pass-1"
POLICY = CallPolicy(timeout=5.0, attempts=2, backoff=0.1, poll_interval=0.05)


@pytest.fixture(scope="module")
def bmc() -> Iterator[RedfishBmc]:
    served = RedfishBmc(simulated_machines(2, prefix="fw"), username=USER, password=PASSWORD)
    served.firmware.flash_seconds = 0.1
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with serving() as server:
        yield server


@pytest.fixture
def firmware() -> Iterator[RedfishFirmware]:
    pool = RedfishSessions(policy=POLICY)
    yield RedfishFirmware(pool)
    pool.close()


def ctx(
    bmc: RedfishBmc, args: dict[str, Any] | None = None, *, machine: int = 0
) -> tuple[DriverContext, list[StepProgress]]:
    seen: list[StepProgress] = []
    node = NodeSnapshot(
        uuid="00000000-0000-4000-8000-00000000f1f1",
        name="fw",
        driver="redfish",
        provision_state="cleaning",
        power_state=None,
        properties={},
        instance_info={},
        driver_internal_info={},
    )
    info = {
        "redfish_address": bmc.url,
        "redfish_system_id": bmc.system_path(bmc.machines[machine]),
        "redfish_username": USER,
        "redfish_password": PASSWORD,
    }
    context = DriverContext(
        node=node,
        driver_info=MappingProxyType(info),
        logger=logging.getLogger("test.firmware"),
        args=MappingProxyType(args or {}),
        progress=seen.append,
    )
    return context, seen


def versions(firmware: RedfishFirmware, context: DriverContext) -> dict[str, str | None]:
    return {c.component: c.current_version for c in firmware.get_components(context)}


def test_components_are_the_bmc_the_bios_and_the_systems_own_others(
    bmc: RedfishBmc, firmware: RedfishFirmware
) -> None:
    context, _ = ctx(bmc, machine=1)
    found = firmware.get_components(context)
    assert {c.component: c.current_version for c in found} == {
        "bmc": "1.00.0",
        "bios": "1.0.0",
        "NIC-fw-1": "14.2.1",
    }
    assert {c.vendor for c in found} == {"metalcast lab"}


def test_update_is_fetched_by_the_bmc_and_changes_the_version(
    bmc: RedfishBmc, images: ImageServer, firmware: RedfishFirmware
) -> None:
    images.files["/bios-2.1.0.bin"] = image("2.1.0", size=300_000)
    url = images.url("/bios-2.1.0.bin")
    settings = [{"component": "bios", "url": url}]
    context, progress = ctx(bmc, {"settings": settings})
    outcome = firmware.update(context)
    assert outcome.firmware is not None
    before = {c.component: c.current_version for c in outcome.firmware.before}
    after = {c.component: c.current_version for c in outcome.firmware.after}
    assert before["bios"] == "1.0.0"
    assert after["bios"] == "2.1.0"
    assert after["bmc"] == before["bmc"]
    assert outcome.firmware.updated == ("bios",)
    # the BMC fetched the image, with the credentials the URL carries
    assert bmc.firmware.fetched[-1] == url
    assert images.requests[-1] == "/bios-2.1.0.bin"
    # progress was reported while the BMC worked, and ended complete
    assert progress[-1] == StepProgress("firmware.update", "bios", 100, "Completed")
    assert [p.percent for p in progress] == sorted(p.percent or 0 for p in progress)
    # the other machine's BIOS is untouched
    assert versions(firmware, ctx(bmc, machine=1)[0])["bios"] == "1.0.0"


def test_bmc_and_nic_update_in_order(
    bmc: RedfishBmc, images: ImageServer, firmware: RedfishFirmware
) -> None:
    images.files["/bmc.bin"] = image("1.10.0")
    images.files["/nic.bin"] = image("15.0.0")
    settings = [
        {"component": "bmc", "url": images.url("/bmc.bin")},
        {"component": "NIC-fw-0", "url": images.url("/nic.bin"), "wait": 1},
    ]
    context, _ = ctx(bmc, {"settings": settings})
    firmware.update(context)
    found = versions(firmware, context)
    assert found["bmc"] == "1.10.0"
    assert found["NIC-fw-0"] == "15.0.0"


def test_unknown_component_is_refused_before_anything_is_fetched(
    bmc: RedfishBmc, images: ImageServer, firmware: RedfishFirmware
) -> None:
    fetched = len(bmc.firmware.fetched)
    settings = [{"component": "raid-controller", "url": images.url("/bmc.bin")}]
    with pytest.raises(InvalidInput) as err:
        firmware.update(ctx(bmc, {"settings": settings})[0])
    assert "no firmware component(s) raid-controller" in err.value.message
    assert "its components: NIC-fw-0, bios, bmc." in err.value.message
    assert len(bmc.firmware.fetched) == fetched


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the image is empty"),
        (image(None), "no METALCAST_FIRMWARE_VERSION"),
    ],
)
def test_a_bad_image_fails_the_update_and_keeps_the_version(
    bmc: RedfishBmc, images: ImageServer, firmware: RedfishFirmware, content: bytes, said: str
) -> None:
    images.files["/bad.bin"] = content
    context, _ = ctx(bmc, {"settings": [{"component": "bios", "url": images.url("/bad.bin")}]})
    before = versions(firmware, context)["bios"]
    with pytest.raises(FatalDriverError) as err:
        firmware.update(context)
    message = err.value.message
    assert said in message
    assert "firmware update of bios from" in message
    assert IMAGE_PASSWORD not in message
    assert "fwuser:******@" in message
    assert versions(firmware, context)["bios"] == before


def test_a_url_the_image_server_refuses_fails_clearly(
    bmc: RedfishBmc, images: ImageServer, firmware: RedfishFirmware
) -> None:
    images.files["/bmc.bin"] = image("9.9.9")
    url = images.url("/bmc.bin", credentials=False)
    context, _ = ctx(bmc, {"settings": [{"component": "bmc", "url": url}]})
    with pytest.raises(FatalDriverError, match="the image server answered HTTP 401"):
        firmware.update(context)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({}, 'needs "settings"'),
        ({"settings": []}, 'needs "settings"'),
        ({"settings": [{"component": "bios"}]}, "'url' must be an http or https URL"),
        (
            {"settings": [{"component": "bios", "url": "ftp://u:Sekrit-9@h/x.bin"}]},
            "'url' must be an http or https URL",
        ),
        (
            {"settings": [{"component": "bios", "url": "file:///etc/shadow"}]},
            "'url' must be an http or https URL",
        ),
        ({"settings": [{"url": "http://h/x"}]}, "needs a 'component'"),
        (
            {"settings": [{"component": "bios", "url": "http://h/x", "wait": "soon"}]},
            "'wait' must be whole seconds",
        ),
        (
            {"settings": [{"component": "bios", "url": "http://h/x", "checksum": "ab"}]},
            "unknown key(s) checksum",
        ),
        ({"settings": "bios"}, 'needs "settings"'),
        ({"settings": [], "force": True}, "takes only 'settings'"),
    ],
)
def test_malformed_settings_are_refused_up_front(
    firmware: RedfishFirmware, args: dict[str, Any], said: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        firmware.check_step_args("update", args)
    assert said in err.value.message
    assert "Sekrit-9" not in err.value.message
