"""The agent as the ramdisk runs it: ``python3 -I -S -m metalcast_agent``.

The test builds a slim interpreter tree like the ramdisk's: a copy of Debian's
``/usr/bin/python3`` (not the venv) next to a ``lib/python3.11`` holding the system
standard library *without* ``ssl``, ``_hashlib``, ``bz2`` and ``lzma``, and the
``metalcast_agent`` package copied in. Python finds its library relative to its
binary, so nothing else is importable. A fake conductor (``http.server``, in this
test) answers lookups and heartbeats and hands out a whole deployment:
get_inventory, erase_metadata, write_image, write_configdrive, power_off.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agent_machine import MIB, FakeMachine, make_iso, run, sha256, write

import metalcast_agent

SYSTEM_PYTHON = Path("/usr/bin/python3")
NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
TOKEN = "tok-9a3e51d2-never-print-me"
BOOT_MAC = "52:54:00:12:34:56"
#: left out of the slim ramdisk (docs: vm-lab.md section 4): the agent must not need them
SLIM_MISSING = ("ssl", "_ssl", "_hashlib", "bz2", "_bz2", "lzma", "_lzma")
#: the codecs the agent may use: UTF-8, and IDNA for host names (socket.getaddrinfo)
RUNTIME_CODECS = {"encodings.aliases", "encodings.utf_8", "encodings.idna"}
_NOT_COPIED = {"site-packages", "dist-packages", "__pycache__", "lib-dynload"}


def _left_out(entry: Path) -> bool:
    return entry.name.split(".")[0] in SLIM_MISSING or entry.name in _NOT_COPIED


@pytest.fixture(scope="module")
def ramdisk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``usr/bin/python3`` of a slim tree: system stdlib minus SLIM_MISSING, plus the agent."""
    assert SYSTEM_PYTHON.exists(), "the test needs Debian's /usr/bin/python3"
    version = subprocess.run(
        [
            str(SYSTEM_PYTHON),
            "-I",
            "-S",
            "-c",
            "import sys, sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stdlib = Path(version)
    root = tmp_path_factory.mktemp("ramdisk") / "usr"
    library = root / "lib" / stdlib.name
    (library / "lib-dynload").mkdir(parents=True)
    for entry in stdlib.iterdir():
        if not _left_out(entry):
            (library / entry.name).symlink_to(entry)
    for entry in (stdlib / "lib-dynload").iterdir():
        if not _left_out(entry):
            (library / "lib-dynload" / entry.name).symlink_to(entry)
    shutil.copytree(
        Path(metalcast_agent.__file__).parent,
        library / "metalcast_agent",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (root / "bin").mkdir()
    shutil.copy2(SYSTEM_PYTHON.resolve(), root / "bin" / "python3")
    return root / "bin" / "python3"


@dataclass
class Conductor:
    """What the fake conductor saw, and the deployment it hands out."""

    files: dict[str, bytes]
    commands: list[dict[str, object]]
    lookups: list[list[str]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)  # JSON as received
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    handed_out: list[str] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, addresses: list[str]) -> tuple[int, object]:
        self.lookups.append(addresses)
        if len(self.lookups) == 1 or BOOT_MAC not in addresses:  # the first one: not yet
            return 404, {"error_message": json.dumps({"faultstring": "No node is waiting."})}
        token = TOKEN if len(self.lookups) == 2 else "******"
        node = {"uuid": NODE, "properties": {}, "instance_info": {}, "driver_internal_info": {}}
        config = {
            "heartbeat_timeout": 300,
            "agent_token": token,
            "metalcast": {"heartbeat_interval": 0.05},
        }
        return 200, {"node": node, "config": config}

    def heartbeat(self, body: dict[str, object]) -> tuple[int, object]:
        if body.get("agent_token") != TOKEN:
            self.refused += 1
            return 401, {"error_message": "Unknown or invalid agent token"}
        self.heartbeats.append(body)
        results = body.get("results")
        assert isinstance(results, list)
        for result in results:
            self.results[result["id"]] = result
        waiting = self.handed_out and self.handed_out[-1] not in self.results
        command = None
        if not waiting and self.commands:
            command = self.commands.pop(0)
            self.handed_out.append(str(command["id"]))
        answer = {"ack": [r["id"] for r in results], "command": command, "heartbeat_interval": 0.05}
        return 202, answer


def serve(conductor: Conductor) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/v1/lookup":
                assert self.headers["X-OpenStack-Ironic-API-Version"] == "1.36"
                addresses = parse_qs(url.query)["addresses"][0].split(",")
                with conductor.lock:
                    self.reply(*conductor.lookup(addresses))
            elif url.path in conductor.files:
                self.reply(200, conductor.files[url.path])
            else:
                self.reply(404, {"error_message": "no such file"})

        def do_POST(self) -> None:
            assert self.path == f"/v1/heartbeat/{NODE}"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with conductor.lock:
                self.reply(*conductor.heartbeat(body))

        def reply(self, status: int, body: object) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def running(conductor: Conductor) -> Iterator[str]:
    httpd = serve(conductor)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def gpt_image(directory: Path) -> bytes:
    """An 8 MiB whole-disk image: a GPT, one partition with some bytes, holes elsewhere."""
    path = directory / "image.raw"
    with path.open("wb") as handle:
        handle.truncate(8 * MIB)
    run("sfdisk", "-q", str(path), stdin="label: gpt\nstart=2048, size=4MiB, name=root\n")
    with path.open("r+b") as handle:
        handle.seek(MIB)
        handle.write(b"root filesystem bytes " * 1000)
    return path.read_bytes()


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[bytes, bytes]:
    return gpt_image(tmp_path), make_iso(
        tmp_path, {"openstack/latest/meta_data.json": '{"uuid": "x"}'}
    )


@pytest.fixture
def conductor(deployment: tuple[bytes, bytes]) -> Conductor:
    image, iso = deployment
    return Conductor(files={"/image.raw": image, "/config.iso": iso}, commands=[])


def start_agent(python: Path, machine: FakeMachine, *options: str) -> subprocess.Popen[str]:
    argv = [
        str(python),
        "-I",
        "-S",
        *options,
        "-m",
        "metalcast_agent",
        f"--sys-root={machine.env.sys_root}",
        f"--proc-root={machine.env.proc_root}",
        f"--dev-root={machine.env.dev_root}",
        "--power-action=exit",
    ]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def wait(process: subprocess.Popen[str]) -> tuple[int, str]:
    """The exit status and console output; the process is gone afterwards."""
    try:
        _, console = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, console


def test_a_whole_deployment_under_the_system_python(
    ramdisk_python: Path,
    machine: FakeMachine,
    conductor: Conductor,
    running: str,
    deployment: tuple[bytes, bytes],
) -> None:
    image, iso = deployment
    disk = machine.add_disk("vda", 128 * MIB, serial="QM00001")
    disk.write_bytes(os.urandom(2 * MIB) + bytes(124 * MIB) + os.urandom(2 * MIB))
    machine.add_nic("mcfake0", "52:54:00:aa:bb:01")
    machine.add_nic("mcfake1", BOOT_MAC)
    write(
        machine.env.proc_root / "cmdline",
        f"console=ttyS0 metalcast.api={running} BOOTIF=01-{BOOT_MAC.replace(':', '-')} "
        "metalcast.heartbeat=0.05\n",
    )
    conductor.commands = [
        {"id": "c1", "name": "get_inventory", "args": {}},
        {"id": "c2", "name": "erase_metadata", "args": {"devices": None}},
        {
            "id": "c3",
            "name": "write_image",
            "args": {
                "url": f"{running}/image.raw",
                "checksum_algo": "sha256",
                "checksum": sha256(image),
                "size": len(image),
                "root_device": {"serial": "QM00001"},
            },
        },
        {
            "id": "c4",
            "name": "write_configdrive",
            "args": {
                "url": f"{running}/config.iso",
                "checksum_algo": "sha256",
                "checksum": sha256(iso),
                "device": "/dev/vda",
            },
        },
        {"id": "c5", "name": "power_off", "args": {}},
    ]

    status, output = wait(start_agent(ramdisk_python, machine, "-X", "importtime"))
    console, imported = split_importtime(output)

    assert status == 0, output
    assert {cid: r["status"] for cid, r in conductor.results.items()} == {
        "c1": "succeeded",
        "c2": "succeeded",
        "c3": "succeeded",
        "c4": "succeeded",
        "c5": "succeeded",
    }, {cid: r["error"] for cid, r in conductor.results.items()}
    inventory = conductor.results["c1"]["result"]
    assert [d["name"] for d in inventory["disks"]] == ["/dev/vda"]
    assert [n["mac_address"] for n in inventory["interfaces"]] == ["52:54:00:aa:bb:01", BOOT_MAC]
    assert conductor.results["c3"]["result"]["bytes"] == len(image)
    offset = conductor.results["c4"]["result"]["offset"]
    content = disk.read_bytes()
    # all but the GPT (moved, with one more entry) is the image
    assert content[34 * 512 : len(image) - 33 * 512] == image[34 * 512 : len(image) - 33 * 512]
    assert content[offset : offset + len(iso)] == iso
    assert conductor.lookups[1][0] == BOOT_MAC
    assert conductor.refused == 0

    assert TOKEN not in console
    shipped = [line for body in conductor.heartbeats for line in body["log"]]
    assert TOKEN not in "\n".join(shipped)
    assert any("write_image: /dev/vda chosen" in line for line in shipped)
    assert all(line.startswith("METALCAST-AGENT ") for line in console), console

    assert "metalcast_agent.configdrive" in imported
    top_level = {name.split(".")[0] for name in imported}
    # "org" is copy.py's probe for Jython's org.python.core: tried, not found
    assert top_level - set(sys.stdlib_module_names) - {"org"} == {"metalcast_agent"}
    # codecs are imported by name when used: a ramdisk built from the modules the
    # agent's imports reach would lack any other
    assert {name for name in imported if name.startswith("encodings.")} <= RUNTIME_CODECS


def split_importtime(output: str) -> tuple[list[str], set[str]]:
    """The console lines, and the modules ``-X importtime`` saw imported (or tried)."""
    console, imported = [], set()
    for line in output.splitlines():
        if not line.startswith("import time:"):
            console.append(line)
        elif "imported package" not in line:
            imported.add(line.rpartition("|")[2].strip())
    return console, imported


def test_the_slim_tree_lacks_what_the_ramdisk_leaves_out(ramdisk_python: Path) -> None:
    """What proves the agent does without SLIM_MISSING: its interpreter cannot import them."""
    for name in SLIM_MISSING:
        probe = subprocess.run(
            [str(ramdisk_python), "-I", "-S", "-c", f"import {name}"],
            capture_output=True,
            check=False,
        )
        assert probe.returncode == 1, f"{name} is importable in the slim tree"


def test_a_missing_api_exits_with_a_message(ramdisk_python: Path, machine: FakeMachine) -> None:
    write(machine.env.proc_root / "cmdline", "console=ttyS0")

    status, console = wait(start_agent(ramdisk_python, machine))

    assert status == 2
    assert "No metalcast API URL: boot the ramdisk with metalcast.api=http://ADDR:PORT" in console
