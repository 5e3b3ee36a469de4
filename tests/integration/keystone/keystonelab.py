"""A real Keystone on loopback, and the people who use metalcast through it.

Keystone (from PyPI, in ``.venv-keystone``, which ``scripts/install --test``
creates) runs with SQLite and Fernet tokens in a temporary directory, bootstrapped
with ``keystone-manage`` and served by waitress on a free 127.0.0.1 port
(:func:`running_keystone`).  :data:`PERSONAS` are the users the tests act as: two
projects with members and a reader, a system administrator and a system reader;
:func:`create_personas` makes them, :meth:`Persona.os_env` and
:meth:`Persona.connect` log in as them with the ``baremetal`` CLI's variables and
with openstacksdk.  :data:`SERVICE_USER` is metalcast's own service user. :func:`running_memcached`
runs a memcached for the shared token cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import openstack
import pytest

REPO = Path(__file__).resolve().parents[3]
VENV = Path(os.environ.get("METALCAST_TEST_KEYSTONE_VENV", REPO / ".venv-keystone"))
SERVE = Path(__file__).with_name("serve_keystone.py")
REGION = "RegionOne"
DOMAIN = "Default"
ADMIN_PASSWORD = "bootstrap-admin-pw"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port nothing listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Keystone:
    """A running Keystone."""

    url: str
    workdir: Path
    access_log: Path
    process: subprocess.Popen[bytes]

    def validations(self, token: str) -> int:
        """How many times someone asked Keystone to validate ``token``."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        lines = self.access_log.read_text().splitlines()
        return sum(1 for line in lines if line.startswith("GET /v3/auth/tokens ") and
                   line.endswith(f" {digest}"))  # fmt: skip

    def logs(self) -> str:
        """What Keystone wrote so far (for failure messages)."""
        parts = []
        for name in ("keystone.log", "serve.stderr"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def admin(self) -> openstack.connection.Connection:
        """openstacksdk as the bootstrap administrator (system scope)."""
        return openstack.connect(
            auth_url=self.url,
            username="admin",
            password=ADMIN_PASSWORD,
            user_domain_name=DOMAIN,
            system_scope="all",
            region_name=REGION,
            load_yaml_config=False,
            load_envvars=False,
        )


def _config(workdir: Path) -> Path:
    conf = workdir / "keystone.conf"
    for name in ("fernet-keys", "credential-keys"):
        (workdir / name).mkdir(mode=0o700)
    conf.write_text(
        f"[DEFAULT]\nlog_file = {workdir / 'keystone.log'}\n"
        f"[database]\nconnection = sqlite:///{workdir / 'keystone.db'}\n"
        f"[fernet_tokens]\nkey_repository = {workdir / 'fernet-keys'}\n"
        f"[credential]\nkey_repository = {workdir / 'credential-keys'}\n"
        # bcrypt's cheapest cost: these passwords guard nothing
        "[identity]\npassword_hash_rounds = 4\n"
    )
    return conf


def _manage(conf: Path, *commands: tuple[str, ...]) -> None:
    """Run ``keystone-manage`` once per command, all at once."""
    processes = [
        subprocess.Popen(
            [str(VENV / "bin" / "keystone-manage"), "--config-file", str(conf), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    failures = []
    for command, process in zip(commands, processes, strict=True):
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(f"keystone-manage {command[0]} failed:\n{stderr[-4000:]}")
    if failures:
        pytest.fail("\n".join(failures))


def _bootstrap(conf: Path, url: str) -> None:
    owner = ("--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid()))
    # the key repositories do not depend on the database
    _manage(conf, ("db_sync",), ("fernet_setup", *owner), ("credential_setup", *owner))
    _manage(conf, (
        "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
        "--bootstrap-region-id", REGION,
        "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
    ))  # fmt: skip


def _wait_until_ready(keystone: Keystone) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if keystone.process.poll() is not None:
            pytest.fail(f"Keystone exited with {keystone.process.returncode}\n{keystone.logs()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(keystone.url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"Keystone did not answer within {START_TIMEOUT}s\n{keystone.logs()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_keystone(workdir: Path) -> Iterator[Keystone]:
    """Bootstrap and serve Keystone in ``workdir``; stop it on the way out.

    Fails the test (with how to fix it) when ``.venv-keystone`` is missing.
    """
    if not (VENV / "bin" / "keystone-manage").exists():
        pytest.fail(f"no Keystone in {VENV}: run scripts/install --test")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v3"
    conf = _config(workdir)
    _bootstrap(conf, url)
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    access_log = workdir / "access.log"
    with (workdir / "serve.stderr").open("wb") as err:
        process = subprocess.Popen(
            [str(VENV / "bin" / "python"), str(SERVE), str(port), str(access_log)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    keystone = Keystone(url, workdir, access_log, process)
    try:
        _wait_until_ready(keystone)
        yield keystone
    finally:
        _stop(process)


# ------------------------------------------------------------------------ people


@dataclass(frozen=True)
class Persona:
    """A Keystone user and the scope they log in with.

    ``project`` is the name of the project they work in; None for a system-scoped
    login (``OS_SYSTEM_SCOPE=all``).
    """

    username: str
    role: str
    project: str | None = None

    @property
    def password(self) -> str:
        return f"{self.username}-pw"

    def scope(self) -> dict[str, str]:
        """openstacksdk's scope arguments."""
        if self.project is None:
            return {"system_scope": "all"}
        return {"project_name": self.project, "project_domain_name": DOMAIN}

    def os_env(self, keystone: Keystone) -> dict[str, str]:
        """The ``OS_*`` variables of the ``baremetal`` CLI (password auth)."""
        env = {
            "OS_AUTH_TYPE": "password",
            "OS_AUTH_URL": keystone.url,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_USERNAME": self.username,
            "OS_PASSWORD": self.password,
            "OS_USER_DOMAIN_NAME": DOMAIN,
            "OS_REGION_NAME": REGION,
            "OS_INTERFACE": "public",
        }
        if self.project is None:
            env["OS_SYSTEM_SCOPE"] = "all"
        else:
            env["OS_PROJECT_NAME"] = self.project
            env["OS_PROJECT_DOMAIN_NAME"] = DOMAIN
        return env

    def connect(self, keystone: Keystone, **options: Any) -> openstack.connection.Connection:
        """openstacksdk logged in as this persona; metalcast is found in the catalog
        (or at ``baremetal_endpoint_override=URL`` among ``options``)."""
        return openstack.connect(
            auth_url=keystone.url,
            username=self.username,
            password=self.password,
            user_domain_name=DOMAIN,
            region_name=REGION,
            load_yaml_config=False,
            load_envvars=False,
            **self.scope(),
            **options,
        )

    def token(self, keystone: Keystone) -> str:
        """A fresh token of this persona."""
        token: str = self.connect(keystone).auth_token
        return token


#: the projects tenants work in
PROJECTS = ("project-a", "project-b")
#: metalcast's service user: validates tokens (Keystone's "service" role may)
SERVICE_USER = Persona("metalcast", "service", "service")
#: who the tests act as
PERSONAS: Mapping[str, Persona] = {
    "system-admin": Persona("sysadmin", "admin"),
    "system-reader": Persona("sysreader", "reader"),
    "a-member": Persona("alice", "member", "project-a"),
    "a-reader": Persona("carol", "reader", "project-a"),
    "b-member": Persona("bob", "member", "project-b"),
}


@dataclass(frozen=True)
class Tenancy:
    """The personas made in one Keystone, and their projects' ids."""

    keystone: Keystone
    project_ids: Mapping[str, str]

    def persona(self, name: str) -> Persona:
        return PERSONAS[name]


def create_personas(keystone: Keystone) -> Tenancy:
    """Make :data:`PROJECTS`, :data:`PERSONAS` and :data:`SERVICE_USER` in ``keystone``."""
    admin = keystone.admin()
    identity: Any = admin.identity
    domain = identity.find_domain(DOMAIN, ignore_missing=False)
    roles = {role.name: role for role in identity.roles()}
    if "service" not in roles:
        roles["service"] = identity.create_role(name="service")
    project_ids = {}
    for name in (*PROJECTS, "service"):
        project_ids[name] = identity.create_project(name=name, domain_id=domain.id).id
    for persona in (*PERSONAS.values(), SERVICE_USER):
        user = identity.create_user(
            name=persona.username, password=persona.password, domain_id=domain.id
        )
        role = roles[persona.role]
        if persona.project is None:
            identity.assign_system_role_to_user(user, role, "all")
        else:
            identity.assign_project_role_to_user(project_ids[persona.project], user, role)
    admin.close()
    return Tenancy(keystone, project_ids)


def register_baremetal(keystone: Keystone, url: str) -> None:
    """Put metalcast at ``url`` in Keystone's catalog as the baremetal service."""
    admin = keystone.admin()
    identity: Any = admin.identity
    service = identity.create_service(name="ironic", type="baremetal", is_enabled=True)
    for interface in ("public", "internal"):
        identity.create_endpoint(
            service_id=service.id, interface=interface, url=url, region_id=REGION
        )
    admin.close()


def metalcast_env(keystone: Keystone, **extra: str) -> dict[str, str]:
    """A ``metalcast server``'s environment: the keystone strategy against ``keystone``,
    with Ironic's ``[keystone_authtoken]`` keys."""
    return {
        "METALCAST_API__AUTH_STRATEGY": "keystone",
        "METALCAST_KEYSTONE__WWW_AUTHENTICATE_URI": keystone.url,
        "METALCAST_KEYSTONE__AUTH_URL": keystone.url,
        "METALCAST_KEYSTONE__AUTH_TYPE": "password",
        "METALCAST_KEYSTONE__USERNAME": SERVICE_USER.username,
        "METALCAST_KEYSTONE__PASSWORD": SERVICE_USER.password,
        "METALCAST_KEYSTONE__PROJECT_NAME": "service",
        "METALCAST_KEYSTONE__USER_DOMAIN_NAME": DOMAIN,
        "METALCAST_KEYSTONE__PROJECT_DOMAIN_NAME": DOMAIN,
        "METALCAST_KEYSTONE__REGION_NAME": REGION,
        **extra,
    }


# ---------------------------------------------------------------------- memcached


@contextlib.contextmanager
def running_memcached() -> Iterator[str]:
    """A memcached of its own on a free loopback port; yields ``127.0.0.1:PORT``.

    Fails the test (with how to fix it) when Debian's memcached is not installed.
    """
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed: run scripts/install --test")
    port = free_port()
    # memcached refuses to run as root unless told which user to be
    user = ["-u", "root"] if os.getuid() == 0 else []
    process = subprocess.Popen(
        [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16", *user],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"memcached did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


def memcached_items(address: str) -> dict[str, bytes]:
    """Every key memcached at ``address`` holds, with its raw value."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), 5) as sock:
        stream = sock.makefile("rwb")
        stream.write(b"lru_crawler metadump all\r\n")
        stream.flush()
        keys = []
        for line in iter(stream.readline, b"END\r\n"):
            fields = dict(item.split(b"=", 1) for item in line.split() if b"=" in item)
            keys.append(unquote(fields[b"key"].decode()))
        items = {}
        for key in keys:
            stream.write(f"get {key}\r\n".encode())
            stream.flush()
            header = stream.readline().split()
            if header[0] == b"VALUE":
                items[key] = stream.read(int(header[3]) + 2)[:-2]
                stream.readline()  # END
    return items
