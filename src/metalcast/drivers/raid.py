"""RAID configurations: the logical disks a node's ``target_raid_config`` asks for and
its ``raid_config`` reports, checked as Ironic's RAID schema checks them.

A configuration is ``{"logical_disks": [{...}, ...]}``; ``{}`` means none.  Each
logical disk needs ``raid_level`` and ``size_gb`` (a positive number of GiB, or
``"MAX"`` for the space left); at most one is the root volume and volume names are
unique.  RAID interfaces validate with :func:`validate` and describe the keys with
:func:`logical_disk_properties` unless they accept something else.

Errors: ``InvalidInput`` (400) naming the offending logical disk and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from metalcast.errors import InvalidInput

RaidLevel = Literal["JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"]


class LogicalDisk(BaseModel):
    """One logical disk of a RAID configuration (Ironic's keys and values)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    raid_level: RaidLevel = Field(
        description="RAID level of the logical disk: 'JBOD', '0', '1', '2', '5', '6', "
        "'1+0', '5+0' or '6+0' (a string). Required."
    )
    size_gb: int | str = Field(
        description="Size in GiB of the logical disk, a positive integer, or 'MAX' to use "
        "the space left. Required."
    )
    volume_name: str | None = Field(
        default=None,
        description="Name of the volume to create; the driver makes one up when it is not "
        "given. Optional.",
    )
    is_root_volume: bool = Field(
        default=False,
        description="Whether the instance is deployed on this logical disk; at most one "
        "logical disk is the root volume. Optional; default false.",
    )
    share_physical_disks: bool = Field(
        default=False,
        description="Whether other logical disks may use the same physical disks. "
        "Optional; default false.",
    )
    disk_type: Literal["hdd", "ssd"] | None = Field(
        default=None,
        description="Which kind of physical disk to use: 'hdd' or 'ssd'; any kind when it "
        "is not given. Optional.",
    )
    interface_type: Literal["sata", "scsi", "sas"] | None = Field(
        default=None,
        description="Which disk interface to use: 'sata', 'scsi' or 'sas'; any when it is "
        "not given. Optional.",
    )
    number_of_physical_disks: int | None = Field(
        default=None,
        gt=0,
        description="How many physical disks to use; the fewest the RAID level needs when "
        "it is not given. Optional.",
    )
    controller: str | None = Field(
        default=None,
        description="The RAID controller to use; the driver picks one when it is not "
        "given. Optional.",
    )
    physical_disks: list[str | dict[str, Any]] | None = Field(
        default=None,
        description="The physical disks to use (needs 'controller'); the driver picks them "
        "when they are not given. Optional.",
    )

    @field_validator("size_gb", mode="plain")
    @classmethod
    def _size(cls, value: object) -> int | str:
        if value == "MAX":
            return "MAX"
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise ValueError(f"it must be a positive integer (GiB) or 'MAX', not {value!r}")

    @model_validator(mode="after")
    def _disks_need_controller(self) -> Self:
        if self.physical_disks is not None and self.controller is None:
            raise ValueError("'physical_disks' needs 'controller' too")
        return self


class RaidConfig(BaseModel):
    """A whole target RAID configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    logical_disks: list[LogicalDisk] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        roots = sum(1 for disk in self.logical_disks if disk.is_root_volume)
        if roots > 1:
            raise ValueError(f"at most one logical disk may be the root volume, not {roots}")
        names = [d.volume_name for d in self.logical_disks if d.volume_name is not None]
        if len(names) != len(set(names)):
            raise ValueError("volume_name values must be unique")
        return self


def validate(config: Mapping[str, Any]) -> RaidConfig:
    """``config`` checked as a target RAID configuration.

    Raises:
        InvalidInput: it is malformed; the message names every problem.
    """
    try:
        return RaidConfig.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors())
        raise InvalidInput(f"Invalid RAID configuration: {problems}.") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    where = ".".join(str(part) for part in loc)
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def logical_disk_properties() -> dict[str, str]:
    """Every key a logical disk may have, with its description."""
    return {name: field.description or "" for name, field in LogicalDisk.model_fields.items()}


def root_volume(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The logical disk marked ``is_root_volume`` (None: none is)."""
    for disk in config.get("logical_disks") or []:
        if isinstance(disk, Mapping) and disk.get("is_root_volume"):
            return disk
    return None


def select_disks(
    config: Mapping[str, Any], *, root: bool = True, nonroot: bool = True
) -> list[Mapping[str, Any]]:
    """The logical disks of ``config`` to create: the root volume unless ``root`` is
    false, the others unless ``nonroot`` is false.

    Raises:
        InvalidInput: no logical disk is left to create.
    """
    disks = [
        disk
        for disk in config.get("logical_disks") or []
        if (root if disk.get("is_root_volume") else nonroot)
    ]
    if not disks:
        skipped = [part for part, wanted in (("root", root), ("non-root", nonroot)) if not wanted]
        what = f" after skipping the {' and '.join(skipped)} volumes" if skipped else ""
        raise InvalidInput(f"The target RAID configuration has no logical disk to create{what}.")
    return disks


#: the arguments of a RAID interface's ``apply_configuration`` deploy step (Ironic's)
APPLY_ARGSINFO: Mapping[str, str] = {
    "raid_config": "The RAID configuration to apply: {'logical_disks': [...]} (required).",
    "delete_existing": "Whether to delete the existing configuration first (default true).",
}


def apply_argument(args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``raid_config`` argument of ``apply_configuration``, an object.

    Raises:
        InvalidInput: it is missing or not an object.
    """
    config = args.get("raid_config")
    if not isinstance(config, Mapping) or not config:
        raise InvalidInput(
            'apply_configuration needs "raid_config": a RAID configuration '
            '{"logical_disks": [...]} to apply.'
        )
    return config
