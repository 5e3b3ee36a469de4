"""What every conductor module shares: settings, database, drivers, secrets, clock,
workers.  One :class:`Runtime` per conductor, built by the service and passed down."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from metalcast.conductor.clock import Clock
from metalcast.conductor.workers import WorkerPool
from metalcast.config import ConductorSettings
from metalcast.db.engine import Database
from metalcast.drivers.registry import DriverRegistry
from metalcast.images.cache import ImageCache
from metalcast.secrecy import SecretBox


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a driver call that raised ``RetryableDriverError`` is tried again."""

    attempts: int = 3
    #: seconds before the second attempt; doubled for each further one
    backoff: float = 0.2


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
    #: images for agent-driven deploys, cached and served to agents (None: no deploys
    #: through an agent in this conductor)
    images: ImageCache | None = None
    #: where config drives are built for agents to download (served with the images)
    configdrive_dir: Path | None = None
    configdrive_max_bytes: int = 64 * 2**20

    @property
    def hostname(self) -> str:
        return self.settings.hostname
