"""The commands the agent knows, by name: what the conductor may hand out."""

from __future__ import annotations

from collections.abc import Mapping

from metalcast_agent.commands import CommandContext, Handler, arg_str_list
from metalcast_agent.configdrive import write_configdrive
from metalcast_agent.disks import disks_named, erase_metadata
from metalcast_agent.erase import erase_devices
from metalcast_agent.errors import InvalidArguments
from metalcast_agent.hardware import collect_inventory
from metalcast_agent.imagewrite import write_image
from metalcast_agent.raid import create_configuration, delete_configuration
from metalcast_agent.rescue import rescue


def get_inventory(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``get_inventory`` command: CPUs, memory, disks, NICs (with the LLDP heard
    within ``lldp_seconds``, at most 60), boot mode, DMI."""
    seconds = args.get("lldp_seconds") or 0
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 60:
        raise InvalidArguments("get_inventory argument 'lldp_seconds' must be 0 to 60 seconds")
    return dict(collect_inventory(ctx.env, lldp_seconds=float(seconds)))


def erase_disk_metadata(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``erase_metadata`` command: zero the first and last MiB of the disks."""
    names = arg_str_list(args, "devices", command="erase_metadata")
    disks = disks_named(ctx.env, names)
    for disk in disks:
        erase_metadata(ctx.env, disk)
    return {"devices": [disk.name for disk in disks]}


def power_off(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``power_off`` command: reported first, performed by the protocol loop."""
    ctx.power_request.append("power_off")
    return {}


def reboot(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``reboot`` command: reported first, performed by the protocol loop."""
    ctx.power_request.append("reboot")
    return {}


def default_handlers() -> dict[str, Handler]:
    """Every command of docs/agent-protocol.md."""
    return {
        "get_inventory": get_inventory,
        "erase_metadata": erase_disk_metadata,
        "erase_devices": erase_devices,
        "write_image": write_image,
        "write_configdrive": write_configdrive,
        "create_raid_configuration": create_configuration,
        "delete_raid_configuration": delete_configuration,
        "power_off": power_off,
        "reboot": reboot,
        "rescue": rescue,
    }
