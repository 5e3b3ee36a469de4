"""Settings: one frozen model split by area, loaded once in the entry point.

Sources, strongest first: ``METALCAST_<AREA>__<KEY>`` environment variables (plus the
shortcuts ``METALCAST_STATE_DIR`` and ``METALCAST_DATABASE_URL``), a TOML file
(``--config`` or ``METALCAST_CONFIG``), then the defaults below.  Nothing here is read
at import time; :func:`load_settings` is called by the command that starts a process.
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from metalcast.boot.settings import BootSettings
from metalcast.errors import InvalidInput


class _Area(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    copy the section over (``METALCAST_KEYSTONE__AUTH_URL=...``)."""

    #: the public Keystone URL clients are sent to authenticate at (401 responses)
    www_authenticate_uri: str | None = None
    #: where metalcast's own service user authenticates to validate tokens
    auth_url: str | None = None
    auth_type: str = "password"
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    #: CA bundle to verify Keystone's certificate with; ``insecure`` skips the check
    cafile: Path | None = None
    insecure: bool = False
    #: memcached servers to share the token cache between processes (empty: in memory)
    memcached_servers: tuple[str, ...] = ()
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
    heartbeat_interval: float = Field(default=10.0, gt=0)
    #: a conductor silent for this long is considered dead
    heartbeat_timeout: float = Field(default=60.0, gt=0)
    automated_clean: bool = True
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


class DatabaseSettings(_Area):
    #: SQLAlchemy URL; empty means SQLite at <state_dir>/metalcast.sqlite
    url: str = ""


class ImagesSettings(_Area):
    #: where images are cached and served to agents from; None: <state_dir>/images
    cache_dir: Path | None = None
    #: least recently used images beyond this many bytes (on disk) are evicted
    cache_max_bytes: int = Field(default=20 * 2**30, ge=0)
    #: directories ``file://`` image sources may come from (administrators only; the
    #: state directory never)
    file_roots: tuple[Path, ...] = ()
    #: verify the TLS certificates of https image sources
    verify_tls: bool = True
    #: seconds without a byte before an image download fails
    download_timeout: float = Field(default=60.0, gt=0)
    configdrive_max_bytes: int = Field(default=64 * 2**20, ge=1)


class Settings(_Area):
    state_dir: Path = Path("/var/lib/metalcast")
    api: ApiSettings = ApiSettings()
    keystone: KeystoneSettings = KeystoneSettings()
    conductor: ConductorSettings = ConductorSettings()
    database: DatabaseSettings = DatabaseSettings()
    #: by default the lab's network: the boot services start inside it as soon as
    #: ``metalcast lab up`` creates it, and stop when it goes
    boot: BootSettings = BootSettings()
    images: ImagesSettings = ImagesSettings()

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


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/metalcast")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "metalcast"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn METALCAST_AREA__KEY=value variables into a nested dict."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("METALCAST_") or key == "METALCAST_CONFIG":
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
