"""The virtual media ISO's node settings: static network from network_data, the
node overlay archive, the SYSLINUX config."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from metalcast.boot import vmedia
from metalcast.boot.errors import BootSetupError

NETWORK_DATA = {
    "links": [
        {"id": "port0", "type": "phy", "ethernet_mac_address": "52:54:00:AA:BB:01"},
        {"id": "port1", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:02"},
    ],
    "networks": [
        {
            "id": "prov",
            "link": "port0",
            "type": "ipv4",
            "ip_address": "192.168.77.50",
            "netmask": "255.255.255.0",
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.77.1"}],
        },
        {"id": "other", "link": "port1", "type": "ipv4_dhcp"},
        {"id": "v6", "link": "port1", "type": "ipv6", "ip_address": "fd00::5"},
    ],
    "services": [{"type": "dns", "address": "192.168.77.1"}],
}


def _members(archive: bytes) -> dict[str, bytes]:
    """name -> data of a gzip newc cpio archive."""
    data = gzip.decompress(archive)
    found: dict[str, bytes] = {}
    stream = io.BytesIO(data)
    while True:
        header = stream.read(110)
        assert header[:6] == b"070701"
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name = stream.read(name_size)[:-1].decode()
        stream.read((4 - (110 + name_size) % 4) % 4)
        body = stream.read(size)
        stream.read((4 - size % 4) % 4)
        if name == "TRAILER!!!":
            return found
        found[name] = body


def test_static_network_lines_from_network_data() -> None:
    assert vmedia.static_network(NETWORK_DATA).splitlines() == [
        "addr 52:54:00:aa:bb:01 192.168.77.50/24",
        "route 52:54:00:aa:bb:01 0.0.0.0/0 192.168.77.1",
        "dhcp 52:54:00:aa:bb:02",
        "dns 192.168.77.1",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"networks": [{"id": "n", "link": "nowhere", "type": "ipv4"}]}, "names link"),
        (
            {"networks": [{"id": "n", "link": "port0", "type": "ipv4", "ip_address": "x"}]},
            "is not an IPv4",
        ),
        ({"services": [{"type": "dns", "address": "1.2.3.4; reboot"}]}, "not an IPv4"),
        ({"links": [{"id": "p", "ethernet_mac_address": "52:54:00:aa:bb"}]}, "not a MAC"),
        ({"networks": "all"}, "must be a list"),
    ],
)
def test_unusable_network_data_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(BootSetupError, match=message):
        vmedia.static_network({**NETWORK_DATA, **change})


def test_overlay_holds_network_settings_and_ca_and_nothing_else() -> None:
    members = _members(vmedia.node_overlay(network_data=NETWORK_DATA, ca_pem=b"PEM"))
    assert set(members) == {
        "etc",
        "etc/metalcast",
        vmedia.STATIC_NET_PATH,
        vmedia.NETWORK_DATA_PATH,
        "etc/metalcast/ca.pem",
    }
    assert json.loads(members[vmedia.NETWORK_DATA_PATH]) == NETWORK_DATA
    assert members["etc/metalcast/ca.pem"] == b"PEM"


def test_overlay_without_network_data_leaves_dhcp() -> None:
    assert set(_members(vmedia.node_overlay())) == {"etc", "etc/metalcast"}


def test_syslinux_config_boots_at_once_and_refuses_line_breaks() -> None:
    config = vmedia.syslinux_config("metalcast.api=http://a BOOTIF=01-52-54-00-aa-bb-01")
    assert "TIMEOUT 0" in config
    assert "  APPEND metalcast.api=http://a BOOTIF=01-52-54-00-aa-bb-01\n" in config
    with pytest.raises(BootSetupError):
        vmedia.syslinux_config("a\nLABEL evil")


def test_iso_names_are_unguessable_and_file_names_only() -> None:
    names = {vmedia.iso_name() for _ in range(50)}
    assert len(names) == 50
    assert all(len(name) == 36 and name.endswith(".iso") for name in names)
    with pytest.raises(BootSetupError):
        vmedia.remove_iso(vmedia.Path("/tmp"), "../etc/passwd")
