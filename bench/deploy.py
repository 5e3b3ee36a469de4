#!/usr/bin/env python3
"""Deploy in the QEMU lab: deploy → active for one and for N machines in parallel,
split by phase, and the agent's image write against a plain ``dd`` (as root).

    sudo .venv/bin/python bench/deploy.py                    # 4 machines, 256 MiB image
    sudo .venv/bin/python bench/deploy.py --nodes 2 --image-mib 128 --runs 1
    sudo .venv/bin/python bench/deploy.py --nodes 1 --inspect-only    # inspection alone

1. Builds (or reuses, in ``--cache-dir``) the deploy ramdisk and the lab's bootable
   test disk; pads the disk to ``--image-mib`` with random bytes (zeros would let the
   agent skip blocks) into ``<work>/images/disk.raw``: a ``file://`` source for the
   deploys (``images.file_roots``), linked as ``/images/bench/disk.raw`` on the boot
   HTTP server for ``dd``, which fetches it with a URL signed as the conductor signs
   the agent's, and a token.
2. Starts its own ``metalcast server`` (fresh state dir, free port, boot services in
   namespace ``mcbench<pid>``), ``lab up --nodes N``, manage all, inspect the first
   machine alone (in-band: the ramdisk boots, the agent reports its inventory: timed,
   to the first heartbeat and after it; ``--inspect-only`` stops here), provide all
   (cleaning through the agent: timed).
3. ``--runs`` times in turn: deploys one machine alone (with a config drive),
   undeploys it, runs a plain ``wget -O - URL | dd of=/dev/vda bs=1M conv=fsync`` in
   the same kind of guest (TCG, q35, 1 GiB, virtio disk on a fresh 2 GiB qcow2, the deploy ramdisk
   booted with ``metalcast.bench=dd:<url>``); then deploys all N in parallel.
4. Phases come from the node history (``created_at`` of each event) and the first
   ``agent_last_heartbeat`` seen while polling the node every 0.25 s.

Cleans up whatever happens: ``lab down``, QEMUs left in the namespace killed by PID,
the server SIGTERMed, the namespace deleted.  Prints markdown; ``--json`` gets it all.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from server import LOOPBACK, ManagedServer, free_port, launch

from metalcast.agent_downloads import PURPOSE, UrlSigner, token_hash
from metalcast.secrecy import SecretBox

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
API = {"X-OpenStack-Ironic-API-Version": "1.81"}
BOOT_HTTP = "http://192.168.77.1:8080"
#: the agent token the dd baseline shows the boot server with its signed URL
DD_TOKEN = "bench-dd-token"
BRIDGE = "mcbr0"
POLL = 0.25
MIB = 2**20


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*command: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_udp_base(count: int) -> int:
    """A port P such that UDP P … P+count-1 are free on 127.0.0.1 (the BMCs)."""
    for _ in range(100):
        base = random.randrange(40000, 60000)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return base
    raise RuntimeError("no free UDP ports")


def uptime() -> str:
    return run("uptime").strip()


# ----------------------------------------------------------------------- inputs


def build_inputs(cache: Path, state: Path, image_mib: int) -> dict[str, Any]:
    """The deploy ramdisk (in the cache), the padded disk image (in ``state/images``,
    the server's one images.file_roots)."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    log("deploy ramdisk (a no-op when current)")
    run(str(VENV_BIN / "metalcast"), "ramdisk", "build", "--output", str(cache / "ramdisk"),
        "--cache-dir", str(debs))  # fmt: skip
    log("lab test disk (a no-op when current)")
    from metalcast.lab.diskimage import build_test_image

    base = build_test_image(cache / "test-disk.raw", cache_dir=debs)
    image = state / "images" / "disk.raw"
    image.parent.mkdir(parents=True)
    shutil.copyfile(base, image)
    pad_with_random(image, image_mib * MIB)
    digest = hashlib.sha256()
    with image.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            digest.update(chunk)
    return {
        "kernel": cache / "ramdisk" / "deploy.kernel",
        "initramfs": cache / "ramdisk" / "deploy.initramfs",
        "image": image,
        "base_bytes": base.stat().st_size,
        "bytes": image.stat().st_size,
        "sha256": digest.hexdigest(),
    }


def pad_with_random(image: Path, size: int) -> None:
    """Append random bytes (real data, no holes) up to ``size``."""
    with image.open("ab") as handle:
        left = size - image.stat().st_size
        while left > 0:
            handle.write(os.urandom(min(left, 4 * MIB)))
            left -= min(left, 4 * MIB)


# ------------------------------------------------------------------------- lab


@dataclass
class Lab:
    server: ManagedServer
    netns: str
    lab_dir: Path
    base_port: int
    state: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def lab(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METALCAST_")}
        return run(str(VENV_BIN / "metalcast"), "--url", self.url, "lab", *args,
                   "--lab-dir", str(self.lab_dir), env=env)  # fmt: skip

    def baremetal(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "OS_ENDPOINT": self.url, "OS_AUTH_TYPE": "none"}
        for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
            env.pop(var, None)
        return subprocess.Popen(
            [str(VENV_BIN / "baremetal"), *args], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def node(self, name: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/nodes/{name}", headers=API, timeout=30)
        answer.raise_for_status()
        shown: dict[str, Any] = answer.json()
        return shown

    def history(self, name: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.url}/v1/nodes/{name}/history",
            headers=API,
            params={"detail": "true"},
            timeout=30,
        )
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["history"]
        return events


def start_server(state: Path, netns: str, inputs: dict[str, Any]) -> ManagedServer:
    port = free_port()
    env = {
        "METALCAST_BOOT__ENABLED": "true",
        "METALCAST_BOOT__NETNS": netns,
        "METALCAST_BOOT__INTERFACE": BRIDGE,
        "METALCAST_BOOT__KERNEL": str(inputs["kernel"]),
        "METALCAST_BOOT__RAMDISK": str(inputs["initramfs"]),
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
        "METALCAST_IMAGES__FILE_ROOTS": str(inputs["image"].parent),
    }
    server = launch(
        "metalcast",
        [str(VENV_BIN / "metalcast"), "server", "--host", LOOPBACK, "--port", str(port),
         "--state-dir", str(server_state(state))],
        base_url=f"http://{LOOPBACK}:{port}", log_path=state / "server.log", env=env,
    )  # fmt: skip
    server.wait_ready()
    return server


def server_state(state: Path) -> Path:
    """The server's state directory: apart from the image, which it may not read there."""
    return state / "server"


def dd_url(state: Path, image: Path, timeout: float) -> str:
    """The image on the boot HTTP server, signed for :data:`DD_TOKEN` as the conductor
    signs an agent's download (the boot server serves nothing unsigned)."""
    served = server_state(state) / "images" / "bench" / image.name
    if not served.exists():
        served.parent.mkdir(parents=True, exist_ok=True)
        os.link(image, served)
    box = SecretBox.from_file(server_state(state) / "secret.key")
    path = UrlSigner(box.derive_key(PURPOSE)).sign(
        f"/images/bench/{image.name}",
        node="bench-dd",
        token_sha256=token_hash(DD_TOKEN),
        expires=int(time.time() + timeout + 600),
    )
    return BOOT_HTTP + path


def tear_down(lab: Lab | None, server: ManagedServer | None, netns: str) -> None:
    if lab is not None:
        with contextlib.suppress(Exception):
            lab.lab("down")
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    for pid in (int(p) for p in listed.stdout.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if server is not None:
        server.stop()
    subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


# ------------------------------------------------------------------- operations


@dataclass
class Operation:
    """One node's provision action, watched until it settles."""

    node: str
    action: str
    started: float = 0.0  # epoch seconds
    wall: float | None = None
    state: str = ""
    error: str | None = None
    first_heartbeat: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def act(
    lab: Lab, nodes: list[str], action: list[str], goal: str, timeout: float
) -> list[Operation]:
    """``baremetal node ACTION`` on every node at once; poll until each is ``goal``
    (or failed); every node's history since then."""
    ops = [Operation(name, action[0]) for name in nodes]
    procs = []
    for op in ops:
        op.started = time.time()
        procs.append(lab.baremetal("node", action[0], op.node, *action[1:]))
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"baremetal node {' '.join(action)}: {err}")
    watch(lab, ops, goal, timeout)
    for op in ops:
        op.events = [e for e in lab.history(op.node) if epoch(e["created_at"]) >= op.started - 1]
    return ops


def watch(lab: Lab, ops: list[Operation], goal: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ops)
    while pending and time.monotonic() < deadline:
        for op in list(pending):
            node = lab.node(op.node)
            beat = (node.get("driver_internal_info") or {}).get("agent_last_heartbeat")
            if beat and op.first_heartbeat is None and epoch(beat) >= op.started:
                op.first_heartbeat = beat
            op.state = node["provision_state"]
            if op.state == goal or op.state.endswith("failed"):
                op.wall = time.time() - op.started
                op.error = node.get("last_error")
                pending.remove(op)
        time.sleep(POLL)
    bad = [f"{op.node}: {op.state} {op.error or ''}" for op in ops if op.state != goal]
    if bad:
        raise RuntimeError(f"not {goal}: {bad}")


def epoch(stamp: str) -> float:
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# ----------------------------------------------------------------------- phases

WRITE = re.compile(r"write_image succeeded \((\d+) bytes to \S+ in ([\d.]+) s")
IN_SECONDS = re.compile(r" in ([\d.]+) s$")


def find(op: Operation, text: str) -> dict[str, Any] | None:
    return next((e for e in op.events if text in e["event"]), None)


def at(op: Operation, text: str) -> float | None:
    event = find(op, text)
    return epoch(event["created_at"]) if event else None


def said_seconds(op: Operation, text: str) -> float | None:
    event = find(op, text)
    match = IN_SECONDS.search(event["event"]) if event else None
    return float(match.group(1)) if match else None


def deploy_phases(op: Operation) -> dict[str, float | None]:
    """Seconds per phase of one deploy, from its history and first heartbeat."""
    booting, active = at(op, "Deploy ramdisk booting"), at(op, "→ active")
    wrote, drive = at(op, "write_image succeeded"), at(op, "write_configdrive succeeded")
    event = find(op, "write_image succeeded")
    match = WRITE.search(event["event"]) if event else None
    size, seconds = (int(match.group(1)), float(match.group(2))) if match else (0, None)
    beat = epoch(op.first_heartbeat) if op.first_heartbeat else None
    write_start = wrote - seconds if wrote and seconds is not None else None

    def span(a: float | None, b: float | None) -> float | None:
        return b - a if a is not None and b is not None else None

    return {
        "image cache (conductor)": said_seconds(op, "Image ready"),
        "ramdisk boot set up + power": said_seconds(op, "Deploy ramdisk booting"),
        "ramdisk boot → first heartbeat": span(booting, beat),
        "first heartbeat → write start": span(beat, write_start),
        "image write (agent's seconds)": seconds,
        "config drive (→ its result)": span(wrote, drive),
        "reboot to disk → active": span(drive or wrote, active),
        "total (history)": span(op.started, active),
        "wall (client)": op.wall,
        "write MiB/s": size / seconds / MIB if size and seconds else None,
    }


def inspect_phases(op: Operation) -> dict[str, float | None]:
    """Seconds of an inspection: to the agent's first heartbeat (the ramdisk's boot),
    from it to manageable (the inventory, its checks, the rules, the power off)."""
    beat = epoch(op.first_heartbeat) if op.first_heartbeat else None
    done = op.started + op.wall if op.wall is not None else None
    return {
        "to_first_heartbeat": beat - op.started if beat is not None else None,
        "heartbeat_to_manageable": done - beat if done is not None and beat is not None else None,
    }


def timeline(op: Operation) -> list[str]:
    return [f"+{epoch(e['created_at']) - op.started:6.1f} s  {e['event']}" for e in op.events]


# ------------------------------------------------------------------------ dd


def dd_run(lab: Lab, inputs: dict[str, Any], index: int, timeout: float) -> dict[str, Any]:
    """A plain wget | dd of the image in a guest like the lab's, over the same HTTP."""
    work = lab.state / f"dd-{index}"
    work.mkdir()
    disk, serial = work / "disk.qcow2", work / "serial.log"
    run("qemu-img", "create", "-q", "-f", "qcow2", str(disk), "2G")
    tap = f"mcbdd{index}"
    ns = ["ip", "netns", "exec", lab.netns]
    run(*ns, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
    run(*ns, "ip", "link", "set", tap, "master", BRIDGE, "up")
    url = dd_url(lab.state, inputs["image"], timeout)
    command = [
        *ns, "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024",
        "-smp", "1", "-nographic", "-monitor", "none", "-serial", f"file:{serial}",
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac=52:54:00:6d:62:{index:02x}",
        "-drive", f"file={disk},if=virtio,format=qcow2",
        "-kernel", str(inputs["kernel"]), "-initrd", str(inputs["initramfs"]),
        "-append", f"console=ttyS0 metalcast.bench=dd:{url} metalcast.bench_token={DD_TOKEN}",
        "-no-reboot",
    ]  # fmt: skip
    qemu = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qemu.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        qemu.kill()  # by PID: `ip netns exec` execs QEMU
        qemu.wait()
    finally:
        subprocess.run([*ns, "ip", "link", "delete", tap], capture_output=True, check=False)
    found = re.search(r"METALCAST-BENCH dd (\S+) ([\d.]+)", serial.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"no METALCAST-BENCH line in {serial}")
    size = int(found.group(1)) if found.group(1).isdigit() else inputs["bytes"]
    seconds = float(found.group(2))
    same = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(inputs["image"]), str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return {"bytes": size, "seconds": seconds, "mib_s": size / seconds / MIB,
            "identical": same.returncode == 0}  # fmt: skip


# ----------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def phase_table(single: dict[str, Any], many: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"| phase (s) | 1 node | {len(many)} in parallel: median | min | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in single:
        values = [p[name] for p in many if p[name] is not None]
        stats = (statistics.median(values), min(values), max(values)) if values else (None,) * 3
        lines.append(f"| {name} | {fmt(single[name])} | " + " | ".join(map(fmt, stats)) + " |")
    return lines


def inspect_report(result: dict[str, Any]) -> list[str]:
    inspect = result.get("inspect_1")
    if not inspect:
        return []
    return [
        "",
        "| inspect 1 machine at load | wall, s | → first heartbeat | heartbeat → manageable |",
        "| --- | ---: | ---: | ---: |",
        f"| {result.get('uptime_before', '').split('load average:')[-1].strip()} | "
        f"{fmt(inspect['wall'])} | "
        f"{fmt(inspect['to_first_heartbeat'])} | {fmt(inspect['heartbeat_to_manageable'])} |",
    ]


def report(result: dict[str, Any]) -> str:
    if "deploy_1" not in result:
        return "\n".join(inspect_report(result))
    lines = ["", *phase_table(result["deploy_1"], result["deploy_n"]), ""]
    lines += inspect_report(result)
    for what in ("provide", "undeploy"):
        walls = [fmt(w) for w in result[f"{what}_walls"]]
        lines.append(f"{what} (cleaning through the agent), wall s per node: {', '.join(walls)}")
    agents = [r["write MiB/s"] for r in result.get("deploy_1_runs", []) if r["write MiB/s"]]
    dds = [r["mib_s"] for r in result["dd"]]
    agent = statistics.median(agents) if agents else None
    dd = statistics.median(dds) if dds else None
    lines += [
        "",
        "| run | agent write_image, MiB/s | dd, MiB/s | agent / dd |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {i + 1} | {fmt(a)} | {d['mib_s']:.1f} ({d['seconds']:.1f} s, "
            f"identical={d['identical']}) | {a / d['mib_s']:.2f} |"
            for i, (a, d) in enumerate(zip(agents, result["dd"], strict=False))
        ),
        f"| median | {fmt(agent)} | {fmt(dd)} | **{agent / dd:.2f}** |"
        if agent and dd
        else "| median | - | - | - |",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------ main


def set_image(lab: Lab, nodes: list[str], inputs: dict[str, Any]) -> None:
    """The image on every node (undeploy clears instance_info, as Ironic does)."""
    for name in nodes:
        proc = lab.baremetal(
            "node", "set", name,
            "--instance-info", f"image_source={inputs['image'].as_uri()}",
            "--instance-info", f"image_checksum={inputs['sha256']}",
        )  # fmt: skip
        if proc.wait() != 0:
            raise RuntimeError(f"baremetal node set {name}: {proc.communicate()[1]}")


def config_drive(tmp: Path) -> Path:
    drive = tmp / "configdrive" / "openstack" / "latest"
    drive.mkdir(parents=True, exist_ok=True)
    (drive / "meta_data.json").write_text('{"uuid": "bench", "hostname": "bench.lab"}')
    (drive / "user_data").write_text("#cloud-config from bench/deploy.py\n")
    return tmp / "configdrive"


def scenario(
    lab: Lab, args: argparse.Namespace, inputs: dict[str, Any], result: dict[str, Any]
) -> None:
    """Fills ``result`` as it goes (a failure keeps what was measured)."""
    nodes = [f"lab-{i}" for i in range(args.nodes)]
    log(f"manage + inspect + provide {len(nodes)} nodes")
    act(lab, nodes, ["manage"], "manageable", args.timeout)
    # in-band inspection of one machine alone: ramdisk boot, the agent's inventory
    inspect = act(lab, nodes[:1], ["inspect"], "manageable", args.timeout)[0]
    result["inspect_1"] = {"wall": inspect.wall, **inspect_phases(inspect)}
    result["inspect_1_timeline"] = timeline(inspect)
    if args.inspect_only:
        return
    provide = act(lab, nodes, ["provide"], "available", args.timeout)
    result["provide_walls"] = [op.wall for op in provide]
    result["provide_timeline"] = timeline(provide[0])
    set_image(lab, nodes, inputs)
    deploy = ["deploy", "--config-drive", str(config_drive(lab.state))]
    # one machine alone and dd in turns, so that both see the same load on average
    result["deploy_1_runs"], result["undeploy_walls"], result["dd"] = [], [], []
    for index in range(args.runs):
        if index:
            set_image(lab, nodes[:1], inputs)
        log(f"deploy 1 node (run {index + 1})")
        single = act(lab, nodes[:1], deploy, "active", args.timeout)[0]
        result["deploy_1_runs"].append(deploy_phases(single))
        if index == 0:
            result["deploy_1"], result["deploy_1_timeline"] = (
                deploy_phases(single),
                timeline(single),
            )
        log("undeploy it")
        undeploy = act(lab, nodes[:1], ["undeploy"], "available", args.timeout)
        result["undeploy_walls"] += [op.wall for op in undeploy]
        log(f"dd run {index + 1}")
        result["dd"].append(dd_run(lab, inputs, index, args.timeout))
    set_image(lab, nodes[:1], inputs)
    log(f"deploy {len(nodes)} nodes in parallel")
    many = act(lab, nodes, deploy, "active", args.timeout)
    result["deploy_n"] = [deploy_phases(op) for op in many]
    result["deploy_n_timelines"] = {op.node: timeline(op) for op in many}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--image-mib", type=int, default=256)
    parser.add_argument(
        "--runs", type=int, default=3, help="single-node deploys and dd runs, in turns"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="per operation, s")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/metalcast-bench-cache"))
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "deploy.json")
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument(
        "--inspect-only", action="store_true", help="stop after inspecting one machine"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (network namespace, taps)")
    netns = f"mcbench{os.getpid() % 100000}"
    state = Path(tempfile.mkdtemp(prefix="mcbench-deploy-"))
    result: dict[str, Any] = {"uptime_before": uptime(), "netns": netns, "argv": sys.argv}
    log(f"state {state}, netns {netns}; {result['uptime_before']}")
    server = lab = None
    try:
        inputs = build_inputs(args.cache_dir, state, args.image_mib)
        result["image"] = {k: str(v) for k, v in inputs.items()}
        server = start_server(state, netns, inputs)
        lab = Lab(server, netns, state / "lab", free_udp_base(args.nodes), state)
        lab.lab("up", "--nodes", str(args.nodes), "--netns", netns,
                "--base-port", str(lab.base_port))  # fmt: skip
        scenario(lab, args, inputs, result)
    finally:
        tear_down(lab, server, netns)
        result["uptime_after"] = uptime()
        if not args.keep_state:
            shutil.rmtree(state, ignore_errors=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(report(result))
    print(f"\nuptime before: {result['uptime_before']}\nuptime after:  {result['uptime_after']}")
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
