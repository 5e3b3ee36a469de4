"""Settings from the kernel command line, environment variables and flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_machine import FakeMachine, write

from metalcast_agent.config import load_config, parse_bootif, parse_cmdline
from metalcast_agent.errors import ConfigError

CMDLINE = (
    "initrd=deploy.initramfs console=ttyS0,115200n8 metalcast.api=http://192.168.77.1:6385/ "
    "BOOTIF=01-52-54-00-12-34-56 metalcast.heartbeat=2 quiet\n"
)


def roots(machine: FakeMachine) -> list[str]:
    return [
        f"--sys-root={machine.env.sys_root}",
        f"--proc-root={machine.env.proc_root}",
        f"--dev-root={machine.env.dev_root}",
    ]


def test_kernel_parameters_configure_the_agent(machine: FakeMachine) -> None:
    write(machine.env.proc_root / "cmdline", CMDLINE)

    config = load_config(roots(machine), {})

    assert config.api_url == "http://192.168.77.1:6385"
    assert config.bootif == "52:54:00:12:34:56"
    assert config.heartbeat_interval == 2.0
    assert config.power_action == "system"
    assert config.env.dev_root == machine.env.dev_root


def test_flags_win_over_variables_which_win_over_the_kernel(machine: FakeMachine) -> None:
    write(machine.env.proc_root / "cmdline", CMDLINE)
    environ = {"METALCAST_AGENT_API": "http://10.0.0.1:1", "METALCAST_AGENT_HEARTBEAT": "3"}

    config = load_config(
        [*roots(machine), "--api=http://127.0.0.1:9", "--power-action=exit"], environ
    )

    assert config.api_url == "http://127.0.0.1:9"
    assert config.heartbeat_interval == 3.0
    assert config.power_action == "exit"


def test_roots_come_from_variables_too(tmp_path: Path) -> None:
    write(tmp_path / "proc" / "cmdline", "metalcast.api=http://h:1")

    config = load_config([], {"METALCAST_AGENT_PROC_ROOT": str(tmp_path / "proc")})

    assert config.api_url == "http://h:1"
    assert config.env.proc_root == tmp_path / "proc"
    assert config.env.sys_root == Path("/sys")


def test_without_api_the_error_says_how_to_boot(machine: FakeMachine) -> None:
    write(machine.env.proc_root / "cmdline", "console=ttyS0")

    with pytest.raises(ConfigError) as caught:
        load_config(roots(machine), {})

    assert str(caught.value) == (
        "No metalcast API URL: boot the ramdisk with metalcast.api=http://ADDR:PORT (or pass --api)"
    )


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("metalcast.api=ftp://x", "metalcast.api=ftp://x is not an http:// or https:// URL"),
        ("metalcast.api=http://x metalcast.heartbeat=0", "metalcast.heartbeat=0 is not a number"),
        ("metalcast.api=http://x metalcast.heartbeat=soon", "metalcast.heartbeat=soon is not"),
        ("metalcast.api=http://x BOOTIF=zz", "BOOTIF=zz is not a MAC address; expected BOOTIF=01-"),
    ],
)
def test_bad_parameters_are_named(machine: FakeMachine, cmdline: str, message: str) -> None:
    write(machine.env.proc_root / "cmdline", cmdline)

    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("?", r"\?")):
        load_config(roots(machine), {})


def test_cmdline_and_bootif_parsing() -> None:
    assert parse_cmdline('a=1 b="two" quiet') == {"a": "1", "b": "two", "quiet": ""}
    assert parse_bootif("01-AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert parse_bootif("aa:bb:cc:dd:ee:ff") == "aa:bb:cc:dd:ee:ff"
