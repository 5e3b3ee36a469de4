"""Agent-driven provisioning: the ``direct`` deploy and cleaning through the agent.

The conductor never connects into a node.  It boots the node into the deploy
ramdisk and queues commands for the agent in ``driver_internal_info``; the agent
picks them up from its heartbeat replies and reports their results
(:mod:`metalcast.conductor.agent`).  When the queue is empty the conductor carries on
in a worker:

    deploy:   deploying ─ deploy.deploy: ramdisk booted ─▶ wait call-back ─ (agent up)
              ─▶ deploying ─ in-band steps (software RAID) ─▶ wait call-back ─▶ …
              ─ deploy.write_image: image cached; write_image, write_configdrive ─▶
              wait call-back ─▶ deploying ─ boot device disk, ramdisk off, power on
              (:func:`carry_out`) ─▶ active
    cleaning: cleaning ─ ramdisk booted ─▶ clean wait ─ (agent up) ─▶ cleaning
              ─ each agent step (erase_metadata) ─▶ clean wait ─▶ … ─▶ available

Every phase's start, end and duration lands in the node's history.

Every interface asks for the agent the same way: it returns a
:class:`~metalcast.drivers.base.StepOutcome` carrying
:class:`~metalcast.drivers.base.AgentWork` (from ``deploy``, ``prepare_cleaning``, a
clean step or ``inspect_hardware``), which :func:`hand_over` carries out.  What the
conductor keeps of the agent is an :class:`~metalcast.conductor.agent_state.AgentState`.

The queued ``url`` of a download is a path under the boot HTTP server's /images/;
each heartbeat reply carries it signed for the node and its agent token, valid for
``images.agent_url_ttl`` seconds (:func:`signed`, :mod:`metalcast.agent_downloads`).
The config drive is removed as soon as the node leaves the deploy, however it leaves
(:meth:`metalcast.conductor.runtime.Runtime.discard_config_drive`).
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metalcast.agent_downloads import token_hash as token_hash
from metalcast.conductor import agent_state, sources
from metalcast.conductor.interfaces import OperationFailed, call, interface_of
from metalcast.conductor.power import set_power
from metalcast.conductor.task import NodeTask
from metalcast.drivers import raid_agent
from metalcast.drivers.base import (
    AgentPhase,
    AgentWork,
    BootInterface,
    InstanceAction,
    ManagementInterface,
    NetworkInterface,
)
from metalcast.errors import InvalidInput, MetalcastError
from metalcast.images.configdrive import (
    ConfigDriveImage,
    InstanceIdentity,
    RemoteConfigDrive,
    fetch_config_drive,
    prepare_config_drive,
)
from metalcast.images.source import parse_image_source
from metalcast.states import PowerTarget
from metalcast_agent.protocol import CommandSpec

#: how many of the agent's log lines a node keeps
AGENT_LOG_LINES = 200
#: where the boot HTTP server serves the images directory
DOWNLOADS = "/images/"


def command(name: str, args: Mapping[str, Any]) -> CommandSpec:
    """A queued agent command with a fresh id."""
    return CommandSpec(id=uuidlib.uuid4().hex, name=name, args=dict(args))


def queue(task: NodeTask, *commands: CommandSpec) -> None:
    """Append ``commands`` to the node's agent queue (saved with the next save)."""
    state = agent_state.of(task)
    agent_state.store(task, replace(state, commands=(*state.commands, *commands)))


def hand_over(task: NodeTask, work: AgentWork, *, booting: bool = False) -> None:
    """Carry out what an interface asked of the agent: prepare the instance's
    commands (``prepare_instance``), queue its commands (with ``write_instance``,
    first those that write the instance) and, unless the agent is already up for
    ``work.phase`` (or, ``booting``, was just booted for it by the step before),
    boot the node into the deploy ramdisk.  The caller moves the node to its wait
    state.  Raises OperationFailed."""
    commands = [command(c.name, c.args) for c in work.commands]
    if work.prepare_instance:
        prepared = tuple(_deploy_commands(task))
        agent_state.store(task, replace(agent_state.of(task), prepared=prepared))
    if work.write_instance:
        state = agent_state.of(task)
        written = [_onto_raid_root(task, c) for c in state.prepared] or _deploy_commands(task)
        commands = [*written, *commands]
        agent_state.store(task, replace(state, prepared=()))
    state = agent_state.of(task)
    if state.phase is work.phase and (state.resumed or booting):
        queue(task, *commands)
        return
    # a new boot: whatever an aborted or timed-out phase left queued is dropped
    agent_state.store(task, replace(state, commands=tuple(commands)))
    boot_ramdisk(task, phase=work.phase)


# ---------------------------------------------------------------------- phases


def phase_event(task: NodeTask, text: str, *, started: float | None = None) -> None:
    """Record a phase in the history; with ``started``, how long it took."""
    if started is not None:
        text = f"{text} in {time.monotonic() - started:.1f} s"
    task.save(event=text, event_type="deploy")
    task.log.info("%s: %s", task.uuid, text)


