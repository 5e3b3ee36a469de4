"""``metalcast tls generate`` and the client's ``--cacert``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from metalcast.cli.main import app

ENV = {"COLUMNS": "200", "METALCAST_CONFIG": ""}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(value) for value in names.get_values_for_type(x509.DNSName)] + [
        str(value) for value in names.get_values_for_type(x509.IPAddress)
    ]


def test_generate_writes_into_the_state_dir_and_says_what_to_set(tmp_path: Path) -> None:
    code, out, _ = run(
        "tls", "generate", "--state-dir", str(tmp_path), "--name", "api.example",
        env={"METALCAST_BOOT__ADDRESS": "10.9.8.1", "METALCAST_API__HOST": "0.0.0.0"},
    )  # fmt: skip
    assert code == 0, out
    tls = tmp_path / "tls"
    names = sans(tls / "server.pem")
    for wanted in ("localhost", "api.example", socket.gethostname(), "127.0.0.1", "::1"):
        assert wanted in names
    assert "10.9.8.1" in names  # the boot network's address: the agents reach it there
    assert "0.0.0.0" not in names
    assert f"METALCAST_API__TLS_CERT_FILE={tls / 'server.pem'}" in out
    assert f"METALCAST_API__TLS_KEY_FILE={tls / 'server.key'}" in out
    assert f"METALCAST_BOOT__TLS_CA_FILE={tls / 'ca.pem'}" in out
    assert f"--os-cacert {tls / 'ca.pem'}" in out
    assert "Wrote a new CA and a server certificate" in out


def test_generate_again_keeps_the_ca_and_json_lists_the_files(tmp_path: Path) -> None:
    directory = tmp_path / "elsewhere"
    assert run("tls", "generate", "--state-dir", str(tmp_path), "--dir", str(directory))[0] == 0
    ca = (directory / "ca.pem").read_bytes()
    code, out, _ = run(
        "tls", "generate", "--state-dir", str(tmp_path), "--dir", str(directory), "--json"
    )
    assert code == 0
    shown = json.loads(out)
    assert shown["new_ca"] is False
    assert shown["files"]["ca_cert"] == str(directory / "ca.pem")
    assert (directory / "ca.pem").read_bytes() == ca
    assert not (tmp_path / "tls").exists()


def test_generate_refuses_a_bad_name(tmp_path: Path) -> None:
    code, _, err = run("tls", "generate", "--state-dir", str(tmp_path), "--name", "a b")
    assert code == 1
    assert "'a b' is neither an IP address nor a DNS host name" in err
    assert not (tmp_path / "tls").exists()


def test_an_unusable_cacert_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = run(
        "--url", "https://127.0.0.1:1", "--cacert", str(tmp_path / "missing.pem"), "node", "list"
    )
    assert code == 1
    assert f"Cannot use --cacert {tmp_path / 'missing.pem'} to verify servers" in err
