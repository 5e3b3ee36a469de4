"""The ``metalcast`` CLI, as a subprocess, against a real ``metalcast server``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from secret_scan import register

VERSION = {"X-OpenStack-Ironic-API-Version": "latest"}


def cli(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``metalcast --url URL ARGS`` and return what it did."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
    result = subprocess.run(
        [sys.executable, "-m", "metalcast.cli.main", "--url", url, *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=180,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"metalcast {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


def show(url: str, node: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(cli(url, "--json", "node", "show", node).stdout)
    return found


def create(url: str, name: str, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = json.loads(
        cli(
            url, "--json", "node", "create", "--driver", "fake-hardware", "--name", name,
            "--driver-info", "ipmi_address=127.0.0.1", *extra,
        ).stdout
    )  # fmt: skip
    return created


def api_get(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}{path}", headers=VERSION, timeout=10)


def test_create_list_show_masks_the_password(metalcast_url: str) -> None:
    node = create(
        metalcast_url, "cli-a", "--driver-info", "ipmi_password=s3cret-pw",
        "--property", "cpus=8", "--port", "52:54:00:cc:00:01",
    )  # fmt: skip
    assert node["ports"] == ["52:54:00:cc:00:01"]

    listed = json.loads(cli(metalcast_url, "--json", "node", "list").stdout)
    assert [n["name"] for n in listed] == ["cli-a"]
    table = cli(metalcast_url, "node", "list").stdout
    assert node["uuid"] in table and "enroll" in table

    text = cli(metalcast_url, "node", "show", "cli-a").stdout
    assert "******" in text and "s3cret-pw" not in text
    assert show(metalcast_url, "cli-a")["driver_info"]["ipmi_password"] == "******"
    assert show(metalcast_url, node["uuid"])["properties"]["cpus"] == 8


def test_list_filters_and_pages(metalcast_url: str) -> None:
    for i in range(3):
        create(metalcast_url, f"cli-p{i}")
    cli(metalcast_url, "node", "manage", "cli-p1", "--wait", "60")
    names = json.loads(cli(metalcast_url, "--json", "node", "list", "--limit", "2").stdout)
    assert len(names) == 2
    managed = json.loads(
        cli(metalcast_url, "--json", "node", "list", "--provision-state", "manageable").stdout
    )
    assert [n["name"] for n in managed] == ["cli-p1"]


def test_child_nodes_are_listed_only_when_asked_for(metalcast_url: str) -> None:
    parent = create(metalcast_url, "cli-chassis")
    create(metalcast_url, "cli-blade")
    patch = [{"op": "add", "path": "/parent_node", "value": parent["uuid"]}]
    answer = httpx.patch(
        f"{metalcast_url}/v1/nodes/cli-blade", json=patch, headers=VERSION, timeout=10
    )
    assert answer.status_code == 200, answer.text

    def names(*flags: str) -> set[str]:
        listed = json.loads(cli(metalcast_url, "--json", "node", "list", *flags).stdout)
        return {n["name"] for n in listed}

    assert {"cli-chassis", "cli-blade"} - names() == {"cli-blade"}
    assert {"cli-chassis", "cli-blade"} <= names("--include-children")


def test_lifecycle_with_wait(metalcast_url: str) -> None:
    create(metalcast_url, "cli-b", "--port", "52:54:00:cc:00:02")
    for verb, state in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("deploy", "active"),
        ("undeploy", "available"),
    ]:
        result = cli(metalcast_url, "node", verb, "cli-b", "--wait", "120")
        assert f"node cli-b is {state}" in result.stdout
        node = show(metalcast_url, "cli-b")
        assert node["provision_state"] == state
        assert node["target_provision_state"] is None
        assert node["last_error"] is None


def test_injected_deploy_failure_exits_1_with_the_last_error(metalcast_url: str) -> None:
    create(metalcast_url, "cli-c", "--driver-info", "fake_fail=deploy")
    cli(metalcast_url, "node", "manage", "cli-c", "--wait", "60")
    cli(metalcast_url, "node", "provide", "cli-c", "--wait", "60")
    result = cli(metalcast_url, "node", "deploy", "cli-c", "--wait", "120", check=False)
    node = show(metalcast_url, "cli-c")
    assert result.returncode == 1
    assert node["provision_state"] == "deploy failed"
    assert node["last_error"]
    assert "ended in 'deploy failed'" in result.stderr
    assert node["last_error"].splitlines()[0] in " ".join(result.stderr.split())


def test_validate_and_history(metalcast_url: str) -> None:
    create(metalcast_url, "cli-d")
    cli(metalcast_url, "node", "manage", "cli-d", "--wait", "60")
    validate = json.loads(cli(metalcast_url, "--json", "node", "validate", "cli-d").stdout)
    assert validate["power"]["result"] is True
    assert "power" in cli(metalcast_url, "node", "validate", "cli-d").stdout

    events = json.loads(cli(metalcast_url, "--json", "node", "history", "cli-d").stdout)
    assert events, "managing a node leaves history"
    table = cli(metalcast_url, "node", "history", "cli-d").stdout
    assert "Severity" in table and events[-1]["severity"] in table


def test_audit_list_shows_who_wrote_what(metalcast_url: str) -> None:
    node = create(metalcast_url, "cli-audit")
    create(metalcast_url, "cli-other")
    cli(metalcast_url, "node", "maintenance", "set", "cli-audit", "--reason", "cabling")
    refused = cli(metalcast_url, "node", "create", "--driver", "no-such-driver", check=False)
    assert refused.returncode == 1

    mine = json.loads(cli(metalcast_url, "--json", "audit", "list", "--node", "cli-audit").stdout)
    # newest first: the maintenance, then the creation (with its port-less POST)
    assert [(e["method"], e["path"]) for e in mine] == [
        ("PUT", "/v1/nodes/cli-audit/maintenance"),
        ("POST", "/v1/nodes"),
    ]
    assert {e["node_uuid"] for e in mine} == {node["uuid"]}
    assert all(e["request_id"].startswith("req-") for e in mine)
    posts = json.loads(
        cli(metalcast_url, "--json", "audit", "list", "--method", "POST", "--limit", "1").stdout
    )
    assert len(posts) == 1 and posts[0]["status"] == 400  # the refused create, newest
    table = cli(metalcast_url, "audit", "list", "--since", "2000-01-01").stdout
    assert "PUT /v1/nodes/cli-audit/maintenance" in table and "400" in table
    bad = cli(metalcast_url, "audit", "list", "--since", "yesterday", check=False)
    assert bad.returncode == 1 and "Invalid value for since" in bad.stderr


def test_audit_paths_keep_no_secret(metalcast_url: str) -> None:
    # a path is whatever the client typed; the server's database and logs are searched
    # for the registered secret when it stops (conftest.running_server)
    secret = "Audit-Path-Pass-8c1d"
    register(secret)
    refused = httpx.delete(f"{metalcast_url}/v1/nodes/password={secret}", timeout=10)
    assert refused.status_code == 400
    (newest,) = json.loads(cli(metalcast_url, "--json", "audit", "list", "--limit", "1").stdout)
    assert (newest["path"], newest["status"]) == ("/v1/nodes/password=******", 400)


def test_power_maintenance_and_boot_device(metalcast_url: str) -> None:
    create(metalcast_url, "cli-e")
    cli(metalcast_url, "node", "manage", "cli-e", "--wait", "60")
    cli(metalcast_url, "node", "power", "cli-e", "on", "--wait", "60")
    assert show(metalcast_url, "cli-e")["power_state"] == "power on"
    cli(metalcast_url, "node", "power", "cli-e", "off", "--wait", "60")
    assert show(metalcast_url, "cli-e")["power_state"] == "power off"

    cli(metalcast_url, "node", "maintenance", "set", "cli-e", "--reason", "fan swap")
    node = show(metalcast_url, "cli-e")
    assert node["maintenance"] is True and node["maintenance_reason"] == "fan swap"
    cli(metalcast_url, "node", "maintenance", "unset", "cli-e")
    assert show(metalcast_url, "cli-e")["maintenance"] is False

    cli(metalcast_url, "node", "boot-device", "set", "cli-e", "pxe", "--persistent")
    device = json.loads(cli(metalcast_url, "--json", "node", "boot-device", "get", "cli-e").stdout)
    assert device == {"boot_device": "pxe", "persistent": True}


def test_delete(metalcast_url: str) -> None:
    create(metalcast_url, "cli-f")
    create(metalcast_url, "cli-g")
    result = cli(metalcast_url, "node", "delete", "cli-f", "cli-g", "nope", check=False)
    assert result.returncode == 1
    assert "deleted node cli-f" in result.stdout and "deleted node cli-g" in result.stdout
    assert "node nope:" in result.stderr
    assert json.loads(cli(metalcast_url, "--json", "node", "list").stdout) == []


def test_api_errors_are_one_red_line(metalcast_url: str) -> None:
    result = cli(metalcast_url, "node", "show", "no-such-node", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no-such-node" in lines[0]


IMPORT_CSV = """name,driver,bmc_address,bmc_username,bmc_password,mac,cpus,memory,disk
imp-1,fake-hardware,127.0.0.1,admin,pw1,52:54:00:dd:00:01,4,4096,50
imp-2,fake-hardware,127.0.0.1,admin,pw2,zz:zz;52:54:00:dd:00:09,4,4096,50
imp-3,fake-hardware,127.0.0.2,admin,pw3,52:54:00:dd:00:03 52:54:00:dd:00:04,8,8192,100
imp-4,fake-hardware,127.0.0.3,admin,pw4,52:54:00:dd:00:05;52:54:00:ee:00:99,2,2048,20
"""


def test_import_with_bad_rows_creates_only_whole_rows(metalcast_url: str, tmp_path: Path) -> None:
    # a port the server already has, so that row 5's second port is refused by the server
    create(metalcast_url, "holder", "--port", "52:54:00:ee:00:99")
    path = tmp_path / "nodes.csv"
    path.write_text(IMPORT_CSV)

    result = cli(metalcast_url, "node", "import", str(path), check=False)

    assert result.returncode == 1
    assert "row 3: mac 'zz:zz' is not a valid MAC address" in result.stderr
    assert "row 5: port 52:54:00:ee:00:99" in result.stderr
    assert "created" in result.stdout and "rejected" in result.stdout
    assert show(metalcast_url, "imp-1")["driver_info"]["ipmi_password"] == "******"
    assert show(metalcast_url, "imp-3")["properties"]["memory_mb"] == 8192
    for name in ("imp-2", "imp-4"):
        assert api_get(metalcast_url, f"/v1/nodes/{name}").status_code == 404
    ports = api_get(metalcast_url, "/v1/ports?limit=100").json()["ports"]
    addresses = sorted(p["address"] for p in ports)
    assert addresses == [
        "52:54:00:dd:00:01", "52:54:00:dd:00:03", "52:54:00:dd:00:04", "52:54:00:ee:00:99",
    ]  # fmt: skip


def test_import_dry_run_creates_nothing(metalcast_url: str, tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(
        "- {name: y-1, driver: ipmi, bmc_address: 127.0.0.1, mac: [52:54:00:ff:00:01]}\n"
    )
    result = cli(metalcast_url, "--json", "node", "import", str(path), "--dry-run")
    assert json.loads(result.stdout) == [{"row": 1, "name": "y-1", "result": "valid", "uuid": None}]
    assert json.loads(cli(metalcast_url, "--json", "node", "list").stdout) == []


def test_unreachable_server_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = cli(url, "node", "list", check=False)
    assert result.returncode == 1
    assert f"cannot reach metalcast at {url}: is `metalcast server` running?" in result.stderr


def test_db_upgrade_and_version(tmp_path: Path) -> None:
    result = cli("http://unused", "db", "upgrade", "--state-dir", str(tmp_path))
    assert "is up to date" in result.stdout
    assert (tmp_path / "metalcast.sqlite").exists()
    assert cli("http://unused", "version").stdout.startswith("metalcast ")


def test_noauth_beyond_loopback_is_refused_before_listening(tmp_path: Path) -> None:
    """`--host 0.0.0.0` with noauth exits 1 with the reason and never serves.

    The port is held on 127.0.0.1 meanwhile, so even a server that failed to refuse
    could not bind 0.0.0.0 on it: this test never serves beyond loopback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        env |= {"METALCAST_API__AUTH_STRATEGY": "noauth", "METALCAST_BOOT__ENABLED": "false"}
        result = subprocess.run(
            [
                sys.executable, "-m", "metalcast.cli.main", "server", "--host", "0.0.0.0",
                "--port", str(port), "--state-dir", str(tmp_path / "state"),
            ],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "only allowed while the API listens on loopback, not on '0.0.0.0'" in result.stderr
    assert "listening" not in result.stdout
    assert not (tmp_path / "state").exists()  # refused before anything was written


def test_server_stops_cleanly_on_ctrl_c(start_metalcast_server: Any) -> None:
    with start_metalcast_server() as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=90) == 0, server.logs()
        assert "listening on http://127.0.0.1:" in server.stdout_path.read_text()


