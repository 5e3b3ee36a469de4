"""Settings from the environment: the CLI's own variables are not server settings."""

from __future__ import annotations

import pytest

from metalcast.config import load_settings
from metalcast.errors import InvalidInput


def test_the_clients_variables_do_not_break_server_settings() -> None:
    # what README's "Turn authentication on" tells an operator to export for the CLI
    environ = {
        "METALCAST_URL": "http://127.0.0.1:6385",
        "METALCAST_USERNAME": "admin",
        "METALCAST_PASSWORD": "secret",
        "METALCAST_TOKEN": "mct_x",
        "METALCAST_CACERT": "/tmp/ca.pem",
        "METALCAST_API_VERSION": "1.60",
        "METALCAST_API__PORT": "6390",
    }
    settings = load_settings(environ=environ)
    assert settings.api.port == 6390


def test_an_unknown_setting_is_still_refused() -> None:
    with pytest.raises(InvalidInput, match="no_such_thing"):
        load_settings(environ={"METALCAST_NO_SUCH_THING": "1"})


def test_an_empty_boot_netns_means_this_network_namespace() -> None:
    # README: "On real hardware set boot.interface, boot.netns (empty) and boot.address"
    settings = load_settings(
        environ={"METALCAST_BOOT__NETNS": "", "METALCAST_BOOT__INTERFACE": "eth1"}
    )
    assert settings.boot.netns is None
    assert settings.boot.interface == "eth1"
    with pytest.raises(InvalidInput, match="netns"):
        load_settings(environ={"METALCAST_BOOT__NETNS": "a b"})
