"""Where agents' download URLs point when ``boot.node_api_url`` sends the agents to
another API: still the boot server, over HTTPS when it serves TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from metalcast.boot.settings import BootSettings
from metalcast.conductor.service import ConductorService
from metalcast.config import ApiSettings, Settings
from metalcast.db.engine import Database
from metalcast.drivers.registry import default_registry
from metalcast.secrecy import SecretBox

API_TLS = {"tls_cert_file": Path("/etc/pki/api.pem"), "tls_key_file": Path("/etc/pki/api.key")}


def download_base(tmp_path: Path, settings: Settings) -> str:
    db = Database(f"sqlite:///{tmp_path / 'metalcast.sqlite'}")
    db.migrate()
    try:
        box = SecretBox(Fernet.generate_key())
        service = ConductorService(settings, db, default_registry(), box)
        return service.rt.download_base
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("api", "node_api_url", "expected"),
    [
        ({}, None, ""),  # relative: the agent resolves it against the boot server
        (API_TLS, None, ""),
        ({}, "http://api.example:6385", "http://192.168.77.1:8080"),
        (API_TLS, "https://api.example:6385", "https://192.168.77.1:8443"),
    ],
)
def test_downloads_come_from_the_boot_server_over_its_agents_scheme(
    tmp_path: Path, api: dict[str, Path], node_api_url: str | None, expected: str
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        api=ApiSettings(**api),
        boot=BootSettings(address="192.168.77.1", node_api_url=node_api_url),
    )
    assert download_base(tmp_path, settings) == expected
