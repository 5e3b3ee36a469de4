"""The agent's settings: the kernel command line, overridden by environment and flags.

The deploy kernel is booted with ``metalcast.api=http(s)://ADDR:PORT``,
``BOOTIF=01-aa-bb-cc-dd-ee-ff`` and optionally ``metalcast.heartbeat=SECONDS``. For
tests and manual runs every setting can also come from a ``METALCAST_AGENT_*``
environment variable or a command-line flag (flag wins over variable wins over kernel
parameter). Raises :class:`~metalcast_agent.errors.ConfigError` with what to fix.

The CA the agent verifies metalcast's certificate with is :data:`DEFAULT_CACERT`,
which the boot services' CA initrd puts into the ramdisk (``metalcast.cacert=`` or
``--cacert`` name another file).  With a CA the agent talks HTTPS only: an
``http://`` API URL is refused, so that its token never crosses the network in clear.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from metalcast_agent.environment import DEFAULT_SSH_COMMANDS, Environment
from metalcast_agent.errors import ConfigError

DEFAULT_HEARTBEAT_INTERVAL = 5.0
#: ``system`` writes to /proc/sysrq-trigger (or runs poweroff -f); ``exit`` only exits,
#: for tests that run the agent as a process on a developer's machine
POWER_ACTIONS = ("system", "exit")
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
#: where the boot services' CA initrd puts the CA (metalcast.boot.trust.CA_PATH)
DEFAULT_CACERT = Path("/etc/metalcast/ca.pem")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the agent needs to know before its first lookup."""

    api_url: str
    bootif: str | None = None
    #: the CA certificate(s) to verify metalcast with; None: no TLS, or the
    #: system's trust store for an https API URL
    cacert: Path | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    power_action: str = "system"
    env: Environment = field(default_factory=Environment)
    #: booted for discovery (``metalcast.discovery=1``): a machine no node knows,
    #: whose inventory is reported when the lookup finds nothing
    discovery: bool = False


def parse_cmdline(text: str) -> dict[str, str]:
    """The ``key=value`` parameters of a kernel command line (flags map to ``""``)."""
    params: dict[str, str] = {}
    for word in text.split():
        key, _, value = word.partition("=")
        params[key] = value.strip('"')
    return params


def parse_bootif(value: str) -> str:
    """``01-aa-bb-cc-dd-ee-ff`` (pxelinux/iPXE style) as ``aa:bb:cc:dd:ee:ff``."""
    text = value.strip().lower()
    if len(text) == 20 and text.startswith("01-"):
        text = text[3:]
    if not _MAC.match(text):
        raise ConfigError(
            f"BOOTIF={value} is not a MAC address; expected BOOTIF=01-aa-bb-cc-dd-ee-ff"
        )
    return text.replace("-", ":")


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """The settings from flags ``argv``, variables ``environ`` and the kernel command line."""
    flags = _parser().parse_args(argv)
    environ = environ if environ is not None else {}

    def pick(name: str) -> str | None:
        value: str | None = getattr(flags, name)
        return value if value is not None else environ.get(f"METALCAST_AGENT_{name.upper()}")

    env = Environment(
        sys_root=Path(pick("sys_root") or "/sys"),
        proc_root=Path(pick("proc_root") or "/proc"),
        dev_root=Path(pick("dev_root") or "/dev"),
        etc_root=Path(pick("etc_root") or "/etc"),
        ssh_commands=_ssh_commands(flags.ssh_command) or DEFAULT_SSH_COMMANDS,
    )
    kernel = parse_cmdline(_read_cmdline(env.proc_root / "cmdline"))
    api = pick("api") or kernel.get("metalcast.api")
    bootif = pick("bootif") or kernel.get("BOOTIF")
    heartbeat = pick("heartbeat") or kernel.get("metalcast.heartbeat")
    cacert = _check_cacert(pick("cacert") or kernel.get("metalcast.cacert"))
    return AgentConfig(
        api_url=_check_tls(_check_api_url(api), cacert),
        bootif=parse_bootif(bootif) if bootif else None,
        cacert=cacert,
        heartbeat_interval=_check_interval(heartbeat),
        power_action=_check_power_action(pick("power_action") or "system"),
        env=env,
        discovery=_flag(pick("discovery") or kernel.get("metalcast.discovery")),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metalcast-agent",
        description="The metalcast deploy agent (normally configured by the kernel "
        "command line: metalcast.api=, BOOTIF=, metalcast.heartbeat=).",
    )
    parser.add_argument("--api", help="metalcast API base URL (metalcast.api=)")
    parser.add_argument("--bootif", help="MAC the node booted from (BOOTIF=)")
    parser.add_argument("--heartbeat", help="idle heartbeat interval in seconds")
    parser.add_argument(
        "--cacert", help=f"CA certificate to verify metalcast with (default: {DEFAULT_CACERT})"
    )
    parser.add_argument(
        "--discovery", help="1: report the inventory when no node is found (metalcast.discovery=)"
    )
    parser.add_argument("--sys-root", help="where /sys is (tests)")
    parser.add_argument("--proc-root", help="where /proc is (tests)")
    parser.add_argument("--dev-root", help="where /dev is (tests)")
    parser.add_argument("--etc-root", help="where /etc is (tests)")
    parser.add_argument(
        "--ssh-command",
        action="append",
        help="a command (shell words) rescue runs instead of starting dropbear; repeat "
        "for several, run in order (tests)",
    )
    parser.add_argument(
        "--power-action",
        choices=POWER_ACTIONS,
        help="'exit' makes power_off/reboot exit the agent instead (tests)",
    )
    return parser


def _flag(value: str | None) -> bool:
    """A kernel flag: ``1``, ``true``, ``yes`` or ``on`` (and a bare ``metalcast.discovery``)."""
    return value is not None and value.strip().lower() in ("", "1", "true", "yes", "on")


def _ssh_commands(given: list[str] | None) -> tuple[tuple[str, ...], ...]:
    try:
        commands = tuple(tuple(shlex.split(text)) for text in given or ())
    except ValueError as exc:
        raise ConfigError(f"--ssh-command: {exc}") from None
    if any(not command for command in commands):
        raise ConfigError("--ssh-command needs a command, not an empty string")
    return commands


def _read_cmdline(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _check_api_url(url: str | None) -> str:
    if not url:
        raise ConfigError(
            "No metalcast API URL: boot the ramdisk with metalcast.api=http://ADDR:PORT "
            "(or pass --api)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"metalcast.api={url} is not an http:// or https:// URL")
    return url.rstrip("/")


def _check_cacert(value: str | None) -> Path | None:
    if not value:
        return DEFAULT_CACERT if DEFAULT_CACERT.is_file() else None
    if not Path(value).is_file():
        raise ConfigError(f"CA certificate {value} does not exist (metalcast.cacert=, --cacert)")
    return Path(value)


def _check_tls(url: str, cacert: Path | None) -> str:
    if cacert is not None and urlsplit(url).scheme != "https":
        raise ConfigError(
            f"metalcast.api={url} is plain HTTP but the agent has a CA certificate "
            f"({cacert}): it talks to metalcast over HTTPS only; boot it with an https:// "
            "metalcast.api"
        )
    return url


def _check_interval(value: str | None) -> float:
    if value is None:
        return DEFAULT_HEARTBEAT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(
            f"metalcast.heartbeat={value} is not a number of seconds between 0 and 3600"
        )
    return seconds


def _check_power_action(value: str) -> str:
    if value not in POWER_ACTIONS:
        raise ConfigError(
            f"Power action {value!r} is unknown; use one of {', '.join(POWER_ACTIONS)}"
        )
    return value
