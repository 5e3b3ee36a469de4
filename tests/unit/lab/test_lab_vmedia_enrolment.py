"""What ``lab up --bmc redfish`` plans and enrols, without starting anything: redfish
nodes with the virtual media boot and a static address each, below the DHCP range."""

from __future__ import annotations

from pathlib import Path

from metalcast.boot.vmedia import static_network
from metalcast.lab.enrolment import hardware_type, node_body
from metalcast.lab.lifecycle import LabOptions, plan


def test_redfish_lab_nodes_boot_from_virtual_media_with_static_addresses(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=2, bmc="redfish", base_port=7100))

    assert (state.bmc, state.redfish_port, hardware_type(state)) == ("redfish", 7100, "redfish")
    bodies = [
        node_body(state, node, {"boot_interface": "redfish-virtual-media"}) for node in state.nodes
    ]
    assert bodies[1]["driver"] == "redfish"
    assert bodies[1]["driver_info"] == {
        "redfish_address": "http://127.0.0.1:7100",
        "redfish_system_id": "/redfish/v1/Systems/lab-1",
        "redfish_username": "admin",
        "redfish_password": state.bmc_password,
    }
    assert bodies[1]["boot_interface"] == "redfish-virtual-media"
    assert static_network(bodies[1]["network_data"]).splitlines() == [
        f"addr {state.nodes[1].mac} 192.168.77.11/24",
        f"route {state.nodes[1].mac} 0.0.0.0/0 192.168.77.1",
        "dns 192.168.77.1",
    ]


def test_ipmi_labs_are_unchanged(tmp_path: Path) -> None:
    state = plan(LabOptions(lab_dir=tmp_path, nodes=1))
    body = node_body(state, state.nodes[0], {})
    assert (state.bmc, state.redfish_port, body["driver"]) == ("ipmi", None, "ipmi")
    assert "network_data" not in body
