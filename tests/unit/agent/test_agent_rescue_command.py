"""The ``rescue`` command: the rescue user's password hash in passwd/shadow, the SSH
commands run in order, and the protocol loop that stops (exit 3) once it is reported."""

from __future__ import annotations

import io
import stat
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from agent_machine import FakeMachine, write
from test_agent_loop import FakeApi, ack, command

from metalcast_agent.agent import EXIT_RESCUE, Agent
from metalcast_agent.commands import CommandContext, CommandRunner
from metalcast_agent.config import AgentConfig, load_config
from metalcast_agent.environment import DEFAULT_SSH_COMMANDS
from metalcast_agent.errors import ConfigError, InvalidArguments, RescueFailed
from metalcast_agent.log import LogBuffer, setup_logging
from metalcast_agent.rescue import RESCUE_MODE, rescue

#: SHA-512 crypt of "Hello world!" with salt "saltstring" (the specification's example)
HASH = (
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
    "FdcbYEdFCoEOfaS35inz1"
)


def marking(path: Path, text: str) -> tuple[str, ...]:
    """A command that appends ``text`` to ``path`` (what a test runs for dropbear)."""
    return (sys.executable, "-c", f"open({str(path)!r}, 'a').write({text!r})")


@pytest.fixture
def context(machine: FakeMachine, tmp_path: Path) -> CommandContext:
    marks = tmp_path / "ssh-started"
    env = replace(
        machine.env,
        etc_root=tmp_path / "etc",
        ssh_commands=(marking(marks, "key "), marking(marks, "server")),
    )
    write(env.etc_root / "passwd", "root:x:0:0:root:/root:/bin/sh\nrescue:x:1:1::/:/bin/false\n")
    return CommandContext(env)


def test_rescue_gives_the_user_the_hash_and_starts_ssh(
    context: CommandContext, tmp_path: Path
) -> None:
    done = rescue({"user": "rescue", "password_hash": HASH}, context)

    etc = context.env.etc_root
    assert done == {"user": "rescue"}
    assert (etc / "passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/sh",
        "rescue:x:0:0:rescue:/root:/bin/sh",  # the old line replaced
    ]
    shadow = etc / "shadow"
    assert shadow.read_text() == f"rescue:{HASH}:1:0:99999:7:::\n"
    assert stat.S_IMODE(shadow.stat().st_mode) == 0o600
    assert (tmp_path / "ssh-started").read_text() == "key server"  # in order
    assert (etc / "dropbear").is_dir()
    assert context.power_request == [RESCUE_MODE]


@pytest.mark.parametrize(
    "bad",
    [
        "Hello world!",  # a password sent by mistake
        HASH + "\nroot::0:0:::::",  # a second line
        HASH.replace("$6$", "$1$"),  # MD5 crypt
        HASH + ":0:0",
        None,
    ],
)
def test_anything_but_a_sha512_crypt_hash_is_refused_and_nothing_written(
    context: CommandContext, tmp_path: Path, bad: object
) -> None:
    with pytest.raises(InvalidArguments) as raised:
        rescue({"user": "rescue", "password_hash": bad}, context)

    assert "Hello" not in raised.value.message
    assert not (context.env.etc_root / "shadow").exists()
    assert not (tmp_path / "ssh-started").exists()


def test_a_user_name_that_is_not_one_is_refused(context: CommandContext) -> None:
    with pytest.raises(InvalidArguments, match="not a user name"):
        rescue({"user": "rescue:x:0:0", "password_hash": HASH}, context)


def test_an_ssh_server_that_fails_fails_the_command_with_its_output(
    context: CommandContext,
) -> None:
    failing = (sys.executable, "-c", "import sys; sys.exit('dropbear: bind port 22 failed')")
    env = replace(context.env, ssh_commands=(failing,))

    with pytest.raises(RescueFailed, match="exited with 1: dropbear: bind port 22 failed"):
        rescue({"user": "rescue", "password_hash": HASH}, CommandContext(env))


def test_the_dropbear_commands_are_the_default_and_flags_replace_them(tmp_path: Path) -> None:
    cmdline = tmp_path / "proc" / "cmdline"
    write(cmdline, "metalcast.api=http://10.0.0.1:6385\n")
    base = ["--proc-root", str(cmdline.parent)]

    assert load_config(base).env.ssh_commands == DEFAULT_SSH_COMMANDS
    assert DEFAULT_SSH_COMMANDS[-1][0] == "/usr/sbin/dropbear"
    given = load_config([*base, "--ssh-command", "true 'a b'", "--ssh-command", "false"])
    assert given.env.ssh_commands == (("true", "a b"), ("false",))
    with pytest.raises(ConfigError, match="--ssh-command"):
        load_config([*base, "--ssh-command", ""])


@pytest.fixture
def loop(context: CommandContext) -> Iterator[tuple[Agent, FakeApi, CommandRunner]]:
    buffer = LogBuffer()
    logger = setup_logging(buffer, console=io.StringIO())
    wake = threading.Event()
    runner = CommandRunner({"rescue": rescue}, context.env, on_finish=wake.set)
    config = AgentConfig(api_url="http://127.0.0.1:9", heartbeat_interval=5.0, env=context.env)
    api = FakeApi()
    powered: list[str] = []

    def power(action: str) -> bool:
        powered.append(action)
        return True

    agent = Agent(config, api, runner, buffer, macs=lambda: ["52:54:00:12:34:56"], power=power)
    yield agent, api, runner
    assert powered == []  # rescue never powers the machine off
    runner.join(timeout=10)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_once_rescue_is_acknowledged_the_loop_stops_with_exit_3(
    loop: tuple[Agent, FakeApi, CommandRunner],
) -> None:
    agent, api, runner = loop
    api.heartbeats = [command("rescue", "r1", user="rescue", password_hash=HASH), ack(), ack()]
    api.heartbeats += [ack("r1")]

    agent.step()  # lookup
    assert agent.step() == 5.0  # rescue handed out
    runner.join(timeout=10)
    assert agent.step() == 5.0  # result sent, not acked
    assert agent.step() == 5.0  # still not acked: keeps heartbeating, no hurry
    assert agent.step() is None  # acked: heartbeats stop

    assert agent.exit_status == EXIT_RESCUE
    results = [r for body in api.sent for r in body.get("results", [])]
    assert results[-1]["status"] == "succeeded"
    sent = repr(api.sent)
    assert HASH not in sent  # neither the result nor the log carries the hash
