"""``python3 -I -S -m metalcast_agent`` and the ``metalcast-agent`` script."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from metalcast_agent import AGENT_VERSION
from metalcast_agent.agent import Agent
from metalcast_agent.client import ApiClient, DownloadAccess, Transport
from metalcast_agent.commands import CommandRunner
from metalcast_agent.config import AgentConfig, load_config
from metalcast_agent.discovery import Discovery
from metalcast_agent.errors import ConfigError
from metalcast_agent.handlers import default_handlers
from metalcast_agent.hardware import collect_inventory, mac_addresses
from metalcast_agent.log import LogBuffer, redact_url, setup_logging

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until a power action; the process exit status."""
    buffer = LogBuffer()
    log = setup_logging(buffer)
    try:
        config = load_config(argv, os.environ)
        transport = Transport.for_config(config.api_url, config.cacert)
    except ConfigError as exc:
        log.error("%s", exc.message)
        return EXIT_CONFIG
    log.info(
        "%s started (python %s), metalcast API %s%s",
        AGENT_VERSION,
        sys.version.split()[0],
        redact_url(config.api_url),
        _trust(config.api_url, config.cacert),
    )
    wake = threading.Event()
    runner = CommandRunner(
        default_handlers(),
        config.env,
        downloads=DownloadAccess(config.api_url, transport=transport),
        on_finish=wake.set,
    )
    api = ApiClient(config.api_url, transport=transport)
    agent = Agent(
        config,
        api,
        runner,
        buffer,
        macs=lambda: mac_addresses(config.env, bootif=config.bootif),
        wake=wake,
    )
    if config.discovery:
        agent.discovery = _discovery(config, api)
    try:
        return agent.run()
    except KeyboardInterrupt:
        log.info("interrupted")
        return EXIT_INTERRUPTED


def _discovery(config: AgentConfig, api: ApiClient) -> Discovery:
    """Reports the machine's inventory (no LLDP wait: nothing asked for it)."""
    return Discovery(api, lambda: collect_inventory(config.env))


def _trust(api_url: str, cacert: Path | None) -> str:
    if not api_url.startswith("https:"):
        return ""
    return f", verified with {cacert or 'the system trust store'}, HTTPS only"


if __name__ == "__main__":
    raise SystemExit(main())
