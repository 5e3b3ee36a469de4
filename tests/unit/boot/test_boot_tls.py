"""The boot services with TLS: settings, the CA initrd and the scripts that load it,
the start-up checks, the plain port that serves boot files only, and the relay's
view of the scheme the agent used."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from metalcast.boot.errors import BootSetupError
from metalcast.boot.http import create_app, create_files_app
from metalcast.boot.ipxe import (
    BootProtocol,
    NodeBoot,
    NodePort,
    install_boot_files,
    render_node_script,
    render_pxelinux_config,
)
from metalcast.boot.layout import BootLayout
from metalcast.boot.service import BootServices
from metalcast.boot.settings import BootSettings
from metalcast.boot.trust import CA_INITRD, CA_PATH, ca_initrd, relay_trust
from metalcast.config import load_settings
from metalcast.errors import InvalidInput
from metalcast.tls.authority import IssuedFiles, issue
from metalcast.tls.certificates import load_server_certificate
from metalcast_agent.config import DEFAULT_CACERT

UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
HTTPS_API = "https://192.168.77.1:8443"


@pytest.fixture
def pki(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "pki", names=["192.168.77.1", "127.0.0.1"])


def tls_settings(pki: IssuedFiles, **changes: object) -> BootSettings:
    values: dict[str, object] = {"tls_cert_file": pki.cert, "tls_key_file": pki.key, "netns": None}
    return BootSettings.model_validate({**values, **changes})


def node(**changes: object) -> NodeBoot:
    return NodeBoot(UUID, (NodePort("52:54:00:12:34:56"),), **changes)  # type: ignore[arg-type]


def newc_files(archive: bytes) -> dict[str, bytes]:
    """The regular files of a newc cpio archive (name -> data)."""
    files, offset = {}, 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701"
        mode, size, name_size = (int(header[6 + 8 * i : 14 + 8 * i], 16) for i in (1, 6, 11))
        name_end = offset + 110 + name_size
        name = archive[offset + 110 : name_end - 1].decode()
        data_start = name_end + (-name_end % 4)
        if name == "TRAILER!!!":
            return files
        if mode & 0o170000 == 0o100000:
            files[name] = archive[data_start : data_start + size]
        offset = data_start + size + (-(data_start + size) % 4)


# -- settings --------------------------------------------------------------------------


def test_tls_settings_come_in_pairs_and_on_their_own_port(pki: IssuedFiles) -> None:
    with pytest.raises(ValidationError, match="set both tls_cert_file and tls_key_file"):
        BootSettings(tls_cert_file=pki.cert)
    with pytest.raises(ValidationError, match="https_port and http_port are both 8080"):
        tls_settings(pki, https_port=8080)
    plain = BootSettings()
    assert (plain.tls, plain.agent_url) == (False, "http://192.168.77.1:8080")
    secure = tls_settings(pki, https_port=9443)
    assert (secure.tls, secure.agent_url) == (True, "https://192.168.77.1:9443")
    assert secure.http_url == "http://192.168.77.1:8080"  # boot files stay plain


def test_the_boot_server_defaults_to_the_apis_certificate(pki: IssuedFiles, tmp_path: Path) -> None:
    api_only = load_settings(
        environ={
            "METALCAST_API__TLS_CERT_FILE": str(pki.cert),
            "METALCAST_API__TLS_KEY_FILE": str(pki.key),
        }
    )
    assert api_only.api.scheme == "https"
    assert api_only.boot.tls_cert_file is None  # as given ...
    assert api_only.boot_services.tls_cert_file == pki.cert  # ... and as used
    assert api_only.boot_services.tls_key_file == pki.key
    own = issue(tmp_path / "own", names=["192.168.77.1"])
    both = load_settings(
        environ={
            "METALCAST_API__TLS_CERT_FILE": str(pki.cert),
            "METALCAST_API__TLS_KEY_FILE": str(pki.key),
            "METALCAST_BOOT__TLS_CERT_FILE": str(own.cert),
            "METALCAST_BOOT__TLS_KEY_FILE": str(own.key),
        }
    )
    assert both.boot_services.tls_cert_file == own.cert
    assert load_settings(environ={}).boot_services.tls is False


def test_half_a_tls_setting_is_refused_when_settings_load(pki: IssuedFiles) -> None:
    with pytest.raises(InvalidInput, match=r"api: Value error, set both tls_cert_file and"):
        load_settings(environ={"METALCAST_API__TLS_CERT_FILE": str(pki.cert)})
    with pytest.raises(InvalidInput, match=r"boot: Value error, set both tls_cert_file and"):
        load_settings(environ={"METALCAST_BOOT__TLS_KEY_FILE": str(pki.key)})


# -- the CA initrd and the scripts that load it ---------------------------------------------


def test_the_ca_initrd_puts_the_ca_where_the_agent_looks() -> None:
    assert Path("/", CA_PATH) == DEFAULT_CACERT
    archive = ca_initrd(b"-----BEGIN CERTIFICATE-----\nxyz\n")
    assert archive == ca_initrd(b"-----BEGIN CERTIFICATE-----\nxyz\n")  # reproducible
    assert newc_files(gzip.decompress(archive)) == {CA_PATH: b"-----BEGIN CERTIFICATE-----\nxyz\n"}


def test_an_ipxe_node_loads_the_ca_initrd_beside_the_ramdisk(pki: IssuedFiles) -> None:
    script = render_node_script(tls_settings(pki), node(), api_url=HTTPS_API).splitlines()
    assert script[2] == (
        "kernel http://192.168.77.1:8080/boot/deploy.kernel initrd=deploy.initramfs "
        f"initrd={CA_INITRD} console=ttyS0 metalcast.api={HTTPS_API} "
        f"BOOTIF=01-${{netX/mac:hexhyp}} ipa-api-url={HTTPS_API} || goto failed"
    )
    assert script[3].startswith("initrd --name deploy.initramfs http://192.168.77.1:8080/")
    assert script[4] == (
        f"initrd --name {CA_INITRD} http://192.168.77.1:8080/boot/{CA_INITRD} || goto failed"
    )
    assert script[5] == "boot || goto failed"
    tftp = render_node_script(tls_settings(pki), node(protocol=BootProtocol.TFTP), api_url="x")
    assert f"initrd --name {CA_INITRD} tftp://192.168.77.1/{CA_INITRD} || goto failed" in tftp


def test_a_pxelinux_node_loads_both_initrds(pki: IssuedFiles) -> None:
    own = node(protocol=BootProtocol.TFTP)
    config = render_pxelinux_config(tls_settings(pki), own, api_url=HTTPS_API).splitlines()
    assert config[6] == (
        f"  APPEND initrd=deploy.initramfs,{CA_INITRD} console=ttyS0 "
        f"metalcast.api={HTTPS_API} ipa-api-url={HTTPS_API}"
    )


def test_install_writes_the_ca_initrd_with_tls_and_removes_it_without(
    pki: IssuedFiles, tmp_path: Path
) -> None:
    ipxe = tmp_path / "ipxe"
    ipxe.mkdir()
    for name in ("undionly.kpxe", "snponly.efi"):
        (ipxe / name).write_bytes(b"x")
    settings = tls_settings(pki, ipxe_dir=ipxe)
    layout = BootLayout.from_settings(settings, state_dir=tmp_path / "state")
    with pytest.raises(BootSetupError, match="no CA was given"):
        install_boot_files(layout, settings)

    install_boot_files(layout, settings, agent_ca=pki.ca_cert.read_bytes())
    archive = gzip.decompress((layout.boot_dir / CA_INITRD).read_bytes())
    assert newc_files(archive) == {CA_PATH: pki.ca_cert.read_bytes()}

    install_boot_files(layout, BootSettings(ipxe_dir=ipxe), agent_ca=pki.ca_cert.read_bytes())
    assert not (layout.boot_dir / CA_INITRD).exists()


# -- start-up checks -------------------------------------------------------------------------


def services(settings: BootSettings, tmp_path: Path, **kwargs: object) -> BootServices:
    return BootServices(
        settings,
        state_dir=tmp_path / "state",
        api_url="http://127.0.0.1:6385",
        signer=None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_agents_get_the_https_url_and_the_ca(pki: IssuedFiles, tmp_path: Path) -> None:
    started = services(tls_settings(pki, tls_ca_file=pki.ca_cert), tmp_path)
    assert started.node_api_url == HTTPS_API
    assert started.agent_ca == pki.ca_cert.read_bytes()
    ports = [server.where for server in started.http_servers]
    assert ports == ["http://192.168.77.1:8080", "https://192.168.77.1:8443"]
    pinned = services(tls_settings(pki), tmp_path)  # no CA file: the certificate itself
    assert pinned.agent_ca == pki.cert.read_bytes()
    plain = services(BootSettings(netns=None), tmp_path)
    assert (plain.node_api_url, plain.agent_ca) == ("http://192.168.77.1:8080", None)
    assert [server.where for server in plain.http_servers] == ["http://192.168.77.1:8080"]


def test_a_certificate_without_the_boot_address_is_refused(tmp_path: Path) -> None:
    elsewhere = issue(tmp_path / "elsewhere", names=["api.example", "10.0.0.1"])
    with pytest.raises(BootSetupError) as caught:
        services(tls_settings(elsewhere), tmp_path)
    message = caught.value.message
    assert "agents reaching the boot server at 192.168.77.1 would refuse" in message
    assert "names: api.example, 10.0.0.1" in message
    assert "IP address mismatch" in message
    assert "metalcast tls generate --name 192.168.77.1" in message


def test_a_ca_file_that_did_not_sign_the_certificate_is_refused(
    pki: IssuedFiles, tmp_path: Path
) -> None:
    other = issue(tmp_path / "other", names=["192.168.77.1"])
    with pytest.raises(BootSetupError, match="unable to get local issuer certificate"):
        services(tls_settings(pki, tls_ca_file=other.ca_cert), tmp_path)


def test_agents_are_never_sent_to_a_plain_http_api_with_tls(
    pki: IssuedFiles, tmp_path: Path
) -> None:
    settings = tls_settings(pki, node_api_url="http://192.168.77.1:8080")
    with pytest.raises(BootSetupError, match="plain HTTP while the boot server serves TLS"):
        services(settings, tmp_path)
    # an https API elsewhere is that server's business
    elsewhere = services(tls_settings(pki, node_api_url="https://api.example:6385"), tmp_path)
    assert elsewhere.node_api_url == "https://api.example:6385"


def test_the_relay_pins_its_own_apis_certificate(pki: IssuedFiles, tmp_path: Path) -> None:
    api = load_server_certificate(pki.cert, pki.key, area="api")
    assert relay_trust(BootSettings(), None) is None  # plain-HTTP API
    pinned = relay_trust(BootSettings(), api)
    assert pinned is not None and pinned.verify_mode is ssl.CERT_REQUIRED
    assert not pinned.check_hostname  # exactly one certificate: any address will do
    external = relay_trust(BootSettings(api_url="https://api.example:6385"), api)
    assert external is not None and external.check_hostname
    with_ca = relay_trust(BootSettings(api_ca_file=pki.ca_cert), api)
    assert with_ca is not None and with_ca.check_hostname


# -- the two ports ---------------------------------------------------------------------------


def call(
    app: object, method: str, url: str, base: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.168.77.50", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            return await http.request(method, url, headers=headers)

    return asyncio.run(run())


def test_the_plain_port_serves_boot_files_and_points_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "boot.ipxe").write_text("#!ipxe\n")
    app = create_files_app(boot_dir=tmp_path, https_url=HTTPS_API)
    base = "http://192.168.77.1:8080"
    assert call(app, "GET", "/boot/boot.ipxe", base).text == "#!ipxe\n"
    for method, path in [
        ("GET", "/v1/lookup?addresses=52:54:00:12:34:56"),
        ("POST", f"/v1/heartbeat/{UUID}"),
        ("GET", "/images/cache/disk.raw"),
        ("GET", "/v1"),
    ]:
        refused = call(app, method, path, base)
        assert refused.status_code == 403, path
        assert f"served over HTTPS only, at {HTTPS_API}" in refused.json()["error_message"]


def test_the_relay_tells_the_api_the_agent_came_over_https(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    class Body(httpx.AsyncByteStream):  # a body the relay streams, as from a real server
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"error_message": "no node"}'

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, stream=Body())

    api = httpx.AsyncClient(
        base_url="https://127.0.0.1:6385", transport=httpx.MockTransport(upstream)
    )
    app = create_app(
        boot_dir=tmp_path, images_dir=tmp_path, api_url="unused", signer=None, upstream=api
    )
    # what a client claims is dropped: the relay alone says how the agent came
    claims = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}
    call(app, "GET", "/v1/lookup?addresses=52:54:00:12:34:56", HTTPS_API, claims)
    assert seen[0].headers.get_list("x-forwarded-proto") == ["https"]
    assert seen[0].headers.get_list("x-forwarded-host") == ["192.168.77.1:8443"]
    assert seen[0].headers["x-forwarded-host"] == "192.168.77.1:8443"
