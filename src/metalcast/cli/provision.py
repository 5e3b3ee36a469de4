"""Provision and power commands: ``node deploy``, ``node power``, … with ``--wait``."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from metalcast.cli.client import JSON, ApiClient, CliError, node_path
from metalcast.cli.output import print_json, print_ok, stderr
from metalcast.cli.session import Session, session_of
from metalcast.cli.waiting import (
    EXPECTED_POWER,
    EXPECTED_STATES,
    Mark,
    Verdict,
    failure_message,
    judge_power,
    judge_provision,
    wait_for,
)

NodeArg = Annotated[str, typer.Argument(help="Node UUID or name.", show_default=False)]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Wait until the node finishes (`--wait 600` also sets --wait-timeout).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--wait-timeout", help="With --wait: give up after SECONDS (0: never).", min=0),
]
ConfigDriveOpt = Annotated[
    str | None,
    typer.Option(
        "--config-drive", help="Config drive: a file, a JSON object or a URL.", show_default=False
    ),
]

#: simple verbs: (command name, API target, help)
SIMPLE_VERBS: tuple[tuple[str, str, str], ...] = (
    ("manage", "manage", "Verify the BMC and make the node manageable."),
    ("provide", "provide", "Clean the node and make it available."),
    ("undeploy", "deleted", "Tear down the instance, clean, make the node available."),
    ("inspect", "inspect", "Inspect the node's hardware."),
    ("abort", "abort", "Abort the node's current wait or hold state."),
    ("unhold", "unhold", "Let cleaning or servicing held by a hold step go on."),
    ("unrescue", "unrescue", "Leave rescue mode and boot the instance again."),
    ("adopt", "adopt", "Take over a node that already runs its workload."),
)


class PowerAction(enum.StrEnum):
    ON = "on"
    OFF = "off"
    REBOOT = "reboot"
    SOFT_OFF = "soft-off"
    SOFT_REBOOT = "soft-reboot"


POWER_TARGETS: dict[PowerAction, str] = {
    PowerAction.ON: "power on",
    PowerAction.OFF: "power off",
    PowerAction.REBOOT: "rebooting",
    PowerAction.SOFT_OFF: "soft power off",
    PowerAction.SOFT_REBOOT: "soft rebooting",
}


#: the files of a config drive directory (``openstack/latest/``) and their API keys
_DRIVE_FILES = (
    ("meta_data", "meta_data.json"),
    ("network_data", "network_data.json"),
    ("vendor_data", "vendor_data.json"),
    ("user_data", "user_data"),
)


def load_config_drive(value: str) -> str | JSON:
    """A ``configdrive`` for the API from a directory, a file, a JSON object or a URL.

    A directory laid out as a config drive (``openstack/latest/meta_data.json``,
    ``user_data``, ``network_data.json``, ``vendor_data.json``), as the ``baremetal``
    client takes it, is sent as the object of those files, from which the server
    builds the ISO.  A file holding a JSON object is sent as that object; any other
    file is sent as it is (a gzipped, base64-encoded ISO image).

    Raises:
        CliError: ``value`` is none of those.
    """
    path = Path(value)
    if path.is_dir():
        return _drive_directory(path)
    is_file = path.is_file()
    text = (path.read_text() if is_file else value).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise CliError(f"config drive is not valid JSON: {exc}") from None
        if isinstance(parsed, dict):
            return parsed
    if is_file or text.startswith(("http://", "https://")):
        return text
    raise CliError(f"--config-drive {value!r} is not a file, a JSON object or a URL")


def _drive_directory(path: Path) -> JSON:
    latest = path / "openstack" / "latest"
    if not latest.is_dir():
        raise CliError(
            f"--config-drive {str(path)!r} is a directory without openstack/latest/ "
            "(meta_data.json, user_data, network_data.json)"
        )
    drive: JSON = {}
    for key, name in _DRIVE_FILES:
        file = latest / name
        if not file.is_file():
            continue
        text = file.read_text()
        if key == "user_data":
            drive[key] = text
            continue
        try:
            drive[key] = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{file} is not valid JSON: {exc}") from None
    if not drive:
        raise CliError(f"{latest} holds none of {', '.join(n for _, n in _DRIVE_FILES)}")
    return drive


def load_steps(value: str, *, option: str) -> list[JSON]:
    """A list of steps (``{"interface": ..., "step": ...}``) from JSON, a file or ``-``.

    Raises:
        CliError: not a JSON list of steps.
    """
    if value == "-":
        text = sys.stdin.read()
    elif Path(value).is_file():
        text = Path(value).read_text()
    else:
        text = value
    try:
        steps = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and "interface" in s and "step" in s for s in steps
    ):
        raise CliError(f'{option} must be a JSON list of {{"interface": ..., "step": ...}} objects')
    return steps


def request_provision(
    ctx: typer.Context,
    node: str,
    *,
    verb: str,
    wait: bool,
    timeout: float,
    extra: JSON | None = None,
) -> None:
    """PUT the provision ``verb`` and, with ``wait``, follow the node to its end."""
    session = session_of(ctx)
    client = session.client
    before = Mark.of(client.get(node_path(node))) if wait else None
    client.put(node_path(node, "states", "provision"), {"target": verb, **(extra or {})})
    if before is None:
        _accepted(session, node, what=f"provision state change to '{verb}'")
        return
    expected = EXPECTED_STATES.get(verb)
    judge = functools.partial(judge_provision, expected=expected, before=before)
    current = follow(client, node, judge=judge, timeout=timeout)
    if judge(current) is Verdict.FAILED:
        raise CliError(failure_message(node, current, wanted=expected))
    _finished(session, current, message=f"node {node} is {current.get('provision_state')}")


def request_power(
    ctx: typer.Context, node: str, *, action: PowerAction, wait: bool, timeout: float
) -> None:
    """PUT the power target of ``action`` and, with ``wait``, follow it to its end."""
    session = session_of(ctx)
    client = session.client
    target = POWER_TARGETS[action]
    before = Mark.of(client.get(node_path(node))) if wait else None
    client.put(node_path(node, "states", "power"), {"target": target})
    if before is None:
        _accepted(session, node, what=f"power '{target}'")
        return
    expected = EXPECTED_POWER[target]
    judge = functools.partial(judge_power, expected=expected, before=before)
    current = follow(client, node, judge=judge, timeout=timeout)
    if judge(current) is Verdict.FAILED:
        error = current.get("last_error") or "no error recorded"
        raise CliError(f"node {node} did not reach '{expected}': {error}")
    _finished(session, current, message=f"node {node} is {current.get('power_state')}")


def follow(
    client: ApiClient, node: str, *, judge: Callable[[JSON], Verdict], timeout: float
) -> JSON:
    """:func:`wait_for` ``node`` and return it as last seen; Ctrl-C stops waiting
    (exit 130) and leaves the node to carry on.

    Raises:
        WaitTimeout, ApiError, Unreachable.
    """
    try:
        return wait_for(client, node, judge=judge, timeout=timeout)[1]
    except KeyboardInterrupt:
        message = f"stopped waiting; node {node} carries on with its request"
        stderr().print(Text(message, style="yellow"))
        raise typer.Exit(130) from None


def _accepted(session: Session, node: str, *, what: str) -> None:
    if session.as_json:
        print_json({"node": node, "accepted": what})
    else:
        print_ok(f"{what} accepted for node {node}")


def _finished(session: Session, current: JSON, *, message: str) -> None:
    if session.as_json:
        print_json(current)
    else:
        print_ok(message)


def _simple_verb(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context, node: NodeArg, *, wait: WaitOpt = False, wait_timeout: TimeoutOpt = 0
    ) -> None:
        request_provision(ctx, node, verb=verb, wait=wait, timeout=wait_timeout)

    return command


DeployStepsOpt = Annotated[
    str | None,
    typer.Option(
        help="JSON list of deploy steps ({interface, step, args, priority}) to run with "
        "the driver's and the deploy templates', a file holding it, or '-' for stdin."
    ),
]


def _config_drive_verb(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        node: NodeArg,
        *,
        config_drive: ConfigDriveOpt = None,
        deploy_steps: DeployStepsOpt = None,
        wait: WaitOpt = False,
        wait_timeout: TimeoutOpt = 0,
    ) -> None:
        extra: JSON = {"configdrive": load_config_drive(config_drive)} if config_drive else {}
        if deploy_steps is not None:
            extra["deploy_steps"] = load_steps(deploy_steps, option="--deploy-steps")
        request_provision(ctx, node, verb=verb, wait=wait, timeout=wait_timeout, extra=extra)

    return command


#: verbs that take a config drive: command name, API target, help
CONFIG_DRIVE_VERBS = (
    ("deploy", "active", "Deploy the node's instance (target 'active')."),
    ("rebuild", "rebuild", "Deploy the node's instance again, from scratch."),
)


def clean(
    ctx: typer.Context,
    node: NodeArg,
    *,
    clean_steps: Annotated[
        str | None,
        typer.Option(help="JSON list of steps, a file holding it, or '-' for stdin."),
    ] = None,
    runbook: Annotated[
        str | None,
        typer.Option(help="Run this runbook's steps (its name or UUID) instead."),
    ] = None,
    wait: WaitOpt = False,
    wait_timeout: TimeoutOpt = 0,
) -> None:
    """Run manual clean steps, or a runbook's, on a manageable node."""
    if (clean_steps is None) == (runbook is None):
        raise CliError("give either --clean-steps or --runbook")
    extra: JSON = (
        {"runbook": runbook}
        if runbook is not None
        else {"clean_steps": load_steps(clean_steps or "", option="--clean-steps")}
    )
    request_provision(ctx, node, verb="clean", wait=wait, timeout=wait_timeout, extra=extra)


