"""The names of a node's hardware interfaces, shared by every layer.

A node names one implementation per interface in its ``<name>_interface`` field.
"""

from __future__ import annotations

INTERFACE_NAMES: tuple[str, ...] = (
    "bios",
    "boot",
    "console",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
)
