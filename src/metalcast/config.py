"""Settings: one frozen model split by area, loaded once in the entry point.

Sources, strongest first: ``METALCAST_<AREA>__<KEY>`` environment variables (plus the
shortcuts ``METALCAST_STATE_DIR`` and ``METALCAST_DATABASE_URL``), a TOML file
(``--config`` or ``METALCAST_CONFIG``), then the defaults below.  Nothing here is read
at import time; :func:`load_settings` is called by the command that starts a process.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from metalcast.boot.settings import BootSettings
from metalcast.errors import InvalidInput


def _list_from_text(text: str) -> object:
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return text  # the model reports it as not a list
    return tuple(item.strip() for item in text.split(",") if item.strip())


class _Area(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _lists_from_text(cls, data: Any) -> Any:
        """A list setting given as one string (an environment variable, or Ironic's
        ``host:port,host:port``) is a JSON list or comma-separated."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            value = out.get(name)
            if isinstance(value, str) and get_origin(field.annotation) is tuple:
                out[name] = _list_from_text(value)
        return out


#: how callers prove who they are (``api.auth_strategy``); see docs/security.md
AUTH_STRATEGIES = ("auto", "noauth", "builtin", "header", "keystone")


class ApiSettings(_Area):
    host: str = "127.0.0.1"
    port: int = Field(default=6385, ge=1, le=65535)
    #: largest page the API returns; longer lists come with a ``next`` link
    max_limit: int = Field(default=1000, ge=1)
    #: "auto": "noauth" while the API listens on loopback, "builtin" beyond it;
    #: "noauth" trusts everyone as admin (loopback only); "builtin": metalcast's own
    #: users, projects and tokens; "header": X-Roles/X-Project-Id set by an
    #: authenticating proxy (loopback or ``trusted_proxies`` only); "keystone":
    #: Keystone tokens, validated by keystonemiddleware (the ``keystone`` area)
    auth_strategy: str = Field(default="auto", pattern=f"^({'|'.join(AUTH_STRATEGIES)})$")
    #: addresses or networks (CIDR) of proxies in front of the API: only their
    #: X-Forwarded-* headers (and, with "header", identity headers) are believed
    trusted_proxies: tuple[str, ...] = ()
    #: largest request body accepted, in bytes; larger ones get 413
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: an oslo.policy YAML or JSON file overriding the default rules (docs/policy.md)
    policy_file: Path | None = None
    #: seconds a "builtin" API token lives unless its creator asks for less
    token_ttl: float = Field(default=24 * 3600, gt=0)
    #: seconds a verified credential is remembered in memory (0: check every time)
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    #: serve HTTPS with this certificate chain (the server's own first) and its
    #: unencrypted key (PEM files); both or neither.  ``metalcast tls generate``
    #: makes a pair (docs/security.md, "TLS")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    public_url: str | None = None
    #: seconds a ramdisk agent may stay silent; sent to it by /v1/lookup (Ironic's
    #: [api]ramdisk_heartbeat_timeout)
    ramdisk_heartbeat_timeout: float = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        return self

    @property
    def scheme(self) -> str:
        """``https`` when the API serves TLS, else ``http``."""
        return "https" if self.tls_cert_file is not None else "http"


