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
"""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

from metalcast.boot.errors import BootError
from metalcast.boot.ipxe import NodeBoot, remove_node_files, write_node_files
from metalcast.boot.service import BootHealth, BootServices
from metalcast.boot.settings import BootSettings

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


class BootSupervisor:
    """Starts, watches and stops one :class:`BootServices`."""

    def __init__(self, services: BootServices) -> None:
        self.services = services
        self.settings = services.settings
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None

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
        """Stop watching, and stop the services if they run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            self._halt()

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
            write_node_files(
                self.services.layout,
                node,
                settings=self.settings,
                api_url=self.services.node_api_url,
            )

    def clean_node(self, node_uuid: str) -> None:
        """Remove ``node_uuid``'s boot files.  Raises BootError."""
        with self._lock:
            if self._running:
                self.services.clean_node(node_uuid)
                return
            remove_node_files(self.services.layout, node_uuid)

    def check_once(self) -> None:
        """One look: start the services, restart them, or stop them, as needed."""
        with self._lock:
            present = interface_exists(self.settings)
            if not present:
                if self._running:
                    log.warning("boot services: %s is gone; stopping", self._where())
                    self._halt()
                self._note(f"waiting for {self._where()} to exist")
                return
            if self._running and self.services.health().healthy:
                return
            if self._running:
                log.warning("boot services unhealthy on %s; restarting", self._where())
                self._halt()
            self._begin()

    def _begin(self) -> None:
        try:
            self.services.start()
        except BootError as exc:
            self._note(f"cannot start on {self._where()}: {exc}")
            return
        self._running = True
        self._last_problem = None
        log.info("boot services running on %s (%s)", self._where(), self.settings.agent_url)

    def _halt(self) -> None:
        if self._running:
            self._running = False
            try:
                self.services.stop()
            except BootError:
                log.exception("boot services did not stop cleanly")

    def _note(self, problem: str) -> None:
        if problem != self._last_problem:
            log.info("boot services: %s", problem)
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
