"""What every conductor module shares: settings, database, drivers, secrets, clock,
workers.  One :class:`Runtime` per conductor, built by the service and passed down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from metalcast.agent_downloads import UrlSigner
from metalcast.conductor.clock import Clock
from metalcast.conductor.ring import ConductorRing
from metalcast.conductor.task import LockReleases
from metalcast.conductor.workers import WorkerPool
from metalcast.config import ConductorSettings
from metalcast.db.engine import Database
from metalcast.db.models import Node
from metalcast.drivers.registry import DriverRegistry
from metalcast.images.cache import ImageCache
from metalcast.images.configdrive import ConfigDriveStore
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a driver call that raised ``RetryableDriverError`` is tried again."""

    attempts: int = 3
    #: seconds before the second attempt; doubled for each further one
    backoff: float = 0.2


class LostLocks:
    """Nodes a task of this process left locked because the database went away as it
    took the lock, recorded the outcome or released the lock: no task runs them any
    more, yet the lock says one does.  The catch-up pass after a heartbeat hands them
    to :func:`metalcast.conductor.recovery.recover_lost_locks` once the database
    answers again.

    A commit whose answer was lost may have been applied or not, so a node may be
    recorded here that a live task of this process holds after all (its release went
    through; a later request locked it again).  Every exclusive task therefore
    *claims* its node from just before it asks for the lock until it lets it go, and
    :meth:`take` holds claimed nodes back for a later pass: recovery never fails the
    work of a task that is running."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._claims: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, *node_ids: int) -> None:
        with self._lock:
            self._ids.update(node_ids)

    def claim(self, node_id: int) -> None:
        """A task of this process holds the node's lock, or is about to ask for it."""
        with self._lock:
            self._claims[node_id] = self._claims.get(node_id, 0) + 1

    def unclaim(self, node_id: int) -> None:
        """The task that claimed the node let it go (or did not get the lock)."""
        with self._lock:
            left = self._claims.get(node_id, 0) - 1
            if left > 0:
                self._claims[node_id] = left
            else:
                self._claims.pop(node_id, None)

    def claimed(self, node_id: int) -> bool:
        with self._lock:
            return node_id in self._claims

    def take(self) -> list[int]:
        """Every node recorded so far that no task of this process claims (sorted),
        forgotten here; claimed ones stay for a later call."""
        with self._lock:
            ids = sorted(i for i in self._ids if i not in self._claims)
            self._ids.difference_update(ids)
        return ids


@dataclass(slots=True)
class Runtime:
    """The shared dependencies of one conductor."""

    settings: ConductorSettings
    db: Database
    registry: DriverRegistry
    secret_box: SecretBox
    clock: Clock
    workers: WorkerPool
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: set when shutdown stopped waiting: running tasks must not write anything more
    parked: threading.Event = field(default_factory=threading.Event)
    #: nodes left locked by tasks that lost the database (recovered by the heartbeat)
    lost_locks: LostLocks = field(default_factory=LostLocks)
    #: wakes tasks waiting for a node's lock when one of ours releases it
    lock_releases: LockReleases = field(default_factory=LockReleases)
    #: images for agent-driven deploys, cached and served to agents (None: no deploys
    #: through an agent in this conductor)
    images: ImageCache | None = None
    #: where config drives are built for agents to download (served with the images)
    configdrives: ConfigDriveStore | None = None
    #: signs the image and config drive URLs handed to agents (the boot HTTP server
    #: checks them with the same key)
    signer: UrlSigner | None = None
    #: what those URLs are relative to: "" (the API URL the agent was booted with,
    #: the boot HTTP server's relay) or the boot HTTP server's own URL
    download_base: str = ""
    #: seconds a signed URL stays valid
    agent_url_ttl: float = 600.0
    #: which live conductor serves each node (None: no check, every node is served here)
    ring: ConductorRing | None = None
    #: this conductor's row in the conductors table (``conductors.id``), once started:
    #: what ``nodes.conductor_affinity`` names when this conductor prepared a boot
    conductor_id: int | None = None

    @property
    def hostname(self) -> str:
        return self.settings.hostname

    def owned(self) -> Callable[[Node], bool]:
        """Whether a node is this conductor's: the ring's owner of it (the rings read
        once, here), or, without a ring, a node of its conductor group."""
        ring = self.ring
        if ring is None:
            group = self.settings.conductor_group
            return lambda node: node.conductor_group == group
        rings = ring.rings()
        return lambda node: ring.owns(node, rings=rings)

    def discard_config_drive(self, node_uuid: str) -> None:
        """Remove ``node_uuid``'s config drive, if it has one.  A failure is logged,
        not raised: the caller is ending an operation that must end all the same."""
        if self.configdrives is None:
            return
        try:
            if self.configdrives.remove(node_uuid):
                _log.info("%s: config drive removed", node_uuid)
        except OSError as exc:
            _log.error("%s: cannot remove the config drive: %s", node_uuid, exc)