def test_ctrl_c_stops_waiting_and_leaves_the_node_alone(metalcast_url: str) -> None:
    create(metalcast_url, "cli-h", "--driver-info", "fake_wait=deploy")
    cli(metalcast_url, "node", "manage", "cli-h", "--wait", "60")
    cli(metalcast_url, "node", "provide", "cli-h", "--wait", "60")
    command = [sys.executable, "-m", "metalcast.cli.main", "--url", metalcast_url]
    # as in a terminal's foreground: a test run started in the background by a shell
    # without job control ignores SIGINT, and a child would inherit that (it handles
    # SIGINT, so exec resets it to the default)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        waiting = subprocess.Popen(
            [*command, "node", "deploy", "cli-h", "--wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # SIGABRT makes it print every thread's stack (see below)
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert waiting.stderr is not None
    first = waiting.stderr.readline()  # the first progress line: it is waiting now
    assert "cli-h:" in first
    waiting.send_signal(signal.SIGINT)
    try:
        _, err = waiting.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # show where it hangs
        waiting.send_signal(signal.SIGABRT)
        _, stacks = waiting.communicate(timeout=30)
        message = f"Ctrl-C did not stop the CLI within 60 s; its threads:\n{stacks}"
        raise AssertionError(message) from None
    assert waiting.returncode == 130, err
    assert "stopped waiting" in err
    assert show(metalcast_url, "cli-h")["provision_state"] == "wait call-back"


def test_wait_timeout_exits_1(metalcast_url: str) -> None:
    create(metalcast_url, "cli-i", "--driver-info", "fake_wait=deploy")
    cli(metalcast_url, "node", "manage", "cli-i", "--wait", "60")
    cli(metalcast_url, "node", "provide", "cli-i", "--wait", "60")
    result = cli(metalcast_url, "node", "deploy", "cli-i", "--wait", "1", check=False)
    assert result.returncode == 1
    assert "timed out after 1s waiting for node cli-i" in result.stderr


MIB = 2**20


def wait_for_state(url: str, node: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while api_get(url, f"/v1/nodes/{node}").json()["provision_state"] != state:
        assert time.monotonic() < deadline, f"node {node} not in {state!r} after {timeout}s"
        time.sleep(0.1)


def agent_reports(url: str, node: dict[str, Any], **progress: Any) -> None:
    """Heartbeat for ``node`` as an Ironic-style agent (no token) that reports
    ``progress``: the conductor keeps it in driver_internal_info.agent_progress."""
    body = {"callback_url": "http://127.0.0.1:9999", "progress": {"id": "c1", **progress}}
    response = httpx.post(
        f"{url}/v1/heartbeat/{node['uuid']}", json=body, headers=VERSION, timeout=10
    )
    assert response.status_code == 202, response.text


def test_show_wait_shows_the_agents_progress_and_a_failed_end(metalcast_url: str) -> None:
    node = create(metalcast_url, "cli-j", "--driver-info", "fake_wait=deploy")
    cli(metalcast_url, "node", "manage", "cli-j", "--wait", "60")
    cli(metalcast_url, "node", "provide", "cli-j", "--wait", "60")
    cli(metalcast_url, "node", "deploy", "cli-j")
    wait_for_state(metalcast_url, "cli-j", "wait call-back")
    agent_reports(
        metalcast_url, node, name="write_image", done=120 * MIB, total=256 * MIB, rate=12.3 * MIB
    )
    progress = "write_image 120.0 MiB of 256.0 MiB (47%), 12.3 MiB/s"
    shown = cli(metalcast_url, "node", "show", "cli-j").stdout
    assert any("agent_progress" in row and progress in row for row in shown.splitlines())

    command = [sys.executable, "-m", "metalcast.cli.main", "--url", metalcast_url]
    waiting = subprocess.Popen(
        [*command, "node", "show", "cli-j", "--wait", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")},
    )
    assert waiting.stderr is not None
    first = waiting.stderr.readline()  # printed at once, however long the line
    assert first.strip() == f"cli-j: wait call-back → active · {progress}"
    cli(metalcast_url, "node", "abort", "cli-j")
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 1, err
    assert "cli-j: deploy failed" in err
    assert "error: node cli-j ended in 'deploy failed'" in err
    assert "deploy failed" in out  # the node is shown as it ended


def test_show_wait_follows_a_deploy_to_active(metalcast_url: str) -> None:
    # each fake operation takes 2 s: the deploy is still going when show starts
    create(metalcast_url, "cli-k", "--driver-info", "fake_latency=2")
    cli(metalcast_url, "node", "manage", "cli-k", "--wait", "60")
    cli(metalcast_url, "node", "provide", "cli-k", "--wait", "60")
    cli(metalcast_url, "node", "deploy", "cli-k")
    result = cli(metalcast_url, "node", "show", "cli-k", "--wait", "120")
    assert result.stderr.splitlines()[0] == "cli-k: deploying → active", result.stderr
    assert result.stderr.splitlines()[-1] == "cli-k: active"
    assert any("provision_state" in row and "active" in row for row in result.stdout.splitlines())
    again = cli(metalcast_url, "--json", "node", "show", "cli-k", "--wait")
    assert again.stderr == ""  # resting: shown at once
    assert json.loads(again.stdout)["provision_state"] == "active"
