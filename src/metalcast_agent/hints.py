"""Root-device selection by Ironic's root-device hints.

Hints come from the node's ``properties.root_device``: ``name``, ``size`` (GiB),
``model``, ``vendor``, ``serial``, ``wwn``, ``rotational``. A disk must match all of
them. ``size`` takes an integer or an expression with ``==``, ``!=``, ``>=``, ``>``,
``<=``, ``<``; the string hints take a plain value, ``s== value``, ``s!= value`` or
``<in> value`` (substring), compared without case. Among the matching disks the agent
picks the smallest that holds the image. Raises
:class:`~metalcast_agent.errors.DiskError` when nothing fits and
:class:`~metalcast_agent.errors.InvalidArguments` for a hint it does not understand.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence

from metalcast_agent.errors import DiskError, InvalidArguments
from metalcast_agent.protocol import DEVICE_HINTS, Disk

GIB = 1024**3
MIB = 1024**2
SUPPORTED_HINTS = DEVICE_HINTS
_STRING_HINTS = ("model", "vendor", "serial", "wwn")
_NUMBER_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def format_size(size: int) -> str:
    """``1.0 GiB`` (or ``40.0 MiB`` below a GiB): how errors show a size."""
    if size >= GIB:
        return f"{size / GIB:.1f} GiB"
    return f"{size / MIB:.1f} MiB"


def select_root_device(
    disks: Sequence[Disk], hints: Mapping[str, object] | None, *, image_size: int | None
) -> Disk:
    """The disk to write an image of ``image_size`` bytes (``None``: unknown) to."""
    if not disks:
        raise DiskError("No disks found: the ramdisk sees no block device (is its driver loaded?)")
    candidates = list(disks)
    if hints:
        check_hints(hints)
        candidates = [disk for disk in disks if matches(disk, hints)]
        if not candidates:
            shown = json.dumps(dict(hints), sort_keys=True)
            raise DiskError(
                f"No disk matches the root device hints {shown}; disks: {describe(disks)}"
            )
    candidates.sort(key=lambda disk: (disk.size, disk.name))
    if image_size is None:
        return candidates[0]
    for disk in candidates:
        if disk.size >= image_size:
            return disk
    raise too_small(candidates[-1], image_size)


def too_small(disk: Disk, image_size: int) -> DiskError:
    """The error for ``disk`` being too small for an image of ``image_size`` bytes."""
    return DiskError(
        f"Disk {disk.name} ({format_size(disk.size)}) is too small for the image "
        f"({format_size(image_size)})"
    )


def describe(disks: Sequence[Disk]) -> str:
    """``/dev/vda (1.0 GiB, model M, serial S), ...`` for an error message."""
    parts = []
    for disk in disks:
        details = [format_size(disk.size)]
        details += [
            f"{key} {value}"
            for key, value in (("model", disk.model), ("serial", disk.serial))
            if value
        ]
        parts.append(f"{disk.name} ({', '.join(details)})")
    return ", ".join(parts) or "none"


def check_hints(hints: Mapping[str, object]) -> None:
    """Raise InvalidArguments for a hint the agent does not know."""
    unknown = sorted(set(hints) - set(SUPPORTED_HINTS))
    if unknown:
        raise InvalidArguments(
            f"Unknown root device hint(s) {', '.join(unknown)}; "
            f"supported: {', '.join(SUPPORTED_HINTS)}"
        )


def matches(disk: Disk, hints: Mapping[str, object]) -> bool:
    """Whether ``disk`` satisfies every hint."""
    return all(_matches_one(disk, key, value) for key, value in hints.items())


def _matches_one(disk: Disk, key: str, hint: object) -> bool:
    if key == "size":
        return _size_matches(disk.size // GIB, hint)
    if key == "rotational":
        return disk.rotational == _boolean(hint)
    if key == "name":
        name = _string(key, hint).removeprefix("s== ").strip()
        return disk.name == "/dev/" + name.removeprefix("/dev/")
    return _string_matches(getattr(disk, key), _string(key, hint))


def _size_matches(gib: int, hint: object) -> bool:
    if isinstance(hint, int) and not isinstance(hint, bool):
        return gib == hint
    text = _string("size", hint).strip()
    for symbol in sorted(_NUMBER_OPERATORS, key=len, reverse=True):
        if text.startswith(symbol):
            return _NUMBER_OPERATORS[symbol](gib, _integer(text[len(symbol) :]))
    return gib == _integer(text)


def _string_matches(actual: str | None, hint: str) -> bool:
    value = (actual or "").strip().lower()
    text = hint.strip()
    if text.startswith("<in>"):
        return text[4:].strip().lower() in value
    if text.startswith("s!="):
        return value != text[3:].strip().lower()
    return value == text.removeprefix("s==").strip().lower()


def _string(key: str, hint: object) -> str:
    if isinstance(hint, str | int) and not isinstance(hint, bool):
        return str(hint)
    raise InvalidArguments(f"Root device hint {key}={hint!r} must be a string")


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidArguments(
            f"Root device hint size={text.strip()!r} is not a whole number of GiB"
        ) from None


def _boolean(hint: object) -> bool:
    if isinstance(hint, bool):
        return hint
    text = str(hint).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InvalidArguments(f"Root device hint rotational={hint!r} must be true or false")