class KeystoneSettings(_Area):
    """Ironic's ``[keystone_authtoken]`` keys, for ``api.auth_strategy = "keystone"``:
    copy the section over (``METALCAST_KEYSTONE__AUTH_URL=...``).  They are handed to
    keystonemiddleware as they are; docs/auth.md lists which ones are required."""

    #: the public Keystone URL clients are sent to authenticate at (401 responses)
    www_authenticate_uri: str | None = None
    #: where metalcast's own service user authenticates to validate tokens
    auth_url: str | None = None
    #: keystoneauth's plugin for the service user: "password" or "v3password"
    auth_type: str = "password"
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    #: which of Keystone's catalog endpoints token validation goes to (public,
    #: internal or admin; keystonemiddleware's default)
    interface: str = "internal"
    #: the service type of metalcast in the catalog: application credentials with
    #: access rules are checked against it
    service_type: str = "baremetal"
    #: CA bundle to verify Keystone's certificate with; ``insecure`` skips the check
    cafile: Path | None = None
    insecure: bool = False
    #: seconds to wait for Keystone to answer a validation
    http_connect_timeout: int | None = Field(default=None, gt=0)
    #: memcached servers to share the token cache between processes (empty: in memory)
    memcached_servers: tuple[str, ...] = ()
    #: "None", "MAC" or "ENCRYPT": protect what memcached holds with ``memcache_secret_key``
    memcache_security_strategy: str = Field(default="None", pattern="^(?i:none|mac|encrypt)$")
    memcache_secret_key: SecretStr | None = None
    #: seconds a validated token is cached
    token_cache_time: int = Field(default=300, ge=-1)


class ConductorSettings(_Area):
    hostname: str = Field(default_factory=socket.gethostname)
    conductor_group: str = ""
    workers_pool_size: int = Field(default=100, ge=1)
    #: seconds between power-state sync passes; 0 disables the sync
    sync_power_state_interval: float = Field(default=60.0, ge=0)
    #: how many BMCs the sync queries at once
    sync_power_state_workers: int = Field(default=8, ge=1)
    #: make the BMC follow the recorded power state instead of recording the BMC's
    force_power_state_during_sync: bool = False
    #: seconds a node may sit in a wait state before it fails (0: never)
    deploy_callback_timeout: float = Field(default=1800, ge=0)
    clean_callback_timeout: float = Field(default=1800, ge=0)
    inspect_wait_timeout: float = Field(default=1800, ge=0)
    rescue_callback_timeout: float = Field(default=1800, ge=0)
    service_callback_timeout: float = Field(default=1800, ge=0)
    #: seconds between checks of wait-state timeouts
    check_timeouts_interval: float = Field(default=60.0, gt=0)
    #: where ``metalcast conductor`` takes the API processes' requests (sealed
    #: JSON-RPC over HTTP); port 0: any free port (it is registered with the
    #: conductor, so the API processes find it)
    rpc_host: str = "127.0.0.1"
    rpc_port: int = Field(default=0, ge=0, le=65535)
    #: seconds an API process waits for a conductor to answer one request
    rpc_timeout: float = Field(default=120.0, gt=0)
    #: seconds between heartbeats; a takeover check runs every quarter of it
    heartbeat_interval: float = Field(default=10.0, gt=0)
    #: a conductor silent for this long is considered dead, and its nodes taken over;
    #: must exceed ``heartbeat_interval`` (1.5 intervals by default, so that a takeover
    #: starts within timeout + interval/4 < 2 intervals of the last heartbeat)
    heartbeat_timeout: float = Field(default=15.0, gt=0)
    automated_clean: bool = True
    #: bytes of each node's console output kept (the last ones), readable with
    #: ``metalcast node console-log``
    console_log_bytes: int = Field(default=1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    #: seconds the URL of a websocket console (GET .../states/console) may be used
    #: to connect; a connection made in time stays open
    console_token_ttl: float = Field(default=300.0, gt=0, le=86400)
    node_locked_retry_attempts: int = Field(default=3, ge=0)
    node_locked_retry_interval: float = Field(default=0.1, ge=0)
    #: seconds SIGTERM waits for in-flight work before parking it
    graceful_shutdown_timeout: float = Field(default=60.0, ge=0)
    power_state_change_timeout: float = Field(default=60.0, gt=0)
    #: seconds one BMC call (IPMI or Redfish) may take, retransmissions included
    bmc_call_timeout: float = Field(default=20.0, gt=0)
    #: tries of a BMC call that is safe to repeat (reads, idempotent commands)
    bmc_call_attempts: int = Field(default=3, ge=1)
    #: seconds before the second try, doubled before each further one
    bmc_retry_backoff: float = Field(default=0.5, ge=0)
    #: seconds between power-state reads while confirming a power change
    bmc_poll_interval: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _timeout_after_interval(self) -> ConductorSettings:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_timeout ({self.heartbeat_timeout:g}s) must exceed "
                f"heartbeat_interval ({self.heartbeat_interval:g}s): a conductor would be "
                "declared dead between two of its own heartbeats"
            )
        return self


