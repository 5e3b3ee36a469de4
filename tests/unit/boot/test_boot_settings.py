"""BootSettings validation and the paths they resolve to."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from metalcast.boot.layout import BootLayout
from metalcast.boot.settings import BootSettings


def test_defaults_resolve_into_the_state_directory() -> None:
    layout = BootLayout.from_settings(BootSettings(), state_dir=Path("/s"))
    assert layout.boot_dir == Path("/s/boot/files")
    assert layout.hosts_dir == Path("/s/boot/dhcp-hosts")
    assert layout.images_dir == Path("/s/images")
    assert layout.kernel == Path("/s/ramdisk/deploy.kernel")
    assert layout.ramdisk == Path("/s/ramdisk/deploy.initramfs")
    assert layout.dnsmasq_log == Path("/s/boot/dnsmasq.log")
    assert BootSettings().http_url == "http://192.168.77.1:8080"


def test_values_from_the_environment_are_strings() -> None:
    settings = BootSettings.model_validate(
        {
            "enabled": "true",
            "netns": "prov",
            "http_port": "8081",
            "kernel": "/srv/k",
            "lease_time": "600",
            "ignore_unknown": "1",
        }
    )
    assert settings.enabled and settings.ignore_unknown
    assert settings.http_port == 8081
    assert settings.kernel == Path("/srv/k")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dhcp_range_start": "192.168.77.201"}, "is after dhcp_range_end"),
        ({"lease_time": 60}, "greater than or equal to 120"),
        ({"interface": "a-very-long-interface-name"}, "at most 15 characters"),
        ({"interface": "br0; rm -rf /"}, "should match pattern"),
        ({"uefi_bootfile": "../ipxe.efi"}, "not a plain file name"),
        ({"extra_kernel_params": "a\nkernel evil"}, "single line"),
        ({"address": "fd77::1"}, "valid IPv4 address"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BootSettings.model_validate(changes)
