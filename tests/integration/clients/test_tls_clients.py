"""The API over HTTPS: a real ``metalcast server`` with a certificate from
``metalcast tls generate``, driven by the unmodified ``baremetal`` CLI, openstacksdk
and the ``metalcast`` CLI trusting its CA, and refused by those that do not; and the
start-ups that must not happen."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions
from server_process import free_port, server_command

BAREMETAL = shutil.which("baremetal", path=str(Path(sys.executable).parent)) or "baremetal"


def metalcast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", *args],
        env={**clean, **(env or {})}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and server certificate made by ``metalcast tls generate``."""
    directory = tmp_path_factory.mktemp("pki")
    done = metalcast("tls", "generate", "--state-dir", str(directory), "--dir", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("other")
    done = metalcast("tls", "generate", "--state-dir", str(directory), "--dir", str(directory))
    assert done.returncode == 0, done.stderr
    return directory / "ca.pem"


def tls_env(pki: Path) -> dict[str, str]:
    return {
        "METALCAST_API__TLS_CERT_FILE": str(pki / "server.pem"),
        "METALCAST_API__TLS_KEY_FILE": str(pki / "server.key"),
    }


@pytest.fixture(scope="module")
def server(start_metalcast_server: Callable[..., Any], pki: Path) -> Iterator[Any]:
    with start_metalcast_server(env=tls_env(pki), cacert=pki / "ca.pem") as running:
        yield running


def baremetal(url: str, *args: str, cacert: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_ENDPOINT": url, "OS_AUTH_TYPE": "none"}
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN", "OS_CACERT"):
        env.pop(var, None)
    trust = ["--os-cacert", str(cacert)] if cacert else []
    return subprocess.run(
        [BAREMETAL, *trust, *args], env=env, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


def test_the_server_says_it_listens_on_https(server: Any) -> None:
    assert server.url.startswith("https://")
    banner = server.stdout_path.read_text()
    assert f"metalcast server listening on {server.url} " in banner


def test_baremetal_with_the_ca_works(server: Any, pki: Path) -> None:
    created = baremetal(
        server.url, "node", "create", "--driver", "fake-hardware", "--name", "tls-bm",
        "-f", "json", cacert=pki / "ca.pem",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    shown = baremetal(server.url, "node", "show", "tls-bm", "-f", "json", cacert=pki / "ca.pem")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["provision_state"] == "enroll"


@pytest.mark.parametrize("trust", ["another CA", "the system store"])
def test_baremetal_without_the_ca_is_refused(server: Any, other_ca: Path, trust: str) -> None:
    listed = baremetal(
        server.url, "node", "list", cacert=other_ca if trust == "another CA" else None
    )
    assert listed.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in listed.stderr, listed.stderr


def sdk(url: str, cacert: Path) -> openstack.connection.Connection:
    return openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=url,
        cacert=str(cacert),
        load_yaml_config=False,
        load_envvars=False,
    )


def test_openstacksdk_with_the_ca_works_and_without_is_refused(
    server: Any, pki: Path, other_ca: Path
) -> None:
    conn = sdk(server.url, pki / "ca.pem")
    node = conn.baremetal.create_node(driver="fake-hardware", name="tls-sdk")
    assert conn.baremetal.get_node(node.id).name == "tls-sdk"
    # the same calls trusting another CA: keystoneauth's discovery fails first, on the
    # handshake (it says "unavailable", having swallowed the SSL error)
    stranger = sdk(server.url, other_ca)
    with pytest.raises((exceptions.SDKException, ksa_exceptions.ClientException)):
        list(stranger.baremetal.nodes())


def test_the_metalcast_cli_trusts_cacert_or_metalcast_cacert(
    server: Any, pki: Path, other_ca: Path
) -> None:
    ca = str(pki / "ca.pem")
    flagged = metalcast("--url", server.url, "--cacert", ca, "--json", "node", "list")
    assert flagged.returncode == 0, flagged.stderr
    variable = metalcast(
        "--url", server.url, "--json", "node", "list", env={"METALCAST_CACERT": ca}
    )
    assert variable.returncode == 0, variable.stderr
    assert json.loads(flagged.stdout) == json.loads(variable.stdout)
    for env in ({}, {"METALCAST_CACERT": str(other_ca)}):
        refused = metalcast("--url", server.url, "node", "list", env=env)
        assert refused.returncode == 1
        assert f"cannot trust {server.url}" in refused.stderr
        assert "--cacert" in refused.stderr


def test_plain_http_gets_no_answer_from_the_tls_port(server: Any) -> None:
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/v1", timeout=5)


def start_refused(state_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    return subprocess.run(
        server_command(port=free_port(), state_dir=state_dir),
        env={**clean, "METALCAST_BOOT__ENABLED": "false", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_start_up_refuses_bad_tls_files(tmp_path: Path, pki: Path, other_ca: Path) -> None:
    key_of_another = {
        **tls_env(pki),
        "METALCAST_API__TLS_KEY_FILE": str(other_ca.parent / "ca.key"),
    }
    cases = [
        (key_of_another, "api.tls_key_file", "is not the key of api.tls_cert_file"),
        ({"METALCAST_API__TLS_CERT_FILE": str(pki / "server.pem")}, "api:", "set both"),
        (
            {**tls_env(pki), "METALCAST_API__TLS_CERT_FILE": str(tmp_path / "gone.pem")},
            "Cannot read api.tls_cert_file",
            "No such file",
        ),
    ]
    for env, first, second in cases:
        done = start_refused(tmp_path / "state", env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert first in done.stderr and second in done.stderr, done.stderr
        assert "listening" not in done.stdout


def test_builtin_credentials_go_only_to_a_server_the_cli_trusts(
    start_metalcast_server: Callable[..., Any], pki: Path, other_ca: Path
) -> None:
    env = {**tls_env(pki), "METALCAST_API__AUTH_STRATEGY": "builtin"}
    with start_metalcast_server(env=env, cacert=pki / "ca.pem") as server:
        shown = server.stdout_path.read_text()
        (password,) = re.findall(r"^\s+password: (\S+)$", shown, re.MULTILINE)
        assert f"export METALCAST_URL={server.url} " in shown  # the https URL
        login = {"METALCAST_USERNAME": "admin", "METALCAST_PASSWORD": password}
        ca = ["--url", server.url, "--cacert", str(pki / "ca.pem")]
        who = metalcast(*ca, "--json", "whoami", env=login)
        assert who.returncode == 0, who.stderr
        assert json.loads(who.stdout)["user_name"] == "admin"
        anonymous = metalcast(*ca, "node", "list")
        assert anonymous.returncode == 1
        assert "Authentication required" in anonymous.stderr, anonymous.stderr
        stranger = metalcast(
            "--url", server.url, "--cacert", str(other_ca), "whoami", env=login
        )  # fmt: skip
        assert stranger.returncode == 1
        assert f"cannot trust {server.url}" in stranger.stderr