def prepare_ramdisk_boot(task: NodeTask) -> None:
    """Have this conductor's boot services serve the node the deploy ramdisk (its DHCP
    host entry, its boot script) and record this conductor as the one that does
    (``conductor_affinity``, saved with the next save).  Raises OperationFailed."""
    call(task, BootInterface, "prepare the deploy ramdisk boot", lambda i, c: i.prepare_ramdisk(c))
    task.update(conductor_affinity=task.rt.conductor_id)


def boot_ramdisk(task: NodeTask, *, phase: AgentPhase) -> None:
    """Make the node network-boot into the deploy ramdisk and (re)start it.  A new
    token is issued at the agent's next lookup.  Raises OperationFailed."""
    started = time.monotonic()
    prepare_ramdisk_boot(task)
    device = interface_of(task.rt, task.node, cls=BootInterface).ramdisk_boot_device
    call(
        task,
        ManagementInterface,
        "set the boot device",
        lambda i, c: i.set_boot_device(c, device, persistent=False),
    )
    set_power(task, PowerTarget.REBOOT)
    state = agent_state.of(task)
    agent_state.store(
        task,
        replace(
            state,
            phase=phase,
            resumed=False,
            token_hash=None,
            phase_started=task.rt.clock.now().isoformat(),
            progress=None,
        ),
    )
    phase_event(task, "Deploy ramdisk booting; waiting for the agent", started=started)


def _deploy_commands(task: NodeTask) -> list[CommandSpec]:
    """Cache the image, build the config drive: the agent's commands that write them.

    Raises:
        OperationFailed: a bad image description, a download or checksum failure, a
            BMC or boot-file failure; the message says which.
    """
    images = task.rt.images
    if images is None:
        raise _failed("deploy", "this conductor has no image cache")
    try:
        # decrypted here: image_source and checksum URLs may carry credentials
        source = parse_image_source(_revealed(task))
    except InvalidInput as exc:
        raise _failed("deploy", exc.message, status=400) from exc
    started = time.monotonic()
    phase_event(task, f"Image {source.display_url}: fetching into the cache")
    tenant = bool(sources.IMAGE_KEYS & sources.tenant_keys(task.node.driver_internal_info))
    try:
        image = images.fetch(source, holder=task.uuid, tenant=tenant)
    except MetalcastError as exc:
        raise _failed("cache the image", exc.message) from exc
    phase_event(
        task,
        f"Image ready: {image.raw_size} bytes raw, sha256 {image.raw_sha256[:16]}…",
        started=started,
    )
    relative = image.path.relative_to(images.root.parent).as_posix()
    commands = [
        command(
            "write_image",
            {
                "url": f"{DOWNLOADS}{relative}",
                "checksum_algo": "sha256",
                "checksum": image.raw_sha256,
                "size": image.raw_size,
                "root_device": task.node.properties.get("root_device"),
                # the software RAID root volume, when the node has one (docs/raid.md)
                "raid_root": _raid_root(task),
            },
        )
    ]
    drive = _config_drive(task)
    if drive is not None:
        commands.append(command("write_configdrive", drive))
    return commands


def _raid_root(task: NodeTask) -> str | None:
    return raid_agent.raid_root(task.node.raid_config or {})


def _onto_raid_root(task: NodeTask, prepared: CommandSpec) -> CommandSpec:
    """A prepared ``write_image`` aimed at the RAID root volume the node has now (an
    in-band deploy step may have built it since the command was prepared)."""
    if prepared["name"] != "write_image":
        return prepared
    args = {**prepared["args"], "raid_root": _raid_root(task)}
    return CommandSpec(id=prepared["id"], name=prepared["name"], args=args)


def _revealed(task: NodeTask) -> dict[str, Any]:
    """The node's ``instance_info`` decrypted, but its config drive (which only
    :func:`_config_drive` needs).  Raises UndecryptableSecret."""
    box = task.rt.secret_box
    return {
        k: v if k == "configdrive" else box.reveal(v, where=k)
        for k, v in task.node.instance_info.items()
    }


def _config_drive(task: NodeTask) -> dict[str, Any] | None:
    given = task.rt.secret_box.reveal(
        task.node.instance_info.get("configdrive"), where="configdrive"
    )
    store = task.rt.configdrives
    if given in (None, "", {}) or store is None:
        return None
    directory = store.directory(task.uuid)
    identity = InstanceIdentity(task.uuid, name=task.node.name)
    try:
        drive = prepare_config_drive(
            given, instance=identity, directory=directory, max_bytes=store.max_bytes
        )
        if isinstance(drive, RemoteConfigDrive):
            drive = _fetch_config_drive(task, drive, directory=directory)
    except MetalcastError as exc:
        raise _failed("build the config drive", exc.message, status=400) from exc
    assert isinstance(drive, ConfigDriveImage)
    relative = drive.path.relative_to(store.root.parent).as_posix()
    return {"url": f"{DOWNLOADS}{relative}", "checksum_algo": "sha256", "checksum": drive.sha256}


