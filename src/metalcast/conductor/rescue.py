"""Rescue: the tenant's password, the agent's ``rescue`` command, and the way back.

The rescue password is hashed (SHA-512 crypt, :mod:`metalcast.secrecy.shadow`) as
the request is staged, before anything is written: the node keeps only the hash, in
``instance_info`` under Ironic's key ``hashed_rescue_password`` (a secret: sealed at
rest, masked by the API, scrubbed from history).  The agent's ``rescue`` command is
queued without it: :func:`handed_out` adds it to the command only in the heartbeat
reply that gives it to the node's agent, so the hash is never in
``driver_internal_info``.  The hash goes as soon as the node leaves rescue, for
``active``, a failure (an abort, a timeout) or an undeploy
(:meth:`~metalcast.conductor.task.NodeTask.forget_rescue_password`, on every
transition).

    rescue:   rescuing ─ ramdisk booted ─▶ rescue wait ─ agent: rescue ─▶ rescue
              (the ramdisk stays: its DHCP lease must be renewed while the tenant works)
    unrescue: unrescuing ─ power off, boot files gone, boot from disk, power on ─▶ active

Errors::

    InvalidInput            (400) an empty password, one with a NUL character, too long
    PasswordHashUnavailable (500) no usable libcrypt on the conductor
"""

from __future__ import annotations

import time

from metalcast.conductor import agent_state, direct
from metalcast.conductor.interfaces import call
from metalcast.conductor.power import set_power
from metalcast.conductor.task import RESCUE_PASSWORD_KEYS, NodeTask
from metalcast.drivers.base import BootInterface, ManagementInterface
from metalcast.errors import InvalidInput
from metalcast.secrecy import shadow
from metalcast.states import Event, PowerTarget, ProvisionState
from metalcast_agent.protocol import CommandSpec

#: where the hash is kept (Ironic's key), and what older metalcast versions kept in
#: clear (sealed): removed wherever the hash is
HASH_KEY, LEGACY_KEY = RESCUE_PASSWORD_KEYS
#: the agent command that takes the hash, and its argument
COMMAND = "rescue"
HASH_ARGUMENT = "password_hash"
#: longer passwords are refused (hashing cost grows with the length)
MAX_PASSWORD_LENGTH = 4096


def hash_password(password: object) -> str:
    """The SHA-512 crypt hash of a tenant's rescue password.

    Raises:
        InvalidInput: not a non-empty string, a NUL character, longer than 4096.
        PasswordHashUnavailable: no usable libcrypt.
    """
    if not isinstance(password, str) or not password:
        raise InvalidInput("A non-empty 'rescue_password' is required to rescue a node.")
    if "\0" in password:
        raise InvalidInput("The 'rescue_password' cannot hold a NUL character.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"The 'rescue_password' is longer than {MAX_PASSWORD_LENGTH} characters."
        )
    return shadow.sha512_crypt(password)


def stage_password(task: NodeTask, password: object) -> None:
    """Keep the hash of ``password`` on the node (saved with the transition).

    Raises:
        InvalidInput, PasswordHashUnavailable: see :func:`hash_password`.
    """
    hashed = hash_password(password)
    info = {k: v for k, v in task.node.instance_info.items() if k != LEGACY_KEY}
    task.update(instance_info={**info, HASH_KEY: hashed})


def handed_out(task: NodeTask, command: CommandSpec) -> CommandSpec:
    """``command`` as the agent gets it: ``rescue`` with the password's hash added
    (revealed from the sealed ``instance_info`` here only).  Other commands, and a
    ``rescue`` of a node that has no hash, unchanged: the agent refuses the latter.

    Raises:
        UndecryptableSecret: the hash was sealed with another key.
    """
    if command["name"] != COMMAND:
        return command
    hashed = task.rt.secret_box.reveal(task.node.instance_info.get(HASH_KEY), where=HASH_KEY)
    if not isinstance(hashed, str):
        return command
    return CommandSpec(
        id=command["id"], name=command["name"], args={**command["args"], HASH_ARGUMENT: hashed}
    )


def finish(task: NodeTask) -> None:
    """rescue wait → rescue: the agent set the password and started SSH.  The node
    stays in the ramdisk (its boot files too: the ramdisk renews its DHCP lease); the
    agent stops heartbeating, so what the conductor kept of it goes."""
    if task.state != ProvisionState.RESCUEWAIT:
        return
    agent_state.forget(task)
    direct.phase_event(task, "Rescue: the agent started SSH for the user rescue")
    task.process_event(Event.DONE)


def boot_instance(task: NodeTask) -> None:
    """Power off, remove the ramdisk boot, boot from disk, power on: the node runs its
    instance again (unrescue).  Raises OperationFailed."""
    started = time.monotonic()
    set_power(task, PowerTarget.OFF)
    call(task, BootInterface, "remove the ramdisk boot", lambda i, c: i.clean_up_ramdisk(c))
    call(
        task,
        ManagementInterface,
        "set the boot device",
        lambda i, c: i.set_boot_device(c, "disk", persistent=True),
    )
    call(task, BootInterface, "prepare the instance boot", lambda i, c: i.prepare_instance(c))
    set_power(task, PowerTarget.ON)
    agent_state.forget(task)
    direct.phase_event(task, "Unrescue: booted from its disk again", started=started)
