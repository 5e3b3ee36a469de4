"""``boot.discovery``: the generic script chains ``discovery.ipxe`` for an unknown
MAC, which boots the deploy ramdisk with ``metalcast.discovery=1``; off, neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.boot.ipxe import (
    DISCOVERY_SCRIPT,
    install_boot_files,
    render_boot_script,
    render_discovery_script,
    write_discovery_script,
)
from metalcast.boot.layout import BootLayout
from metalcast.boot.settings import BootSettings

API = "http://192.168.77.1:8080"
BASE = "http://192.168.77.1:8080/boot"


@pytest.fixture
def settings(tmp_path: Path) -> BootSettings:
    ipxe = tmp_path / "ipxe"
    ipxe.mkdir()
    for name in ("undionly.kpxe", "snponly.efi"):
        (ipxe / name).write_bytes(name.encode())
    return BootSettings(ipxe_dir=ipxe, pxelinux_dir=tmp_path / "none", discovery=True)


def test_the_generic_script_tries_discovery_after_the_mac_script_before_the_disk() -> None:
    lines = render_boot_script(BASE, discovery=True).splitlines()

    discover = f"chain --autofree {BASE}/{DISCOVERY_SCRIPT} ||"
    assert lines.index(":no_node") < lines.index(discover)
    assert lines.index(discover) < lines.index("sanboot --no-describe --drive 0x80 || goto leave")
    assert discover not in render_boot_script(BASE).splitlines()


def test_the_discovery_script_boots_the_ramdisk_told_to_report() -> None:
    script = render_discovery_script(BootSettings(), api_url=API).splitlines()

    assert script[2] == (
        f"kernel {BASE}/deploy.kernel initrd=deploy.initramfs console=ttyS0 "
        f"metalcast.api={API} BOOTIF=01-${{netX/mac:hexhyp}} metalcast.discovery=1 "
        f"ipa-api-url={API} ipa-inspection-callback-url={API}/v1/continue_inspection "
        "|| goto failed"
    )
    assert script[3] == f"initrd --name deploy.initramfs {BASE}/deploy.initramfs || goto failed"
    # a failure returns to the generic script, which boots the disk: no loop
    assert script[-1] == "exit 1"
    assert "chain" not in "\n".join(script)


def test_the_boot_directory_has_the_discovery_script_only_while_discovery_is_on(
    settings: BootSettings, tmp_path: Path
) -> None:
    layout = BootLayout.from_settings(settings, state_dir=tmp_path / "state")
    install_boot_files(layout, settings)
    write_discovery_script(layout, settings, api_url=API)
    script = layout.boot_dir / DISCOVERY_SCRIPT
    assert "metalcast.discovery=1" in script.read_text()
    assert DISCOVERY_SCRIPT in (layout.boot_dir / "boot.ipxe").read_text()
    assert DISCOVERY_SCRIPT not in (layout.boot_dir / "boot-tftp.ipxe").read_text()

    off = settings.model_copy(update={"discovery": False})
    install_boot_files(layout, off)
    write_discovery_script(layout, off, api_url=API)
    assert not script.exists()
    assert DISCOVERY_SCRIPT not in (layout.boot_dir / "boot.ipxe").read_text()
