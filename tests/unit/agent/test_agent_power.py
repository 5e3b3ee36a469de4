"""Power off and reboot: sysrq first, the command when the machine is still alive."""

from __future__ import annotations

import dataclasses

from agent_machine import FakeMachine

from metalcast_agent.power import perform


def test_power_off_writes_o_to_sysrq_then_falls_back_after_the_grace(machine: FakeMachine) -> None:
    trigger = machine.env.proc_root / "sysrq-trigger"
    trigger.write_bytes(b"")
    env = dataclasses.replace(machine.env, power_commands={"power_off": ("true",)})
    slept: list[float] = []

    assert perform("power_off", env, grace=7.0, sleep=slept.append)

    assert trigger.read_bytes() == b"o"
    assert slept == [7.0]


def test_reboot_writes_b(machine: FakeMachine) -> None:
    trigger = machine.env.proc_root / "sysrq-trigger"
    trigger.write_bytes(b"")

    perform("reboot", machine.env, sleep=lambda seconds: None)

    assert trigger.read_bytes() == b"b"


def test_without_sysrq_the_command_runs_at_once(machine: FakeMachine) -> None:
    slept: list[float] = []
    env = dataclasses.replace(machine.env, power_commands={"reboot": ("true",)})

    assert perform("reboot", env, sleep=slept.append)
    assert slept == []


def test_every_way_failing_is_reported(machine: FakeMachine) -> None:
    env = dataclasses.replace(
        machine.env,
        power_commands={"power_off": ("false",), "reboot": ("/nonexistent/reboot", "-f")},
    )

    assert not perform("power_off", env, sleep=lambda seconds: None)
    assert not perform("reboot", env, sleep=lambda seconds: None)
