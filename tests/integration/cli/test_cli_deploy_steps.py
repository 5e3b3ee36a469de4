"""``metalcast node deploy --deploy-steps`` against `metalcast server`: the steps run
in the deploy, a hold step stops it in ``deploy hold`` (where ``--wait`` returns) and
``node unhold`` lets it go on; a step the node lacks is refused."""

from __future__ import annotations

import json

from test_cli_server import cli, create, show

STEPS = [
    {
        "interface": "raid",
        "step": "apply_configuration",
        "args": {"raid_config": {"logical_disks": [{"size_gb": 8, "raid_level": "0"}]}},
        "priority": 150,
    },
    {"interface": "deploy", "step": "hold", "args": {}, "priority": 120},
]


def test_deploy_steps_and_a_hold_through_the_cli(metalcast_url: str) -> None:
    url = metalcast_url
    create(url, "cli-ds")
    cli(url, "node", "manage", "cli-ds", "--wait", "60")
    cli(url, "node", "provide", "cli-ds", "--wait", "60")

    bad = json.dumps([{**STEPS[0], "step": "explode"}])
    refused = cli(url, "node", "deploy", "cli-ds", "--deploy-steps", bad, check=False)
    assert refused.returncode != 0
    assert "no deploy step 'raid.explode'" in refused.stdout + refused.stderr
    assert show(url, "cli-ds")["provision_state"] == "available"

    cli(url, "node", "deploy", "cli-ds", "--deploy-steps", json.dumps(STEPS), "--wait", "60")
    node = show(url, "cli-ds")
    assert node["provision_state"] == "deploy hold"
    assert node["raid_config"]["logical_disks"][0]["raid_level"] == "0"
    result = cli(url, "node", "unhold", "cli-ds", "--wait", "60")
    assert "node cli-ds is active" in result.stdout
    assert show(url, "cli-ds")["last_error"] is None
