"""CLI commands against an in-memory API: output, exit codes, enrolment rollback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cli_fake_api import FakeIronic, Invocation

from metalcast.cli.client import CliError
from metalcast.cli.main import normalize_argv
from metalcast.cli.nodes import parse_key_values, show_groups, shown_fields, validation_rows
from metalcast.cli.provision import load_config_drive, load_steps

Run = Callable[..., Invocation]


def test_normalize_argv_gives_wait_an_optional_timeout() -> None:
    assert normalize_argv(["node", "deploy", "n", "--wait"]) == ["node", "deploy", "n", "--wait"]
    assert normalize_argv(["node", "deploy", "n", "--wait", "600"]) == [
        "node", "deploy", "n", "--wait", "--wait-timeout", "600",
    ]  # fmt: skip
    assert normalize_argv(["--wait=1.5", "n"]) == ["--wait", "--wait-timeout", "1.5", "n"]
    assert normalize_argv(["--", "--wait", "5"]) == ["--", "--wait", "5"]


def test_parse_key_values() -> None:
    assert parse_key_values(["a=1", "b=x=y"], option="--p", typed=True) == {"a": 1, "b": "x=y"}
    assert parse_key_values(["a=1"], option="--p") == {"a": "1"}
    with pytest.raises(CliError, match="--p takes KEY=VALUE"):
        parse_key_values(["oops"], option="--p")


def test_show_groups_put_unknown_fields_in_other() -> None:
    groups = dict(show_groups({"uuid": "u", "driver": "ipmi", "zzz": 1, "links": []}))
    assert groups == {"Node": ["uuid"], "Driver": ["driver"], "Other": ["zzz"]}


def test_validation_rows_label_results() -> None:
    rows = validation_rows({"power": {"result": True}, "boot": {"result": False, "reason": "x"}})
    assert [(r[0], str(r[1]), r[2]) for r in rows] == [
        ("boot", "failed", "x"),
        ("power", "ok", None),
    ]


def test_config_drive_from_json_file_url_or_text(tmp_path: Path) -> None:
    path = tmp_path / "cd.json"
    path.write_text('{"user_data": "#cloud-config"}')
    assert load_config_drive(str(path)) == {"user_data": "#cloud-config"}
    assert load_config_drive('{"meta_data": {}}') == {"meta_data": {}}
    assert load_config_drive("https://x/cd.iso.gz") == "https://x/cd.iso.gz"
    iso = tmp_path / "cd.b64"
    iso.write_text("H4sIAAAA\n")
    assert load_config_drive(str(iso)) == "H4sIAAAA"
    with pytest.raises(CliError, match="not a file, a JSON object or a URL"):
        load_config_drive("nonsense")


def test_config_drive_from_a_directory_as_the_baremetal_client_takes_it(tmp_path: Path) -> None:
    latest = tmp_path / "drive" / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text('{"hostname": "web-1", "public_keys": {"k": "ssh"}}')
    (latest / "user_data").write_text("#cloud-config\nruncmd: [true]\n")
    (latest / "network_data.json").write_text('{"links": []}')

    assert load_config_drive(str(tmp_path / "drive")) == {
        "meta_data": {"hostname": "web-1", "public_keys": {"k": "ssh"}},
        "user_data": "#cloud-config\nruncmd: [true]\n",
        "network_data": {"links": []},
    }
    with pytest.raises(CliError, match=r"is a directory without openstack/latest/"):
        load_config_drive(str(tmp_path))
    (latest / "meta_data.json").write_text("{nope")
    with pytest.raises(CliError, match=r"meta_data.json is not valid JSON"):
        load_config_drive(str(tmp_path / "drive"))


def test_load_steps_checks_the_shape() -> None:
    steps = load_steps('[{"interface": "deploy", "step": "erase_devices"}]', option="--s")
    assert steps == [{"interface": "deploy", "step": "erase_devices"}]
    with pytest.raises(CliError, match="must be a JSON list"):
        load_steps('[{"step": "x"}]', option="--s")
    with pytest.raises(CliError, match="not valid JSON"):
        load_steps("[", option="--s")


def test_create_list_show(run_cli: Run, fake_api: FakeIronic) -> None:
    created = run_cli(
        "node", "create", "--driver", "ipmi", "--name", "n1",
        "--driver-info", "ipmi_address=10.0.0.1", "--driver-info", "ipmi_password=pw",
        "--property", "cpus=4", "--port", "aa:bb:cc:dd:ee:01",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    node = next(iter(fake_api.nodes.values()))
    assert node["properties"] == {"cpus": 4}
    assert [p["address"] for p in fake_api.ports.values()] == ["aa:bb:cc:dd:ee:01"]
    listed = run_cli("node", "list")
    assert "n1" in listed.stdout and node["uuid"] in listed.stdout
    shown = run_cli("node", "show", "n1")
    assert "******" in shown.stdout and "pw" not in shown.stdout
    as_json = run_cli("--json", "node", "show", "n1")
    assert json.loads(as_json.stdout)["uuid"] == node["uuid"]


def test_list_follows_pages(run_cli: Run, fake_api: FakeIronic) -> None:
    fake_api.page_size = 2
    for i in range(5):
        run_cli("node", "create", "--driver", "fake-hardware", "--name", f"n{i}")
    listed = json.loads(run_cli("--json", "node", "list").stdout)
    assert [n["name"] for n in listed] == [f"n{i}" for i in range(5)]
    limited = json.loads(run_cli("--json", "node", "list", "--limit", "3").stdout)
    assert len(limited) == 3


def test_a_refused_port_deletes_the_node_again(run_cli: Run, fake_api: FakeIronic) -> None:
    fake_api.refuse_macs = {"aa:bb:cc:dd:ee:02"}
    result = run_cli(
        "node", "create", "--driver", "ipmi", "--name", "n1",
        "--port", "aa:bb:cc:dd:ee:01", "--port", "aa:bb:cc:dd:ee:02",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "port aa:bb:cc:dd:ee:02: A port with MAC address" in result.stderr
    assert "the node was deleted again" in result.stderr
    assert fake_api.nodes == {} and fake_api.ports == {}


def test_api_errors_are_one_red_line(run_cli: Run) -> None:
    result = run_cli("node", "show", "missing")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: Node missing could not be found."


def test_unreachable_server(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from metalcast.cli.main import app
    from metalcast.cli.session import Session

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    obj = Session("x", transport=httpx.MockTransport(refuse))
    result = CliRunner().invoke(app, ["--url", "http://h:1", "node", "list"], obj=obj)
    assert result.exit_code == 1
    assert "cannot reach metalcast at http://h:1: is `metalcast server` running?" in result.stderr


def test_lifecycle_with_wait(run_cli: Run, fake_api: FakeIronic) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    for verb, state in (("manage", "manageable"), ("provide", "available"), ("deploy", "active")):
        result = run_cli("node", verb, "n1", "--wait", "30")
        assert result.exit_code == 0, result.stderr
        assert f"node n1 is {state}" in result.stdout
    assert run_cli("node", "undeploy", "n1", "--wait").exit_code == 0
    assert fake_api.state_of("n1") == "available"


def test_a_failed_deploy_exits_1_with_the_last_error(run_cli: Run, fake_api: FakeIronic) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1",
            "--driver-info", "fake_fail=deploy")  # fmt: skip
    fake_api.set_state("n1", "available")
    result = run_cli("node", "deploy", "n1", "--wait")
    assert result.exit_code == 1
    assert "node n1 ended in 'deploy failed': Deploy failed: injected failure" in result.stderr


def test_wait_gives_up_after_its_timeout(run_cli: Run, fake_api: FakeIronic) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    fake_api.stuck = True
    result = run_cli("node", "manage", "n1", "--wait", "0.05")
    assert result.exit_code == 1
    assert "timed out after 0.05s waiting for node n1 (verifying → manageable)" in result.stderr


def test_without_wait_the_request_is_only_accepted(run_cli: Run) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    result = run_cli("node", "manage", "n1")
    assert result.exit_code == 0
    assert "provision state change to 'manage' accepted for node n1" in result.stdout


MIB = 2**20
WRITING = {
    "driver_internal_info": {
        "agent_progress": {
            "id": "c1", "name": "write_image", "done": 120 * MIB, "total": 256 * MIB,
            "rate": 12.3 * MIB,
        },
    },
}  # fmt: skip
PROGRESS = "write_image 120.0 MiB of 256.0 MiB (47%), 12.3 MiB/s"
DEPLOYING = {"provision_state": "wait call-back", "target_provision_state": "active"}


def deploying_node(run_cli: Run, fake_api: FakeIronic) -> None:
    """n1, waiting for its agent, which wrote 120 of 256 MiB so far."""
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    node = fake_api.find("n1")
    assert node is not None
    node.update(DEPLOYING, **WRITING)


def test_show_has_the_agents_progress(run_cli: Run, fake_api: FakeIronic) -> None:
    deploying_node(run_cli, fake_api)
    shown = run_cli("node", "show", "n1")
    row = next(line for line in shown.stdout.splitlines() if "agent_progress" in line)
    assert PROGRESS in row
    groups = dict(show_groups(shown_fields(fake_api.find("n1") or {})))
    assert "agent_progress" in groups["State"]
    as_json = json.loads(run_cli("--json", "node", "show", "n1").stdout)
    assert "agent_progress" not in as_json  # scripts get the API's node as it is


def test_show_wait_follows_a_busy_node_until_it_rests(run_cli: Run, fake_api: FakeIronic) -> None:
    deploying_node(run_cli, fake_api)
    rested = {"provision_state": "active", "target_provision_state": None}
    fake_api.play("n1", {}, {}, {**rested, "driver_internal_info": {}})
    result = run_cli("node", "show", "n1", "--wait", "60")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [f"n1: wait call-back → active · {PROGRESS}", "n1: active"]
    assert "│ provision_state        │ active" in result.stdout
    assert "agent_progress" not in result.stdout


def test_show_wait_exits_1_when_the_node_ends_failed(run_cli: Run, fake_api: FakeIronic) -> None:
    deploying_node(run_cli, fake_api)
    failed = {"provision_state": "deploy failed", "target_provision_state": None}
    fake_api.play("n1", {}, {**failed, "last_error": "The agent's write_image failed: EIO"})
    result = run_cli("--json", "node", "show", "n1", "--wait")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["provision_state"] == "deploy failed"
    assert (
        "error: node n1 ended in 'deploy failed': The agent's write_image failed: EIO"
        in result.stderr
    )


def test_show_wait_shows_a_resting_node_at_once(run_cli: Run, fake_api: FakeIronic) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    fake_api.set_state("n1", "deploy failed")
    fake_api.requests.clear()
    result = run_cli("node", "show", "n1", "--wait")
    assert result.exit_code == 0  # it failed before: nothing was followed
    assert result.stderr == ""
    assert "deploy failed" in result.stdout
    assert [r for r in fake_api.requests if "/nodes/" in r] == ["GET /v1/nodes/n1"]


def test_show_wait_gives_up_after_its_timeout(run_cli: Run, fake_api: FakeIronic) -> None:
    deploying_node(run_cli, fake_api)
    result = run_cli("node", "show", "n1", "--wait", "0.05")
    assert result.exit_code == 1
    assert "timed out after 0.05s waiting for node n1 (wait call-back → active)" in result.stderr


def test_history_table(run_cli: Run) -> None:
    run_cli("node", "create", "--driver", "fake-hardware", "--name", "n1")
    result = run_cli("node", "history", "n1")
    assert "hello" in result.stdout and "admin" in result.stdout


def test_inventory_shows_the_machine_its_disks_and_nics(run_cli: Run, fake_api: FakeIronic) -> None:
    fake_api.inventories["n1"] = {
        "cpu": {"count": 2, "model_name": "Lab CPU", "architecture": "x86_64"},
        "memory": {"total": 2**31, "physical_mb": 2048},
        "disks": [{"name": "/dev/vda", "size": 6 * 2**30, "serial": "SMALL-1"}],
        "interfaces": [{"name": "eth0", "mac_address": "52:54:00:6d:63:f0"}],
        "system_vendor": {"manufacturer": "QEMU", "serial_number": "LAB-SERIAL-0"},
        "boot": {"current_boot_mode": "uefi"},
    }

    shown = run_cli("node", "inventory", "n1")
    as_json = run_cli("--json", "node", "inventory", "n1")
    missing = run_cli("node", "inventory", "n2")

    for text in (
        "LAB-SERIAL-0",
        "2 x Lab CPU (x86_64)",
        "2048",
        "uefi",
        "SMALL-1",
        "52:54:00:6d:63:f0",
    ):
        assert text in shown.stdout, shown.stdout
    assert json.loads(as_json.stdout)["inventory"]["disks"][0]["serial"] == "SMALL-1"
    assert missing.exit_code != 0
    assert "Node inventory for node n2 could not be found." in missing.stderr


CSV = """name,driver,bmc_address,bmc_username,bmc_password,mac,cpus,memory_mb
good1,ipmi,10.0.0.1,admin,pw,aa:bb:cc:dd:ee:01,4,4096
bad,ipmi,10.0.0.2,admin,pw,zz:zz,4,4096
good2,redfish,10.0.0.3,admin,pw,aa:bb:cc:dd:ee:03;aa:bb:cc:dd:ee:04,8,8192
refused,ipmi,10.0.0.4,admin,pw,aa:bb:cc:dd:ee:05 aa:bb:cc:dd:ee:06,1,1
"""


def test_import_creates_good_rows_and_rejects_bad_ones(
    run_cli: Run, fake_api: FakeIronic, tmp_path: Path
) -> None:
    fake_api.refuse_macs = {"aa:bb:cc:dd:ee:06"}
    path = tmp_path / "nodes.csv"
    path.write_text(CSV)
    result = run_cli("node", "import", str(path))
    assert result.exit_code == 1
    assert "row 3: mac 'zz:zz' is not a valid MAC address" in result.stderr
    assert "row 5: port aa:bb:cc:dd:ee:06" in result.stderr
    names = sorted(n["name"] for n in fake_api.nodes.values())
    assert names == ["good1", "good2"]
    assert len(fake_api.ports) == 3
    good2 = fake_api.find("good2")
    assert good2 is not None and good2["driver_info"]["redfish_address"] == "10.0.0.3"


def test_import_dry_run_creates_nothing(run_cli: Run, fake_api: FakeIronic, tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(CSV)
    result = run_cli("--json", "node", "import", str(path), "--dry-run")
    rows = json.loads(result.stdout)
    assert [r["result"] for r in rows] == [
        "valid", "rejected: mac 'zz:zz' is not a valid MAC address", "valid", "valid",
    ]  # fmt: skip
    assert fake_api.requests == []


def test_rescue_asks_for_the_password_unechoed_when_not_given(
    run_cli: Run, fake_api: FakeIronic
) -> None:
    from typer.testing import CliRunner

    from metalcast.cli.main import app
    from metalcast.cli.session import Session

    run_cli("node", "create", "--driver", "ipmi", "--name", "n1")
    given = run_cli("node", "rescue", "n1", "--rescue-password", "Given-Pass-1")
    assert given.exit_code == 0, given.stderr

    argv = normalize_argv(["--url", "http://metalcast.test", "node", "rescue", "n1"])
    session = Session("http://metalcast.test", transport=fake_api.transport())
    asked = CliRunner().invoke(app, argv, obj=session, input="Asked-Pass-2\nAsked-Pass-2\n")

    assert asked.exit_code == 0, asked.output
    assert "Rescue password" in asked.output and "Asked-Pass-2" not in asked.output
    passwords = [body["rescue_password"] for body in fake_api.provision_bodies]
    assert passwords == ["Given-Pass-1", "Asked-Pass-2"]
