"""Injected driver failures, waits, timeouts and aborts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast.calls import (
    ChangePowerState,
    ChangeProvisionState,
    CreateNode,
    ProvisionRequest,
    UpdateNode,
)
from metalcast.drivers.base import DriverContext, StepResult
from metalcast.drivers.fake import FakeDeploy, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput


def act(env: Env, node_id: int, verb: str, **options: Any) -> None:
    env.service.execute(
        ChangeProvisionState(node_id, ProvisionRequest(verb, **options)), context=ALICE
    )


def deployed(env: Env, **driver_info: Any) -> int:
    node = env.create("available", driver_info=driver_info)
    act(env, node.id, "active")
    assert env.wait_settled(node.id).provision_state == "active"
    return node.id


@pytest.mark.parametrize(
    ("start", "verb", "fail", "failed_state", "needle"),
    [
        ("enroll", "manage", "power", "enroll", "power interface (fake) failed to get power"),
        ("enroll", "manage", "validate", "enroll", "power interface (fake) failed to validate"),
        ("manageable", "provide", "clean", "clean failed", "run clean step"),
        (
            "available",
            "active",
            "deploy",
            "deploy failed",
            "deploy interface (fake) failed to deploy",
        ),
        ("manageable", "inspect", "inspect", "inspect failed", "failed to inspect hardware"),
        ("manageable", "adopt", "adopt", "adopt failed", "failed to take over"),
    ],
)
def test_injected_failure_ends_in_failure_state(
    env: Env, start: str, verb: str, fail: str, failed_state: str, needle: str
) -> None:
    node = env.create(start, driver_info={"fake_fail": [fail]})
    act(env, node.id, verb)
    done = env.wait_settled(node.id)
    assert done.provision_state == failed_state
    assert done.last_error is not None
    assert needle in done.last_error
    assert done.clean_step is None
    assert f"injected failure in {fail}" in done.last_error
    last = env.history(node.id)[-1]
    assert last.severity == "ERROR"
    assert needle in last.event
    assert last.user == "alice"
    assert last.conductor == "conductor-1"


def test_undeploy_failure_goes_to_error(env: Env) -> None:
    node_id = deployed(env)
    env.service.execute(
        UpdateNode(node_id, {"driver_info": {"fake_fail": "tear_down"}}), context=ALICE
    )
    act(env, node_id, "deleted")
    done = env.wait_settled(node_id)
    assert done.provision_state == "error"
    assert "failed to tear down" in (done.last_error or "")


def test_rescue_and_unrescue_failures(env: Env) -> None:
    node_id = deployed(env)
    env.service.execute(
        UpdateNode(node_id, {"driver_info": {"fake_fail": "rescue"}}), context=ALICE
    )
    act(env, node_id, "rescue", rescue_password="pw")
    assert env.wait_settled(node_id).provision_state == "rescue failed"
    env.service.execute(
        UpdateNode(node_id, {"driver_info": {"fake_fail": "unrescue"}}), context=ALICE
    )
    act(env, node_id, "unrescue")
    assert env.wait_settled(node_id).provision_state == "unrescue failed"


def test_service_failure(env: Env) -> None:
    node_id = deployed(env, fake_fail="service")
    act(env, node_id, "service", service_steps=[{"interface": "deploy", "step": "fake_service"}])
    done = env.wait_settled(node_id)
    assert done.provision_state == "service failed"
    act(env, node_id, "abort")
    assert env.node(node_id).provision_state == "active"


def test_retryable_failure_gives_up_after_the_policy(env: Env) -> None:
    node = env.create("available", driver_info={"fake_retryable_fail": "deploy"})
    act(env, node.id, "active")
    done = env.wait_settled(node.id)
    assert done.provision_state == "deploy failed"
    assert "gave up after 3 attempts" in (done.last_error or "")


def test_new_operation_clears_last_error(env: Env) -> None:
    node = env.create("available", driver_info={"fake_fail": "deploy"})
    act(env, node.id, "active")
    env.wait_settled(node.id)
    env.service.execute(UpdateNode(node.id, {"driver_info": {}}), context=ALICE)
    act(env, node.id, "active")
    done = env.wait_settled(node.id)
    assert done.provision_state == "active"
    assert done.last_error is None


# ----------------------------------------------------------------- waits and timeouts

WAITS = [
    (
        "available",
        "active",
        {},
        "deploy",
        "wait call-back",
        "deploy failed",
        "deploy_callback_timeout",
    ),
    ("manageable", "provide", {}, "clean", "clean wait", "clean failed", "clean_callback_timeout"),
    (
        "manageable",
        "inspect",
        {},
        "inspect",
        "inspect wait",
        "inspect failed",
        "inspect_wait_timeout",
    ),
]


@pytest.mark.parametrize(("start", "verb", "opts", "op", "wait", "failed", "setting"), WAITS)
def test_wait_then_timeout(
    env: Env,
    start: str,
    verb: str,
    opts: dict[str, Any],
    op: str,
    wait: str,
    failed: str,
    setting: str,
) -> None:
    node = env.create(start, driver_info={"fake_wait": op})
    act(env, node.id, verb, **opts)
    waiting = env.wait_settled(node.id)
    assert waiting.provision_state == wait
    assert "wait_started_at" in waiting.driver_internal_info
    assert env.service.check_wait_timeouts() == 0
    env.clock.advance(1801)
    assert env.service.check_wait_timeouts() == 1
    done = env.node(node.id)
    assert done.provision_state == failed
    error = done.last_error or ""
    assert error.startswith("Timeout reached while waiting for")
    assert f"in state '{wait}' ({setting}=1800s)" in error
    assert "waiting since " in error
    assert error.endswith("the agent never heartbeated")
    assert env.history(node.id)[-1].user == "metalcast-conductor"


def test_timeout_names_the_last_heartbeat(env: Env) -> None:
    node = env.create("available", driver_info={"fake_wait": "deploy"})
    act(env, node.id, "active")
    env.wait_settled(node.id)
    with env.db.begin() as conn:
        from metalcast.db import repository as repo

        info = {
            **env.node(node.id).driver_internal_info,
            "agent_last_heartbeat": "2026-11-21T12:00:00",
        }
        repo.update_node(conn, node.id, {"driver_internal_info": info})
    env.clock.advance(3600)
    env.service.check_wait_timeouts()
    assert (env.node(node.id).last_error or "").endswith(
        "the last agent heartbeat was at 2026-11-21T12:00:00"
    )


def test_rescue_and_service_waits(env: Env) -> None:
    node_id = deployed(env, fake_wait="rescue,service")
    act(env, node_id, "rescue", rescue_password="pw")
    assert env.wait_settled(node_id).provision_state == "rescue wait"
    act(env, node_id, "abort")
    assert env.node(node_id).provision_state == "rescue failed"
    act(env, node_id, "unrescue")
    assert env.wait_settled(node_id).provision_state == "active"
    act(env, node_id, "service", service_steps=[{"interface": "deploy", "step": "fake_service"}])
    assert env.wait_settled(node_id).provision_state == "service wait"
    act(env, node_id, "abort")
    done = env.node(node_id)
    assert done.provision_state == "service failed"
    assert done.service_step is None


@pytest.mark.parametrize(("start", "verb", "opts", "op", "wait", "failed", "setting"), WAITS)
def test_abort_from_wait_state(
    env: Env,
    start: str,
    verb: str,
    opts: dict[str, Any],
    op: str,
    wait: str,
    failed: str,
    setting: str,
) -> None:
    node = env.create(start, driver_info={"fake_wait": op})
    act(env, node.id, verb, **opts)
    assert env.wait_settled(node.id).provision_state == wait
    act(env, node.id, "abort")
    done = env.wait_settled(node.id)  # aborted cleaning is torn down in a worker
    assert done.provision_state == failed
    assert "aborted by alice" in (done.last_error or "") or "By request of alice" in (
        done.last_error or ""
    )
    assert done.clean_step is None
    assert "wait_started_at" not in done.driver_internal_info
    assert done.reservation is None


def test_an_aborted_deploy_wait_ends_the_ramdisk_boot(env: Env) -> None:
    """As Ironic (1.110, its deploy clean-up): the agent forgotten, no ramdisk boot,
    the node powered off, rather than left running the deploy ramdisk."""
    node = env.create("available", driver_info={"fake_wait": "deploy"})
    act(env, node.id, "active")
    assert env.wait_settled(node.id).provision_state == "wait call-back"
    # the machine runs the deploy ramdisk (the fake deploy powers nothing on itself)
    env.service.execute(ChangePowerState(node.id, "power on", timeout=None), context=ALICE)
    assert env.wait_settled(node.id).power_state == "power on"
    act(env, node.id, "abort")
    done = env.wait_settled(node.id)
    assert (done.provision_state, done.power_state) == ("deploy failed", "power off")
    assert "Deployment ended: the node is powered off" in [e.event for e in env.history(node.id)]


def test_abort_of_running_work_is_refused(env: Env) -> None:
    node = env.create("available", driver_info={"fake_latency": 1})
    act(env, node.id, "active")
    env.gate.wait_for_sleeper()
    with pytest.raises(InvalidInput, match="in state 'deploying' running its work, which cannot"):
        act(env, node.id, "abort")
    env.gate.open()
    assert env.wait_settled(node.id).provision_state == "active"


class ExplodingDeploy(FakeDeploy):
    """A deploy interface with a bug: it raises something no driver should."""

    name = "exploding"

    def deploy(self, ctx: DriverContext) -> StepResult:
        raise RuntimeError("bug in the driver")


def test_unexpected_error_in_worker_fails_the_node(env: Env) -> None:
    supported = dict(FAKE_HARDWARE.supported)
    supported["deploy"] = (*supported["deploy"], ExplodingDeploy)
    hw = dataclasses.replace(FAKE_HARDWARE, supported=supported)
    service = env.make(
        registry=DriverRegistry([hw], factories=fake_factories(env.bmc)), hostname="conductor-2"
    )
    node = service.execute(
        CreateNode(
            {
                "driver": "fake-hardware",
                "deploy_interface": "exploding",
                "provision_state": "available",
            }
        ),
        context=ALICE,
    )
    service.execute(ChangeProvisionState(node.id, ProvisionRequest("active")), context=ALICE)
    done = env.wait_settled(node.id)
    assert done.provision_state == "deploy failed"
    assert done.last_error == "Unexpected error: RuntimeError: bug in the driver"
