"""iPXE scripts and a node's boot files."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from metalcast.boot.errors import BootSetupError
from metalcast.boot.ipxe import (
    BootProtocol,
    NodeBoot,
    NodePort,
    install_boot_files,
    kernel_command_line,
    mac_script_name,
    remove_node_files,
    render_boot_script,
    render_node_script,
    write_node_files,
)
from metalcast.boot.layout import BootLayout
from metalcast.boot.settings import BootSettings

UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
OTHER = "2be26c0b-03f2-4d2e-ae87-c02d7f33c124"
API = "http://192.168.77.1:8080"


def node(*macs: str, **changes: object) -> NodeBoot:
    ports = tuple(NodePort(mac) for mac in (macs or ("52:54:00:12:34:56",)))
    return NodeBoot(changes.pop("uuid", UUID), ports, **changes)  # type: ignore[arg-type]


def write(layout: BootLayout, settings: BootSettings, boot: NodeBoot) -> bool:
    return write_node_files(layout, boot, settings=settings, api_url=API)


@pytest.fixture
def settings(tmp_path: Path) -> BootSettings:
    ipxe = tmp_path / "ipxe"
    ipxe.mkdir()
    for name in ("undionly.kpxe", "snponly.efi"):
        (ipxe / name).write_bytes(name.encode() * 10)
    return BootSettings(ipxe_dir=ipxe)


@pytest.fixture
def layout(settings: BootSettings, tmp_path: Path) -> BootLayout:
    built = BootLayout.from_settings(settings, state_dir=tmp_path / "state")
    built.make_dirs()
    return built


def test_generic_script_chains_the_mac_script_then_boots_the_disk() -> None:
    script = render_boot_script("http://192.168.77.1:8080/boot")
    assert script.startswith("#!ipxe\n")
    lines = script.splitlines()
    chain = "chain --autofree http://192.168.77.1:8080/boot/nodes/${netX/mac:hexhyp}.ipxe"
    assert f"{chain} || goto no_node" in lines
    # no script for this MAC: BIOS boots the first disk, UEFI returns to the firmware
    assert lines.index(":no_node") < lines.index("sanboot --no-describe --drive 0x80 || goto leave")
    assert "iseq ${platform} efi && goto leave ||" in lines
    assert lines[-1] == "exit"


def test_node_script_boots_the_deploy_ramdisk_over_http() -> None:
    script = render_node_script(BootSettings(), node(), api_url=API).splitlines()
    assert script[2] == (
        "kernel http://192.168.77.1:8080/boot/deploy.kernel initrd=deploy.initramfs "
        "console=ttyS0 metalcast.api=http://192.168.77.1:8080 BOOTIF=01-${netX/mac:hexhyp} "
        "ipa-api-url=http://192.168.77.1:8080 || goto failed"
    )
    assert script[3] == (
        "initrd --name deploy.initramfs http://192.168.77.1:8080/boot/deploy.initramfs "
        "|| goto failed"
    )
    assert script[4] == "boot || goto failed"
    assert script[-1] == "chain --autofree http://192.168.77.1:8080/boot/boot.ipxe || exit"


def test_tftp_node_script_fetches_everything_over_tftp() -> None:
    own = node(protocol=BootProtocol.TFTP, kernel=Path("/srv/k"))
    script = render_node_script(BootSettings(), own, api_url=API)
    assert f"kernel tftp://192.168.77.1/nodes/{UUID}/deploy.kernel " in script
    assert "initrd --name deploy.initramfs tftp://192.168.77.1/deploy.initramfs" in script
    assert "chain --autofree tftp://192.168.77.1/boot-tftp.ipxe || exit" in script
    assert "http://192.168.77.1:8080/boot" not in script


def test_kernel_parameters_from_settings_and_node_come_last() -> None:
    settings = BootSettings(console="", extra_kernel_params="  ipa-debug=1  nofb ")
    line = kernel_command_line(settings, node(kernel_params=("rd.shell",)), api_url=API)
    assert line.startswith("initrd=deploy.initramfs metalcast.api=")
    assert line.endswith("ipa-api-url=http://192.168.77.1:8080 ipa-debug=1 nofb rd.shell")
    assert "console=" not in line


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uuid": "1BE26C0B-03F2-4D2E-AE87-C02D7F33C123"}, "lower-case UUID"),
        ({"kernel_params": ("a b",)}, "has spaces"),
    ],
)
def test_invalid_node_boot_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        node(**changes)


def test_a_node_needs_a_port() -> None:
    with pytest.raises(ValueError, match="no port"):
        NodeBoot(UUID, ())


def test_mac_script_name_is_what_ipxe_hexhyp_asks_for() -> None:
    assert mac_script_name("52:54:00:AB:cd:0F") == "52-54-00-ab-cd-0f.ipxe"


def test_install_creates_binaries_scripts_and_image_links(
    settings: BootSettings, layout: BootLayout
) -> None:
    warnings = install_boot_files(layout, settings)
    files = layout.boot_dir
    assert (files / "undionly.kpxe").read_bytes() == b"undionly.kpxe" * 10
    assert (files / "snponly.efi").is_file()
    assert "http://192.168.77.1:8080/boot/nodes/" in (files / "boot.ipxe").read_text()
    assert "tftp://192.168.77.1/nodes/" in (files / "boot-tftp.ipxe").read_text()
    assert os.readlink(files / "deploy.kernel") == str(layout.kernel)
    assert len(warnings) == 2 and "deploy kernel" in warnings[0]
    layout.kernel.parent.mkdir(parents=True)
    layout.kernel.write_bytes(b"k")
    layout.ramdisk.write_bytes(b"r")
    assert install_boot_files(layout, settings) == []
    assert not [p for p in files.iterdir() if p.name.startswith(".")]


def test_install_names_a_missing_ipxe_binary(tmp_path: Path) -> None:
    settings = BootSettings(ipxe_dir=tmp_path / "nowhere")
    layout = BootLayout.from_settings(settings, state_dir=tmp_path)
    with pytest.raises(BootSetupError, match=r"nowhere/undionly.kpxe is missing"):
        install_boot_files(layout, settings)


def test_node_files_script_mac_links_and_host_entries(
    settings: BootSettings, layout: BootLayout
) -> None:
    boot = NodeBoot(
        UUID,
        (
            NodePort("52:54:00:12:34:56", IPv4Address("192.168.77.50")),
            NodePort("52:54:00:12:34:57"),
        ),
    )
    assert write(layout, settings, boot) is False
    nodes = layout.nodes_dir
    script = (nodes / UUID / "boot.ipxe").read_text()
    assert f"node {UUID}" in script
    for mac in ("52-54-00-12-34-56", "52-54-00-12-34-57"):
        assert (nodes / f"{mac}.ipxe").read_text() == script
        assert os.readlink(nodes / f"{mac}.ipxe") == f"{UUID}/boot.ipxe"
    assert (layout.hosts_dir / UUID).read_text() == (
        "52:54:00:12:34:56,set:metalcast,192.168.77.50\n52:54:00:12:34:57,set:metalcast\n"
    )
    assert not [p for p in layout.hosts_dir.iterdir() if p.name.startswith(".")]


def test_rewriting_a_node_drops_old_macs_and_asks_for_a_restart(
    settings: BootSettings, layout: BootLayout
) -> None:
    write(layout, settings, node("52:54:00:00:00:01", "52:54:00:00:00:02"))
    write(layout, settings, node("52:54:00:00:00:09", uuid=OTHER))
    # the same entries again: nothing for dnsmasq to forget
    assert not write(layout, settings, node("52:54:00:00:00:01", "52:54:00:00:00:02"))
    assert write(layout, settings, node("52:54:00:00:00:02"))
    names = sorted(p.name for p in layout.nodes_dir.glob("*.ipxe"))
    assert names == ["52-54-00-00-00-02.ipxe", "52-54-00-00-00-09.ipxe"]


def test_a_mac_moving_to_another_node_leaves_its_old_node(
    settings: BootSettings, layout: BootLayout
) -> None:
    write(layout, settings, node("52:54:00:00:00:01", "52:54:00:00:00:02"))
    moved = write(layout, settings, node("52:54:00:00:00:02", uuid=OTHER))
    assert moved  # dnsmasq must forget the old entry
    assert (layout.hosts_dir / UUID).read_text() == "52:54:00:00:00:01,set:metalcast\n"
    assert os.readlink(layout.nodes_dir / "52-54-00-00-00-02.ipxe") == f"{OTHER}/boot.ipxe"
    # the last MAC of a node moving away takes the node's file along
    assert write(layout, settings, node("52:54:00:00:00:01", uuid=OTHER))
    assert not (layout.hosts_dir / UUID).exists()


def test_own_deploy_images_are_linked_per_node(
    settings: BootSettings, layout: BootLayout, tmp_path: Path
) -> None:
    kernel = tmp_path / "special.kernel"
    write(layout, settings, node(kernel=kernel))
    own = layout.nodes_dir / UUID
    assert os.readlink(own / "deploy.kernel") == str(kernel)
    assert not (own / "deploy.initramfs").is_symlink()
    write(layout, settings, node())
    assert not (own / "deploy.kernel").is_symlink()


def test_removing_a_node_leaves_other_nodes_alone(
    settings: BootSettings, layout: BootLayout
) -> None:
    write(layout, settings, node("52:54:00:00:00:01"))
    write(layout, settings, node("52:54:00:00:00:09", uuid=OTHER))
    assert remove_node_files(layout, UUID) is True
    assert sorted(p.name for p in layout.hosts_dir.iterdir()) == [OTHER]
    assert sorted(p.name for p in layout.nodes_dir.iterdir()) == sorted(
        ["52-54-00-00-00-09.ipxe", OTHER]
    )
    # removing again, or a node never prepared, is not an error
    assert remove_node_files(layout, UUID) is False
