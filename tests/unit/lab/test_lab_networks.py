"""Numbered lab networks (``lab up --network N``) without creating anything: their
names and addresses, what ``lab up`` plans on them, and the boot settings their
conductors run with."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.boot.settings import BootSettings
from metalcast.lab.enrolment import node_body
from metalcast.lab.lifecycle import LabOptions, plan
from metalcast.lab.network import BRIDGE_CIDRS, LabNetwork, mac_address
from metalcast.lab.state import LabState


def test_network_one_is_the_default_lab_network() -> None:
    assert LabNetwork.numbered(1) == LabNetwork()
    assert LabNetwork().name == ""
    assert LabNetwork().cidrs == BRIDGE_CIDRS
    assert mac_address(3) == mac_address(3, network=1) == "52:54:00:6d:63:03"


def test_network_two_has_its_own_namespace_bridge_subnet_and_macs() -> None:
    two = LabNetwork.numbered(2)
    assert (two.netns, two.bridge, two.cidrs, two.name) == (
        "metalcast-lab2", "mcbr1", ("192.168.78.1/24", "fd78::1/64"), "lab2",
    )  # fmt: skip
    assert LabNetwork.numbered(2, netns="elsewhere").netns == "elsewhere"
    assert mac_address(0, network=2) == "52:54:00:6d:64:00"
    with pytest.raises(ValueError, match=r"outside 1\.\.9"):
        LabNetwork.numbered(10)


def test_its_boot_environment_is_valid_boot_settings() -> None:
    env = LabNetwork.numbered(3).boot_environment()
    settings = BootSettings.model_validate(
        {key.removeprefix("METALCAST_BOOT__").lower(): value for key, value in env.items()}
    )
    assert (settings.network, settings.netns, settings.interface) == (
        "lab3",
        "metalcast-lab3",
        "mcbr2",
    )
    assert str(settings.address) == "192.168.79.1"
    assert (str(settings.dhcp_range_start), str(settings.dhcp_range_end)) == (
        "192.168.79.100", "192.168.79.200",
    )  # fmt: skip


def test_a_lab_on_network_two_plans_its_own_names_ports_and_group(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=2, network=2, conductor_group="west"))

    assert (state.netns, state.bridge, state.network) == ("metalcast-lab2", "mcbr1", 2)
    assert [n.name for n in state.nodes] == ["lab2-0", "lab2-1"]
    assert [n.bmc_port for n in state.nodes] == [6330, 6331]
    assert state.nodes[1].mac == "52:54:00:6d:64:01"
    assert node_body(state, state.nodes[0], {})["conductor_group"] == "west"


def test_a_default_lab_is_unchanged(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=1))

    assert (state.netns, state.bridge, state.network) == ("metalcast-lab", "mcbr0", 1)
    assert (state.nodes[0].name, state.nodes[0].bmc_port) == ("lab-0", 6230)
    assert "conductor_group" not in node_body(state, state.nodes[0], {})


def test_a_lab_state_from_before_networks_is_network_one(tmp_path: Path) -> None:
    old = plan(LabOptions(lab_dir=tmp_path, nodes=1)).model_dump(
        mode="json", exclude={"network", "conductor_group"}
    )
    assert LabState.model_validate(old).lab_network == LabNetwork()