def rescue(
    ctx: typer.Context,
    node: NodeArg,
    *,
    rescue_password: Annotated[
        str,
        typer.Option(
            help="Password of the rescue user (ssh rescue@NODE); asked for, unechoed, "
            "when not given (a command line shows in the process list).",
            prompt="Rescue password",
            hide_input=True,
            confirmation_prompt=True,
        ),
    ],
    wait: WaitOpt = False,
    wait_timeout: TimeoutOpt = 0,
) -> None:
    """Boot an active node into the rescue ramdisk: SSH as user rescue with the password."""
    extra: JSON = {"rescue_password": rescue_password}
    request_provision(ctx, node, verb="rescue", wait=wait, timeout=wait_timeout, extra=extra)


def power(
    ctx: typer.Context,
    node: NodeArg,
    action: Annotated[PowerAction, typer.Argument(help="What to do.", show_default=False)],
    *,
    wait: WaitOpt = False,
    wait_timeout: TimeoutOpt = 0,
) -> None:
    """Power the node on or off, or reboot it."""
    request_power(ctx, node, action=action, wait=wait, timeout=wait_timeout)


def register(app: typer.Typer) -> None:
    """Add the provision and power commands to the ``node`` command group."""
    for name, verb, help_text in SIMPLE_VERBS:
        app.command(name, help=help_text)(_simple_verb(verb))
    for name, verb, help_text in CONFIG_DRIVE_VERBS:
        app.command(name, help=help_text)(_config_drive_verb(verb))
    for command in (clean, rescue, power):
        app.command()(command)