class CleaningSettings(_Area):
    """What cleaning erases, and how (Ironic's ``[deploy]`` erase options).

    Automated cleaning erases only the disks' metadata by default; the full erase
    (``erase_devices``) runs in automated cleaning with ``erase_devices_priority``
    above 0, and whenever manual cleaning asks for it."""

    #: priority of ``deploy.erase_devices`` in automated cleaning (0: manual only)
    erase_devices_priority: int = Field(default=0, ge=0, le=1000)
    #: priority of ``deploy.erase_devices_metadata`` (0: manual only)
    erase_devices_metadata_priority: int = Field(default=99, ge=0, le=1000)
    #: format NVMe namespaces with a secure erase setting (needs nvme-cli)
    enable_nvme_secure_erase: bool = True
    #: ATA Secure Erase where the disk supports it (needs hdparm)
    enable_ata_secure_erase: bool = True
    #: zero the disks that have no secure erase; off: only their metadata is erased
    shred_final_overwrite_with_zeros: bool = True
    #: overwrite a disk whose secure erase failed instead of failing the cleaning
    continue_if_disk_secure_erase_fails: bool = False


class DatabaseSettings(_Area):
    #: SQLAlchemy URL; empty means SQLite at <state_dir>/metalcast.sqlite
    url: str = ""


