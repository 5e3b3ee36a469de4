"""The boot services as one unit: dnsmasq (DHCP, TFTP) and the boot HTTP server
(two of them with TLS: boot files on the plain port, the rest over HTTPS).

The server builds one :class:`BootServices` from its settings, starts it before it
serves the API and stops it after; the conductor's boot interface calls
:meth:`BootServices.prepare_node` before it powers a node on into the deploy
ramdisk and :meth:`BootServices.clean_node` once the node is deployed (or the
operation is aborted), so that the node then boots its disk.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.types import ASGIApp

from metalcast.agent_downloads import UrlSigner
from metalcast.boot.dnsmasq import command, dhcp_port_in_use, render_config
from metalcast.boot.dnsmasq_process import Dnsmasq, DnsmasqHealth, Timing
from metalcast.boot.errors import BootSetupError, DnsmasqError
from metalcast.boot.http import BootHttpServer, create_app, create_files_app
from metalcast.boot.ipxe import (
    NodeBoot,
    install_boot_files,
    remove_node_files,
    write_discovery_script,
    write_node_files,
)
from metalcast.boot.layout import BootLayout, write_atomic
from metalcast.boot.settings import BootSettings
from metalcast.boot.trust import agent_ca, check_agents_accept, relay_trust
from metalcast.tls.certificates import ServerCertificate, load_server_certificate

log = logging.getLogger("metalcast.boot")


@dataclass(frozen=True, slots=True)
class BootHealth:
    dnsmasq: DnsmasqHealth
    #: whether the boot HTTP server answers (both ports, with TLS)
    http_running: bool
    #: the boot HTTP server's URL as nodes reach it (its HTTPS one, with TLS)
    http_url: str
    #: problems that do not stop the services (a deploy image is missing)
    warnings: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return self.dnsmasq.running and self.http_running


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _current_group() -> str:
    return grp.getgrgid(os.getegid()).gr_name


class BootServices:
    """dnsmasq and the boot HTTP server for one provisioning network.

    ``api_url`` is metalcast's API as this process reaches it (the relay's
    upstream) unless ``settings.api_url`` says otherwise; ``signer`` checks the
    signed URLs agents download images and config drives with (None: none are
    served); ``api_certificate`` is the certificate that API serves, if any (the
    relay trusts exactly that one).

    Raises:
        TlsError: the boot server's certificate, key or CA file is unusable.
        BootSetupError: the agents would refuse the boot server's certificate, or
            would be sent to a plain-HTTP API while it serves TLS.
    """

    def __init__(
        self,
        settings: BootSettings,
        *,
        state_dir: Path,
        api_url: str,
        signer: UrlSigner | None,
        api_certificate: ServerCertificate | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.settings = settings
        self.layout = BootLayout.from_settings(settings, state_dir=state_dir)
        self.upstream_url = settings.api_url or api_url
        #: the API URL the nodes' agents are given
        self.node_api_url = settings.node_api_url or settings.agent_url
        self.tls = load_server_certificate(
            settings.tls_cert_file, settings.tls_key_file, area="boot"
        )
        #: what the agents verify the boot server with (PEM), with TLS
        self.agent_ca = agent_ca(settings, self.tls) if self.tls else None
        if self.tls is not None and self.agent_ca is not None:
            check_agents_accept(
                settings, self.tls, ca=self.agent_ca, node_api_url=self.node_api_url
            )
        where = settings.interface + (
            f" in network namespace {settings.netns}" if settings.netns else ""
        )
        argv = command(
            str(self.layout.dnsmasq_conf), binary=settings.dnsmasq_binary, netns=settings.netns
        )
        self.dnsmasq = Dnsmasq(
            argv, log_file=self.layout.dnsmasq_log, where=where, timing=timing or Timing()
        )
        app = create_app(
            boot_dir=self.layout.boot_dir,
            images_dir=self.layout.images_dir,
            api_url=self.upstream_url,
            signer=signer,
            upstream_tls=relay_trust(settings, api_certificate),
        )
        self.http_servers = self._http_servers(app)
        self._where = where
        self._warnings: tuple[str, ...] = ()

    def _http_servers(self, app: ASGIApp) -> tuple[BootHttpServer, ...]:
        """One server for everything; with TLS, boot files on the plain port and
        everything on the TLS port."""
        host, netns = str(self.settings.address), self.settings.netns
        if self.tls is None:
            return (BootHttpServer(app, host=host, port=self.settings.http_port, netns=netns),)
        files = create_files_app(boot_dir=self.layout.boot_dir, https_url=self.settings.https_url)
        return (
            BootHttpServer(files, host=host, port=self.settings.http_port, netns=netns),
            BootHttpServer(
                app, host=host, port=self.settings.https_port, netns=netns, tls=self.tls
            ),
        )

    def start(self) -> None:
        """Write the boot files and dnsmasq's config, start dnsmasq, then the HTTP
        server.  On failure nothing is left running.

        Raises:
            BootSetupError: an iPXE binary is missing, a directory is not writable.
            DnsmasqError: another DHCP server listens on the interface, or dnsmasq
                failed to start (the message has its last log lines).
            BootHttpError: the HTTP server cannot listen.
        """
        self._warnings = tuple(self._install())
        for warning in self._warnings:
            log.warning("boot services: %s", warning)
        self._write_config()
        self._check_dhcp_port()
        self.dnsmasq.start()
        try:
            for server in self.http_servers:
                server.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the HTTP servers, then dnsmasq (SIGTERM, SIGKILL if it lingers)."""
        for server in self.http_servers:
            server.stop()
        self.dnsmasq.stop()

    def health(self) -> BootHealth:
        """Whether dnsmasq and the HTTP server run, and what is wrong otherwise."""
        return BootHealth(
            dnsmasq=self.dnsmasq.health(),
            http_running=all(server.running for server in self.http_servers),
            http_url=self.settings.agent_url,
            warnings=self._warnings,
        )

    def prepare_node(self, node: NodeBoot) -> None:
        """Make ``node`` network-boot the deploy ramdisk from now on: script, links and
        host entries.  New entries reach the running dnsmasq without a restart;
        changed ones (a port's MAC or address changed since the last call) restart it.

        Raises:
            BootSetupError: a file cannot be written.
            DnsmasqError: dnsmasq did not come back after a restart.
        """
        restart = write_node_files(
            self.layout, node, settings=self.settings, api_url=self.node_api_url
        )
        if restart:
            self.dnsmasq.restart()
        log.info(
            "boot files of node %s written (%s%s)",
            node.uuid,
            node.protocol,
            ", dnsmasq restarted" if restart else "",
        )

    def clean_node(self, node_uuid: str) -> None:
        """Forget ``node_uuid``: remove its files and restart dnsmasq so that it
        forgets the node's host entries.  The node then boots its local disk.
        What is gone already is no error.

        Raises:
            BootSetupError: a file cannot be removed.
            DnsmasqError: dnsmasq did not come back after the restart.
        """
        if remove_node_files(self.layout, node_uuid):
            self.dnsmasq.restart()
        log.info("boot files of node %s removed", node_uuid)

    def _install(self) -> list[str]:
        warnings = install_boot_files(self.layout, self.settings, agent_ca=self.agent_ca)
        write_discovery_script(self.layout, self.settings, api_url=self.node_api_url)
        if self.settings.discovery and self.settings.ignore_unknown:
            warnings.append(
                "boot.discovery with boot.ignore_unknown: dnsmasq answers no unknown "
                "machine, so only machines the other DHCP server sends to "
                f"{self.settings.http_url}/boot/boot.ipxe are discovered (docs/discovery.md)"
            )
        if self.tls is not None:
            warnings += self.tls.warnings(now=datetime.now(UTC))
        return warnings

    def _write_config(self) -> None:
        if self.settings.dnsmasq_user:
            user = self.settings.dnsmasq_user
            group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        else:
            user, group = _current_user(), _current_group()
        text = render_config(self.settings, self.layout, user=user, group=group)
        try:
            write_atomic(self.layout.dnsmasq_conf, text.encode())
        except OSError as exc:
            raise BootSetupError(f"cannot write {self.layout.dnsmasq_conf}: {exc}") from exc

    def _check_dhcp_port(self) -> None:
        if not dhcp_port_in_use(self.settings.interface, netns=self.settings.netns):
            return
        message = (
            f"another DHCP server already listens on {self._where} (UDP port 67); "
            "stop it, or set boot.ignore_unknown to share the network with it"
        )
        if not self.settings.ignore_unknown:
            raise DnsmasqError(message)
        log.warning("boot services: %s; answering enrolled nodes only", message)
