"""Keeps the boot services running for as long as their network exists.

``metalcast server`` owns one :class:`BootSupervisor`.  It starts the
:class:`~metalcast.boot.service.BootServices` as soon as the provisioning interface
exists (inside its network namespace, when one is set), restarts them if they fail,
and stops them when the interface goes away, then waits for it again.  This is what
lets ``metalcast lab up`` create the lab's network after the server started: the
default settings name the lab's namespace and bridge, and the services follow them.

The conductor's boot interface writes and removes node files through
:meth:`prepare_node` and :meth:`clean_node` whether or not the services run at that
moment; the files are there when they start.

Several conductors of one provisioning network (the conductors of a conductor group
on one machine, sharing the state directory and so the boot directory) each have a
supervisor, and a :class:`Leadership` decides which of them runs the services: the
one holding it.  The others look again at every check; the first to get it after the
runner died (its database session ends with the process) starts the services on
the same interface and address, and the nodes' next DHCP and HTTP requests reach it.
A conductor that does not run them still writes its nodes' files into the shared
directory, where the runner's dnsmasq (through inotify) and HTTP server find them;
when dnsmasq must forget host entries it asks the runner for a restart through
``dnsmasq.restart`` in the boot state directory, which the runner reads at every
check.  The runner records itself in ``leader.json`` there.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from metalcast.boot.errors import BootError
from metalcast.boot.ipxe import NodeBoot, remove_node_files, write_node_files
from metalcast.boot.layout import write_atomic
from metalcast.boot.service import BootHealth, BootServices
from metalcast.boot.settings import BootSettings
from metalcast.boot.vmedia import VmediaNode, publish_node_iso, withdraw_node_iso

log = logging.getLogger("metalcast.boot")

#: seconds between looks at the interface and the services' health
CHECK_INTERVAL = 2.0


def interface_exists(settings: BootSettings) -> bool:
    """Whether ``settings.interface`` exists (in ``settings.netns`` when set)."""
    if settings.netns and not Path("/run/netns", settings.netns).exists():
        return False
    argv = ["ip", *(["-n", settings.netns] if settings.netns else []), "link", "show"]
    try:
        shown = subprocess.run(
            [*argv, "dev", settings.interface], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return shown.returncode == 0


class Leadership(Protocol):
    """Which of the processes serving one provisioning network runs its boot services
    (:class:`metalcast.db.leadership.SessionLock` on PostgreSQL)."""

    def acquire(self) -> bool:
        """Whether this process leads now: takes the lead when nobody holds it, checks
        it is still held when this process has it.  Raises nothing: a database out
        of reach means not leading."""
        ...

    def release(self) -> None:
        """Give the lead up, if this process has it.  Raises nothing."""
        ...


class BootSupervisor:
    """Starts, watches and stops one :class:`BootServices`; with ``leadership``,
    only while this process leads (``identity`` names it in ``leader.json``)."""

    def __init__(
        self,
        services: BootServices,
        *,
        leadership: Leadership | None = None,
        identity: str = "",
    ) -> None:
        self.services = services
        self.settings = services.settings
        self._leadership = leadership
        self._identity = identity
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None
        #: the last restart request this process served (or found when it started)
        self._restart_token = ""

    @property
    def node_api_url(self) -> str:
        """The API URL the nodes' agents are given."""
        return self.services.node_api_url

    @property
    def images_url(self) -> str:
        """Where agents download images from (the boot HTTP server's /images, over
        HTTPS when it has TLS)."""
        return f"{self.settings.agent_url}/images"

    @property
    def images_dir(self) -> Path:
        return self.services.layout.images_dir

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Watch in a background thread from now on."""
        self._thread = threading.Thread(target=self._watch, name="boot-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, stop the services if they run, and give up the lead."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            self._halt()
            self._resign()

    def health(self) -> BootHealth | None:
        return self.services.health() if self._running else None

    def prepare_node(self, node: NodeBoot) -> None:
        """Write ``node``'s boot files; restart dnsmasq if it runs and must forget
        old host entries.  Raises BootError."""
        with self._lock:
            if self._running:
                self.services.prepare_node(node)
                return
            self.services.layout.make_dirs()
            restart = write_node_files(
                self.services.layout,
                node,
                settings=self.settings,
                api_url=self.services.node_api_url,
            )
            if restart:
                self._request_restart()

    def clean_node(self, node_uuid: str) -> None:
        """Remove ``node_uuid``'s boot files.  Raises BootError."""
        with self._lock:
            if self._running:
                self.services.clean_node(node_uuid)
                return
            if remove_node_files(self.services.layout, node_uuid):
                self._request_restart()

    def publish_vmedia(self, node: VmediaNode) -> str:
        """Build ``node``'s virtual media ISO; the URL it is served at.  Raises BootError."""
        return publish_node_iso(
            self.services.layout, self.settings, node, api_url=self.services.node_api_url
        )

    def withdraw_vmedia(self, node_uuid: str) -> None:
        """Remove ``node_uuid``'s virtual media ISO.  Raises BootError."""
        withdraw_node_iso(self.services.layout, node_uuid)

    def check_once(self) -> None:
        """One look: start the services, restart them, or stop them, as needed."""
        with self._lock:
            present = interface_exists(self.settings)
            if not present:
                if self._running:
                    log.warning("boot services: %s is gone; stopping", self._where())
                    self._halt()
                self._resign()
                self._note(f"waiting for {self._where()} to exist")
                return
            if not self._leads():
                if self._running:
                    log.error("boot services: lost the lead on %s; stopping", self._where())
                    self._halt()
                self._note(*self._follower_note())
                return
            if self._running and self.services.health().healthy:
                self._serve_restart_request()
                return
            if self._running:
                log.warning("boot services unhealthy on %s; restarting", self._where())
                self._halt()
            self._begin()

    @property
    def _elected(self) -> bool:
        return self._leadership is not None

    def _leads(self) -> bool:
        return self._leadership is None or self._leadership.acquire()

    def _resign(self) -> None:
        if self._leadership is not None:
            self._leadership.release()

    def _begin(self) -> None:
        token = self._read_restart_token()  # a fresh dnsmasq reads every host entry
        try:
            self.services.start()
        except BootError as exc:
            self._note(f"cannot start on {self._where()}: {exc}")
            return
        self._running = True
        self._restart_token = token
        self._last_problem = None
        self._record_leader()
        log.info(
            "boot services of %s running on %s (%s)",
            self.settings.network_label,
            self._where(),
            self.settings.agent_url,
        )

    def _halt(self) -> None:
        if self._running:
            self._running = False
            self._forget_leader()
            try:
                self.services.stop()
            except BootError:
                log.exception("boot services did not stop cleanly")

    # --- several processes on one network ---

    def _request_restart(self) -> None:
        """Ask the process that runs dnsmasq (if another does) to restart it."""
        if not self._elected:
            return  # nobody else runs it: it reads every entry when it starts
        layout = self.services.layout
        try:
            write_atomic(layout.restart_request, secrets.token_hex(8).encode())
        except OSError as exc:
            log.warning("cannot ask for a dnsmasq restart (%s): %s", layout.restart_request, exc)

    def _read_restart_token(self) -> str:
        try:
            return self.services.layout.restart_request.read_text()
        except OSError:
            return ""

    def _serve_restart_request(self) -> None:
        token = self._read_restart_token()
        if token == self._restart_token:
            return
        self._restart_token = token
        log.info("boot services: restarting dnsmasq, as another conductor asked")
        self.services.dnsmasq.restart()

    def _leader_record(self) -> dict[str, object]:
        return {
            "identity": self._identity,
            "pid": os.getpid(),
            "network": self.settings.network,
            "netns": self.settings.netns,
            "interface": self.settings.interface,
            "address": str(self.settings.address),
        }

    def _record_leader(self) -> None:
        record = {**self._leader_record(), "since": datetime.now(UTC).isoformat()}
        try:
            write_atomic(self.services.layout.leader_file, json.dumps(record).encode())
        except OSError as exc:
            log.warning("cannot write %s: %s", self.services.layout.leader_file, exc)

    def _read_leader(self) -> dict[str, object] | None:
        try:
            loaded = json.loads(self.services.layout.leader_file.read_text())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def _forget_leader(self) -> None:
        leader = self._read_leader()
        if leader is not None and leader.get("pid") == os.getpid():
            self.services.layout.leader_file.unlink(missing_ok=True)

    def _follower_note(self) -> tuple[str, int]:
        """What this process waits for, and how loud to say it: an error when the
        runner's settings differ from this process's."""
        network = self.settings.network_label
        leader = self._read_leader()
        if leader is None:
            return f"another process runs the boot services of {network}", logging.INFO
        runner = f"{leader.get('identity') or 'a process'} (pid {leader.get('pid')})"
        mine = self._leader_record()
        differ = [k for k in ("netns", "interface", "address") if leader.get(k) != mine[k]]
        if not differ:
            return f"{runner} runs the boot services of {network}; standing by", logging.INFO
        shown = ", ".join(f"{k} {leader.get(k)} there, {mine[k]} here" for k in differ)
        return (
            f"{runner} runs the boot services of {network} with other settings ({shown}): "
            "give each provisioning network its own boot.network",
            logging.ERROR,
        )

    def _note(self, problem: str, level: int = logging.INFO) -> None:
        if problem != self._last_problem:
            log.log(level, "boot services: %s", problem)
            self._last_problem = problem

    def _where(self) -> str:
        netns = f" in network namespace {self.settings.netns}" if self.settings.netns else ""
        return f"interface {self.settings.interface}{netns}"

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception:  # boundary: the watch must go on
                log.exception("boot services check failed")
            self._stop.wait(CHECK_INTERVAL)
