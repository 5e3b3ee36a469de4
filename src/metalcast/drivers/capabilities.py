"""Node capabilities, as Ironic spells them, and the boot mode a node should use.

Ironic keeps capabilities as ``"boot_mode:uefi,secure_boot:true"`` in
``properties["capabilities"]`` and as a dict or such a string in
``instance_info["capabilities"]``.  The instance's wish wins over the node's; with
neither, the boot mode is UEFI (Ironic's default since 2023.1).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from metalcast.drivers.base import NodeSnapshot


class BootMode(enum.StrEnum):
    UEFI = "uefi"
    LEGACY = "bios"


def parse_capabilities(value: object) -> dict[str, str]:
    """Capabilities from a ``"key:value,…"`` string or a mapping; junk is skipped."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        return {}
    found: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.partition(":")
        if sep and key.strip():
            found[key.strip()] = val.strip()
    return found


def _mode_in(source: Mapping[str, Any]) -> BootMode | None:
    wanted = parse_capabilities(source.get("capabilities")).get("boot_mode", "").lower()
    return BootMode(wanted) if wanted in {m.value for m in BootMode} else None


def boot_mode_of(node: NodeSnapshot) -> BootMode:
    """The boot mode ``node`` should boot in: instance's, node's, else UEFI."""
    return _mode_in(node.instance_info) or _mode_in(node.properties) or BootMode.UEFI
