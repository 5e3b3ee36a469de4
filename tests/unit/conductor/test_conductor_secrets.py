"""The conductor stores secrets sealed and decrypts them only for the driver call
that needs them: rescue passwords, step arguments, nested and non-string BMC
credentials; nothing it records (history, last_error) holds one."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from conductor_env import ALICE, Env

from metalcast.calls import ChangeProvisionState, CreateNode, ProvisionRequest
from metalcast.conductor.service import ConductorService
from metalcast.drivers.base import DriverContext, StepResult
from metalcast.drivers.fake import FakeRescue, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import FatalDriverError
from metalcast.secrecy import is_sealed, shadow

RESCUE_PASSWORD = "Rescue-Pass-5f6e7d"
BMC_PASSWORD = 123498765432


class WitnessRescue(FakeRescue):
    """A rescue interface that records what it was given, then fails saying it."""

    name = "witness"
    seen: ClassVar[list[dict[str, Any]]] = []

    def rescue(self, ctx: DriverContext) -> StepResult:
        WitnessRescue.seen.append(
            {"instance_info": dict(ctx.node.instance_info), "driver_info": dict(ctx.driver_info)}
        )
        hashed = ctx.node.instance_info["hashed_rescue_password"]
        raise FatalDriverError(f"the ramdisk refused hash {hashed}", operation="rescue")


def _service(env: Env) -> ConductorService:
    hw = dataclasses.replace(
        FAKE_HARDWARE, supported={**FAKE_HARDWARE.supported, "rescue": (WitnessRescue,)}
    )
    registry = DriverRegistry([hw], factories=fake_factories(env.bmc))
    return env.make(registry=registry, hostname="conductor-2")


def test_rescue_decrypts_for_the_driver_only_and_records_no_secret(env: Env) -> None:
    WitnessRescue.seen.clear()
    service = _service(env)
    driver_info = {"bmc": {"ipmi_password": BMC_PASSWORD}, "ipmi_username": "admin"}
    node = service.execute(
        CreateNode(
            {"driver": "fake-hardware", "provision_state": "available", "driver_info": driver_info}
        ),
        context=ALICE,
    )
    service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    assert env.wait_settled(node.id).provision_state == "active"
    request = ProvisionRequest("rescue", rescue_password=RESCUE_PASSWORD)
    service.execute(ChangeProvisionState(node.id, request), context=ALICE)
    done = env.wait_settled(node.id)
    assert done.provision_state == "rescue failed"
    (seen,) = WitnessRescue.seen
    # the driver gets the password's SHA-512 crypt hash, never the password
    hashed = seen["instance_info"]["hashed_rescue_password"]
    assert shadow.verify(RESCUE_PASSWORD, hashed)
    assert RESCUE_PASSWORD not in repr(seen["instance_info"])
    assert seen["driver_info"] == driver_info  # nested, an int stays an int
    # the rescue failed: the hash is gone with it
    assert "hashed_rescue_password" not in done.instance_info
    assert "rescue_password" not in done.instance_info
    assert is_sealed(done.driver_info["bmc"]["ipmi_password"])
    recorded = " ".join([done.last_error or "", *(h.event for h in env.history(node.id))])
    assert "the ramdisk refused hash ******" in recorded
    assert hashed not in recorded
    assert RESCUE_PASSWORD not in recorded and str(BMC_PASSWORD) not in recorded


def test_step_arguments_are_sealed_while_staged(env: Env) -> None:
    node = env.create("manageable", driver_info={"fake_wait": "clean"})
    step = {"interface": "deploy", "step": "erase_devices", "args": {"wipe_token": "Step-Tok-1"}}
    env.service.execute(
        ChangeProvisionState(node.id, ProvisionRequest("clean", clean_steps=[step])), context=ALICE
    )
    waiting = env.wait_settled(node.id)
    assert waiting.provision_state == "clean wait"
    staged = waiting.driver_internal_info["clean_steps"][0]["args"]
    assert is_sealed(staged["wipe_token"])
    assert env.secret_box.reveal(staged) == {"wipe_token": "Step-Tok-1"}