class EventsSettings(_Area):
    """The node event stream (GET /v1/events) and its log (docs/events.md)."""

    #: seconds between an API process's looks at the event log (one query per
    #: process, shared by all its subscribers)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    #: seconds between the comments that keep an idle stream open through proxies
    heartbeat_interval: float = Field(default=15.0, gt=0)
    #: streams one API process serves at once; more are refused with 503
    max_subscribers: int = Field(default=100, ge=1)
    #: seconds a stream lasts at most: the client reconnects with Last-Event-ID and
    #: its credentials are checked again (a revoked token stops seeing events)
    max_stream_seconds: float = Field(default=3600.0, gt=0)
    #: events kept: none older than this many seconds, at most ``keep_events``
    retention_seconds: float = Field(default=24 * 3600, gt=0)
    keep_events: int = Field(default=100_000, ge=100)
    #: seconds between prunings of the log (by the conductor)
    prune_interval: float = Field(default=600.0, gt=0)
    #: seconds between a conductor's passes over the webhooks (0: it sends none)
    webhook_interval: float = Field(default=1.0, ge=0)
    #: seconds one POST to a webhook may take
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    #: tries of one delivery before it is marked failed
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    #: seconds before the first retry; doubled for each next one, up to the cap
    webhook_retry_base: float = Field(default=5.0, ge=0)
    webhook_retry_cap: float = Field(default=600.0, ge=0)
    #: the networks (CIDR) webhook URLs may point into; empty: anywhere (webhooks
    #: are an administrator's, who is trusted; see docs/events.md on SSRF)
    webhook_destinations: tuple[str, ...] = ()
    #: seconds finished deliveries are kept for GET /v1/webhooks/{id}/deliveries
    webhook_keep_seconds: float = Field(default=7 * 24 * 3600, gt=0)

    @field_validator("webhook_destinations")
    @classmethod
    def _destinations(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP network (CIDR)") from None
        return networks


class ImagesSettings(_Area):
    #: where images are cached and served to agents from; None: <state_dir>/images
    cache_dir: Path | None = None
    #: least recently used images beyond this many bytes (on disk) are evicted
    cache_max_bytes: int = Field(default=20 * 2**30, ge=0)
    #: directories ``file://`` image sources (and local checksum files) may come from;
    #: only system administrators may set such sources.  They may not hold, or lie
    #: in, the state directory, the image cache or the config drives (refused at
    #: start).  In the environment: paths separated by commas, or a JSON list
    file_roots: tuple[Path, ...] = ()
    #: loopback, link-local or unspecified networks (CIDR) that http(s) image and
    #: config drive URLs set by non-administrators may reach all the same (e.g. an
    #: image mirror on 127.0.0.1); by default they may reach none (docs/security.md)
    allowed_internal_networks: tuple[str, ...] = ()
    #: seconds an image or config drive URL handed to an agent stays valid
    agent_url_ttl: float = Field(default=600.0, gt=0, le=24 * 3600)
    #: verify the TLS certificates of https image sources
    verify_tls: bool = True
    #: seconds without a byte before an image download fails
    download_timeout: float = Field(default=60.0, gt=0)
    configdrive_max_bytes: int = Field(default=64 * 2**20, ge=1)

    @field_validator("file_roots")
    @classmethod
    def _absolute(cls, roots: tuple[Path, ...]) -> tuple[Path, ...]:
        for root in roots:
            if not root.is_absolute() or ".." in root.parts:
                raise ValueError(f"{root} is not an absolute path without '..'")
        return roots

    @field_validator("allowed_internal_networks")
    @classmethod
    def _networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP network (CIDR)") from None
        return networks


class MetricsSettings(_Area):
    """Prometheus metrics (docs/metrics.md)."""

    #: serve the API's ``/metrics`` to anyone; otherwise, with authentication on, only
    #: to callers the policy rule ``metrics:get`` allows (system readers by default)
    public: bool = False


class SensorsSettings(_Area):
    """The periodic collection of the nodes' sensor readings (Ironic's
    ``send_sensor_data``), exported as metrics."""

    enabled: bool = True
    #: seconds between two passes over this conductor's nodes
    interval: float = Field(default=60.0, gt=0)
    #: how many BMCs are read at once
    workers: int = Field(default=4, ge=1, le=64)


class DiscoverySettings(_Area):
    """How a machine found by auto-discovery (``boot.discovery``) is enrolled
    (docs/discovery.md)."""

    #: the hardware type of a discovered node (its interfaces: the type's defaults)
    driver: str = Field(default="ipmi", min_length=1, max_length=255)
    #: BMC credentials given to every discovered node, as the driver's
    #: ``<prefix>_username``/``_password`` (``ipmi_``, ``redfish_``); None: none
    #: (an inspection rule may set them)
    bmc_username: str | None = Field(default=None, max_length=255)
    bmc_password: SecretStr | None = None
    #: where a discovered node ends: ``enroll``, or ``manageable`` (through
    #: ``verifying``, which needs its BMC to answer; else it stays in ``enroll``)
    state: str = Field(default="enroll", pattern="^(enroll|manageable)$")
    #: discoveries accepted per minute by one conductor; more are refused (503)
    max_per_minute: int = Field(default=30, ge=1, le=10_000)
    #: the resource class of a discovered node; None: none
    resource_class: str | None = Field(default=None, max_length=80)


class Settings(_Area):
    state_dir: Path = Path("/var/lib/metalcast")
    #: the CPU this process's threads run on (metalcast.cpus): "auto" keeps
    #: ``metalcast server``'s threads together on the least busy CPU (moving when
    #: other work crowds it) and leaves the API and conductor processes to the
    #: kernel; a CPU number keeps any metalcast process on that CPU; "off": the kernel
    cpu: str = Field(default="auto", pattern=r"^(auto|off|[0-9]+)$")
    api: ApiSettings = ApiSettings()
    keystone: KeystoneSettings = KeystoneSettings()
    conductor: ConductorSettings = ConductorSettings()
    cleaning: CleaningSettings = CleaningSettings()
    database: DatabaseSettings = DatabaseSettings()
    #: by default the lab's network: the boot services start inside it as soon as
    #: ``metalcast lab up`` creates it, and stop when it goes
    boot: BootSettings = BootSettings()
    images: ImagesSettings = ImagesSettings()
    metrics: MetricsSettings = MetricsSettings()
    sensors: SensorsSettings = SensorsSettings()
    events: EventsSettings = EventsSettings()
    discovery: DiscoverySettings = DiscoverySettings()

    @property
    def boot_services(self) -> BootSettings:
        """The boot services' settings, their TLS files defaulting to the API's."""
        if self.boot.tls_cert_file is not None or self.api.tls_cert_file is None:
            return self.boot
        return self.boot.model_copy(
            update={"tls_cert_file": self.api.tls_cert_file, "tls_key_file": self.api.tls_key_file}
        )

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the state directory."""
        return self.database.url or f"sqlite:///{self.state_dir / 'metalcast.sqlite'}"

    @property
    def images_dir(self) -> Path:
        """What the boot HTTP server serves at /images/: the image cache (``cache/``)
        and the config drives (``configdrive/``)."""
        return self.boot.images_dir or self.images.cache_dir or self.state_dir / "images"

    @property
    def private_paths(self) -> tuple[Path, ...]:
        """What no ``file://`` image source may ever name: the state directory (the
        secret key, the database), the images directory, a SQLite database kept
        elsewhere."""
        paths = [self.state_dir, self.images_dir]
        url = urlsplit(self.database_url)
        if url.scheme.startswith("sqlite") and url.path not in ("", "/", "/:memory:"):
            database = Path(unquote(url.path[1:]))  # sqlite:////abs -> /abs
            paths += [database.parent / f"{database.name}{end}" for end in _SQLITE_FILES]
        return tuple(paths)

    @model_validator(mode="after")
    def _file_roots_apart(self) -> Settings:
        for root in self.images.file_roots:
            for private in self.private_paths:
                if overlaps(root, private):
                    raise ValueError(
                        f"images.file_roots: {root} overlaps {private}, which holds the "
                        "server's secret key, database, image cache or config drives; "
                        "list only directories of images to deploy"
                    )
        return self


#: the files of one SQLite database
_SQLITE_FILES = ("", "-wal", "-shm", "-journal")


def overlaps(one: Path, other: Path) -> bool:
    """Whether ``one`` and ``other`` (symlinks and ``..`` resolved) are the same
    directory or one lies inside the other."""
    a, b = one.resolve(), other.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/metalcast")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "metalcast"


#: the client's variables (``metalcast`` talking to a server), not server settings: an
#: operator who exported them for the CLI still runs ``metalcast server`` or
#: ``metalcast db copy`` in the same shell
CLIENT_VARIABLES = frozenset(
    {
        "METALCAST_CONFIG",
        "METALCAST_URL",
        "METALCAST_USERNAME",
        "METALCAST_PASSWORD",
        "METALCAST_TOKEN",
        "METALCAST_CACERT",
        "METALCAST_API_VERSION",
    }
)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn METALCAST_AREA__KEY=value variables into a nested dict."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("METALCAST_") or key in CLIENT_VARIABLES:
            continue
        name = key[len("METALCAST_") :].lower()
        if name == "database_url":
            out.setdefault("database", {})["url"] = value
        elif "__" in name:
            area, field = name.split("__", 1)
            out.setdefault(area, {})[field] = value
        else:
            out[name] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build the settings from defaults, a TOML file and the environment.

    Raises:
        InvalidInput: the file is unreadable or a value is invalid; the message
            names the setting and what is wrong with it.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_file or (Path(env["METALCAST_CONFIG"]) if env.get("METALCAST_CONFIG") else None)
    data: dict[str, Any] = {"state_dir": str(_default_state_dir())}
    if path is not None:
        try:
            data = _merge(data, tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"Cannot read configuration file {path}: {exc}") from exc
    data = _merge(data, _env_overrides(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"Invalid settings: {problems}") from exc
