"""Step-based deploys through python-ironicclient's `baremetal` against `metalcast
server` with fake-hardware nodes: a deploy template selected by an instance trait
(Ironic 1.55), the request's deploy steps (1.69) merged with it by priority, the
``hold`` step and ``unhold`` (1.85), the abort of a held deploy, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_baremetal_cli import baremetal, create, show, wait_for

pytestmark = pytest.mark.integration

TUNED = "CUSTOM_BIOS_TUNED"
BIOS_STEP = {
    "interface": "bios",
    "step": "apply_configuration",
    "args": {"settings": [{"name": "hyperthreading", "value": "disabled"}]},
    "priority": 150,
}
RAID = {"logical_disks": [{"size_gb": 10, "raid_level": "1", "is_root_volume": True}]}


def _json(url: str, *args: str) -> Any:
    return json.loads(baremetal(url, *args, "-f", "json").stdout)


def available_node(url: str, name: str) -> None:
    create(url, name)
    baremetal(url, "node", "manage", name, "--wait", "60")
    baremetal(url, "node", "provide", name, "--wait", "60")


def events(url: str, name: str) -> list[str]:
    listed = _json(url, "node", "history", "list", name, "--long")
    return [str(e.get("Event", e.get("event"))) for e in listed]


def started_steps(url: str, name: str) -> list[str]:
    """``interface.step`` of every deploy step the history shows starting, in order."""
    prefix = "Deploy step "
    return [
        e.removeprefix(prefix).split(" ")[0]
        for e in events(url, name)
        if e.startswith(prefix) and e.endswith(" started")
    ]


def hyperthreading(url: str, name: str) -> str:
    settings = _json(url, "node", "bios", "setting", "list", name)
    return str(next(s["value"] for s in settings if s["name"] == "hyperthreading"))


@pytest.fixture
def tuned_template(metalcast_url: str) -> str:
    """The deploy template CUSTOM_BIOS_TUNED: turn hyperthreading off at priority 150
    (created once on the session's server)."""
    known = _json(metalcast_url, "deploy", "template", "list")
    if TUNED not in [t.get("Name", t.get("name")) for t in known]:
        steps = json.dumps([BIOS_STEP])
        baremetal(metalcast_url, "deploy", "template", "create", TUNED, "--steps", steps)
    return TUNED


def test_a_template_selected_by_an_instance_trait_runs_before_the_core_step(
    metalcast_url: str, tuned_template: str
) -> None:
    url = metalcast_url
    available_node(url, "ds-tpl")
    assert hyperthreading(url, "ds-tpl") == "enabled"
    baremetal(url, "node", "add", "trait", "ds-tpl", tuned_template)
    baremetal(url, "node", "set", "ds-tpl", "--instance-info", f'traits=["{tuned_template}"]')

    baremetal(url, "node", "deploy", "ds-tpl", "--wait", "60")

    node = show(url, "ds-tpl")
    assert (node["provision_state"], node["last_error"]) == ("active", None)
    assert node["deploy_step"] in ({}, None)
    assert hyperthreading(url, "ds-tpl") == "disabled"  # the fake BIOS applied it
    assert started_steps(url, "ds-tpl") == ["bios.apply_configuration", "deploy.deploy"]
    assert "Deploy steps: bios.apply_configuration (150), deploy.deploy (100)" in events(
        url, "ds-tpl"
    )


def test_request_steps_merge_with_the_template_by_priority_and_hold(
    metalcast_url: str, tuned_template: str
) -> None:
    url = metalcast_url
    available_node(url, "ds-hold")
    baremetal(url, "node", "add", "trait", "ds-hold", tuned_template)
    baremetal(url, "node", "set", "ds-hold", "--instance-info", f'traits=["{tuned_template}"]')
    steps = [
        {"interface": "deploy", "step": "hold", "args": {}, "priority": 110},
        {
            "interface": "raid",
            "step": "apply_configuration",
            "args": {"raid_config": RAID},
            "priority": "120",
        },
    ]
    baremetal(url, "node", "deploy", "ds-hold", "--deploy-steps", json.dumps(steps))

    assert wait_for(lambda: show(url, "ds-hold")["provision_state"] == "deploy hold")
    node = show(url, "ds-hold")
    assert node["target_provision_state"] == "active"
    assert node["deploy_step"] == {
        "interface": "deploy",
        "step": "hold",
        "priority": 110,
        "args": {},
    }
    # in priority order: the template's BIOS step, the RAID step, then the hold
    assert started_steps(url, "ds-hold") == [
        "bios.apply_configuration",
        "raid.apply_configuration",
        "deploy.hold",
    ]
    disks = node["raid_config"]["logical_disks"]
    assert [(d["raid_level"], d["size_gb"]) for d in disks] == [("1", 10)]

    baremetal(url, "node", "unhold", "ds-hold")
    assert wait_for(lambda: show(url, "ds-hold")["provision_state"] == "active")
    node = show(url, "ds-hold")
    assert node["last_error"] is None
    assert started_steps(url, "ds-hold")[-1] == "deploy.deploy"
    assert hyperthreading(url, "ds-hold") == "disabled"  # read again once deployed


def test_a_held_deploy_can_be_aborted(metalcast_url: str) -> None:
    url = metalcast_url
    available_node(url, "ds-abort")
    hold = [{"interface": "deploy", "step": "hold", "args": {}, "priority": 200}]
    baremetal(url, "node", "deploy", "ds-abort", "--deploy-steps", json.dumps(hold))
    assert wait_for(lambda: show(url, "ds-abort")["provision_state"] == "deploy hold")

    baremetal(url, "node", "abort", "ds-abort")
    assert wait_for(lambda: show(url, "ds-abort")["provision_state"] == "deploy failed")
    node = show(url, "ds-abort")
    assert "Deployment aborted" in node["last_error"]
    assert node["deploy_step"] in ({}, None)
    assert node["power_state"] == "power off"
    assert "deploy.deploy" not in started_steps(url, "ds-abort")
    # a failed deploy may be deployed again, without the hold this time
    baremetal(url, "node", "deploy", "ds-abort", "--wait", "60")
    assert show(url, "ds-abort")["provision_state"] == "active"


#: deploy steps that are refused, and what the refusal says
REFUSED: list[tuple[dict[str, Any], str]] = [
    (
        {"interface": "bios", "step": "format_disk", "args": {}, "priority": 10},
        "has no deploy step 'bios.format_disk'",
    ),
    (
        {"interface": "teleport", "step": "go", "args": {}, "priority": 10},
        "deploy_steps[0].interface 'teleport'",
    ),
    ({**BIOS_STEP, "priority": -5}, "deploy_steps[0].priority -5: an integer from 0"),
    ({**BIOS_STEP, "priority": "soon"}, "deploy_steps[0].priority 'soon'"),
    ({**BIOS_STEP, "args": ["hyperthreading"]}, "deploy_steps[0].args: an object is required"),
    (
        {"interface": "deploy", "step": "deploy", "args": {}, "priority": 50},
        "deploy.deploy is the core deploy step",
    ),
    ({**BIOS_STEP, "args": {"settings": [], "reboot": True}}, "takes no argument reboot"),
    (
        {"interface": "deploy", "step": "hold", "args": {}, "priority": 0},
        "a 'hold' step needs a priority above 0",
    ),
]


def test_bad_deploy_steps_are_refused_and_nothing_changes(metalcast_url: str) -> None:
    url = metalcast_url
    available_node(url, "ds-bad")
    before = show(url, "ds-bad")
    for step, needle in REFUSED:
        refused = baremetal(
            url, "node", "deploy", "ds-bad", "--deploy-steps", json.dumps([step]), check=False
        )
        assert refused.returncode != 0, step
        assert "Bad Request" in refused.stderr or "400" in refused.stderr, refused.stderr
        assert needle in refused.stderr.replace('"', "'"), refused.stderr
        after = show(url, "ds-bad")
        for key in ("provision_state", "last_error", "deploy_step", "driver_internal_info"):
            assert after[key] == before[key], (key, step)
    assert "Deploy steps" not in " ".join(events(url, "ds-bad"))


def test_an_instance_trait_the_node_lacks_is_refused(metalcast_url: str) -> None:
    url = metalcast_url
    available_node(url, "ds-trait")
    baremetal(url, "node", "set", "ds-trait", "--instance-info", 'traits=["CUSTOM_GPU"]')
    refused = baremetal(url, "node", "deploy", "ds-trait", check=False)
    assert refused.returncode != 0
    assert "not also traits of node" in refused.stderr and "CUSTOM_GPU" in refused.stderr
    assert show(url, "ds-trait")["provision_state"] == "available"


def test_a_template_step_the_driver_cannot_run_fails_the_deploy(metalcast_url: str) -> None:
    url = metalcast_url
    bad = [{"interface": "raid", "step": "rebuild_array", "args": {}, "priority": 90}]
    baremetal(url, "deploy", "template", "create", "CUSTOM_BAD", "--steps", json.dumps(bad))
    available_node(url, "ds-badtpl")
    baremetal(url, "node", "add", "trait", "ds-badtpl", "CUSTOM_BAD")
    baremetal(url, "node", "set", "ds-badtpl", "--instance-info", 'traits=["CUSTOM_BAD"]')

    baremetal(url, "node", "deploy", "ds-badtpl")
    assert wait_for(lambda: show(url, "ds-badtpl")["provision_state"] == "deploy failed")
    node = show(url, "ds-badtpl")
    assert node["reservation"] is None
    assert "deploy template CUSTOM_BAD" in node["last_error"]
    assert "no deploy step 'raid.rebuild_array'" in node["last_error"]
    # once the template is fixed, the same node deploys
    good = [{"interface": "raid", "step": "delete_configuration", "args": {}, "priority": 90}]
    baremetal(url, "deploy", "template", "set", "CUSTOM_BAD", "--steps", json.dumps(good))
    baremetal(url, "node", "deploy", "ds-badtpl", "--wait", "60")
    assert show(url, "ds-badtpl")["provision_state"] == "active"
    assert "raid.delete_configuration" in started_steps(url, "ds-badtpl")