def _fetch_config_drive(
    task: NodeTask, drive: RemoteConfigDrive, *, directory: Path
) -> ConfigDriveImage:
    """Download a config drive given as a URL, under the rule of who gave it.
    Raises OperationFailed, MetalcastError."""
    store = task.rt.configdrives
    fetcher = task.rt.images.fetcher if task.rt.images else None
    if fetcher is None or store is None:
        raise _failed("fetch the config drive", "this conductor has no image cache")
    if "configdrive" in sources.tenant_keys(task.node.driver_internal_info):
        fetcher = fetcher.for_tenant()
    fetcher.admit(drive.url, what="Config drive")
    return fetch_config_drive(
        drive, directory=directory, fetcher=fetcher, max_bytes=store.max_bytes
    )


def signed(task: NodeTask, command: CommandSpec) -> CommandSpec:
    """``command`` as handed to the agent: a download ``url`` signed for this node and
    its agent token (unchanged without a token or a signer: the boot server refuses
    it then)."""
    url = command["args"].get("url")
    expected = agent_state.of(task).token_hash
    signer = task.rt.signer
    if not isinstance(url, str) or not url.startswith(DOWNLOADS) or signer is None:
        return command
    if expected is None:
        return command
    now = task.rt.clock.now().replace(tzinfo=UTC)  # the clock's time is naive UTC
    expires = int(now.timestamp() + task.rt.agent_url_ttl)
    path = signer.sign(url, node=task.uuid, token_sha256=expected, expires=expires)
    return CommandSpec(
        id=command["id"],
        name=command["name"],
        args={**command["args"], "url": task.rt.download_base + path},
    )


def carry_out(task: NodeTask, action: InstanceAction) -> None:
    """Do what a deploy step asked of the node's other interfaces (the end of an
    agent-driven deploy).  Raises OperationFailed."""
    if action is InstanceAction.PREPARE_INSTANCE_BOOT:
        call(
            task,
            ManagementInterface,
            "set the boot device",
            lambda i, c: i.set_boot_device(c, "disk", persistent=True),
        )
        call(task, BootInterface, "prepare the instance boot", lambda i, c: i.prepare_instance(c))
    elif action is InstanceAction.TEAR_DOWN_AGENT:
        _ramdisk_off(task)
        forget(task)
        phase_event(task, "Deploy ramdisk ended; the node is powered off")
    elif action is InstanceAction.SWITCH_TO_TENANT_NETWORK:
        call(
            task,
            NetworkInterface,
            "remove the provisioning network",
            lambda i, c: i.remove_provisioning_network(c),
        )
        call(
            task,
            NetworkInterface,
            "configure the tenant networks",
            lambda i, c: i.configure_tenant_networks(c),
        )
    elif action is InstanceAction.BOOT_INSTANCE:
        started = time.monotonic()
        set_power(task, PowerTarget.ON)
        phase_event(task, "Instance written; rebooted from its disk", started=started)


def leave_ramdisk(task: NodeTask) -> None:
    """Work through the agent is over (cleaning, inspection): no more ramdisk boot,
    power off, the agent forgotten.  Raises OperationFailed."""
    _ramdisk_off(task)
    forget(task)


def _ramdisk_off(task: NodeTask) -> None:
    call(task, BootInterface, "remove the ramdisk boot", lambda i, c: i.clean_up_ramdisk(c))
    set_power(task, PowerTarget.OFF)


def forget(task: NodeTask) -> None:
    """Drop the agent's queue, token, phase and progress; unpin the node's image."""
    agent_state.forget(task)
    if task.rt.images is not None:
        task.rt.images.unpin_all(task.uuid)
    task.rt.discard_config_drive(task.uuid)


def phase_seconds(task: NodeTask) -> float | None:
    started = agent_state.of(task).phase_started
    if started is None:
        return None
    try:
        return (task.rt.clock.now() - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return None


def _failed(operation: str, cause: str, *, status: int = 500) -> OperationFailed:
    return OperationFailed("deploy", "direct", operation, cause, status=status)


def end_ramdisk(task: NodeTask, *, operation: str) -> None:
    """After ``operation`` (a rescue, an inspection) that waited for the ramdisk's
    agent was aborted or timed out: forget the agent (its token too), remove the
    ramdisk boot and power the node off, as Ironic does.  A BMC that fails is recorded
    on the node, not raised: the abort itself is done."""
    forget(task)
    try:
        _ramdisk_off(task)
    except OperationFailed as exc:
        task.save(event=f"{operation} ended: {exc.message}", severity="ERROR")
        return
    task.save(event=f"{operation} ended: the node is powered off")
