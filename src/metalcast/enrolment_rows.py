"""Bulk enrolment files (``metalcast node import``, the dashboard's CSV upload): CSV
or YAML rows checked into node specs.

Everything here is pure (no network), so that a whole file is checked before the
first node is created; the CLI and the dashboard share it.  A CSV row is numbered by
its line (the header is line 1); a YAML row by its position in the list (the first
is 1).

Errors::

    InvalidInput
    ├── InventoryError    the file as a whole cannot be used (format, columns)
    └── RowError          one row is invalid
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from metalcast.errors import InvalidInput

JSON = dict[str, Any]

FIELDS = (
    "name", "driver", "bmc_address", "bmc_username", "bmc_password", "bmc_port",
    "mac", "cpus", "memory_mb", "local_gb", "cpu_arch", "resource_class",
)  # fmt: skip
ALIASES: Mapping[str, str] = {"memory": "memory_mb", "disk": "local_gb", "macs": "mac"}
REQUIRED = ("name", "driver", "bmc_address")
INTEGERS = ("cpus", "memory_mb", "local_gb")
_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.I)
_MAC_SEPARATORS = re.compile(r"[\s;,]+")


@dataclass(frozen=True, slots=True)
class BmcKeys:
    """The ``driver_info`` keys a driver reads its BMC's address and login from."""

    address: str
    username: str
    password: str
    #: None: the port goes into the address (a URL)
    port: str | None


_IPMI = BmcKeys("ipmi_address", "ipmi_username", "ipmi_password", "ipmi_port")

#: how each driver names its BMC settings
BMC_KEYS: Mapping[str, BmcKeys] = {
    "ipmi": _IPMI,
    "redfish": BmcKeys("redfish_address", "redfish_username", "redfish_password", None),
    "fake-hardware": _IPMI,
}


class InventoryError(InvalidInput):
    """The inventory file cannot be read as a list of rows."""


class RowError(InvalidInput):
    """One row is invalid; ``message`` says why, without the row number."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as read: canonical field names, blanks left out."""

    number: int
    values: Mapping[str, Any]

    @property
    def name(self) -> str | None:
        value = self.values.get("name")
        return str(value).strip() if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A checked row: what to send to create its node and ports."""

    row: int
    name: str
    driver: str
    driver_info: JSON = field(default_factory=dict)
    properties: JSON = field(default_factory=dict)
    resource_class: str | None = None
    macs: tuple[str, ...] = ()

    def body(self) -> JSON:
        """The POST /v1/nodes body."""
        body: JSON = {
            "name": self.name,
            "driver": self.driver,
            "driver_info": dict(self.driver_info),
            "properties": dict(self.properties),
        }
        if self.resource_class:
            body["resource_class"] = self.resource_class
        return body


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that will not be created, and why."""

    row: int
    name: str | None
    reason: str


def canonical(key: object) -> str:
    """A column or key name as this module spells it (``Memory`` → ``memory_mb``)."""
    name = str(key).strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(name, name)


def read_rows(path: Path) -> list[RawRow]:
    """Read ``path`` (``.csv``, ``.yaml``/``.yml`` or ``.json``) into rows.

    Raises:
        InventoryError: unreadable, unknown extension, not a table or list of mappings.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml", ".json"):
        raise InventoryError(f"{path}: use a .csv, .yaml, .yml or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read {path}: {exc}") from None
    rows = parse_csv(text) if suffix == ".csv" else parse_yaml(text)
    if not rows:
        raise InventoryError(f"{path} holds no rows")
    return rows


def parse_csv(text: str) -> list[RawRow]:
    """Rows of a CSV text with a header row; numbered by line (header = 1).

    Raises:
        InventoryError: a column is unknown or named twice.
    """
    reader = csv.reader(io.StringIO(text))
    header = [canonical(h) for h in next(reader, [])]
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise InventoryError(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    if len(set(header)) != len(header):
        raise InventoryError("a column is named twice in the header")
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            values: dict[str, Any] = {"_extra": cells[len(header) :]}
        else:
            values = {}
        values.update({h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()})
        rows.append(RawRow(reader.line_num, values))
    return rows


def parse_yaml(text: str) -> list[RawRow]:
    """Rows of a YAML (or JSON) list of mappings, numbered from 1.

    Raises:
        InventoryError: not valid YAML, or not a list of mappings.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError(f"not valid YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        data = data["nodes"]
    if not isinstance(data, list):
        raise InventoryError("the file must hold a list of nodes (mappings)")
    rows = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            rows.append(RawRow(number, {"_not_mapping": item}))
            continue
        values = {canonical(k): v for k, v in item.items() if v not in (None, "")}
        rows.append(RawRow(number, values))
    return rows


def _text(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    return str(value).strip() or None


def _integer(values: Mapping[str, Any], key: str, *, low: int = 0, high: int | None = None) -> int:
    value = values[key]
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d+", text):
        raise RowError(f"{key} {value!r} is not a whole number")
    number = int(text)
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RowError(f"{key} {number} must be {bound}")
    return number


def parse_macs(value: Any) -> tuple[str, ...]:
    """MACs from a CSV cell (separated by spaces, ``;`` or ``,``) or a YAML list,
    lower-cased with colons.

    Raises:
        RowError: one is not a MAC address, or one appears twice.
    """
    items = value if isinstance(value, list) else _MAC_SEPARATORS.split(str(value))
    macs: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if not _MAC.match(item):
            raise RowError(f"mac {item!r} is not a valid MAC address")
        mac = item.lower().replace("-", ":")
        if mac in macs:
            raise RowError(f"mac {mac} is listed twice")
        macs.append(mac)
    return tuple(macs)


def redfish_address(address: str, port: int | None) -> str:
    """A Redfish URL from a host or URL and an optional port (https by default).

    Raises:
        RowError: the address already names another port.
    """
    if port is None:
        return address
    url = address if "://" in address else f"https://{address}"
    parts = urlsplit(url)
    if parts.port is not None and parts.port != port:
        raise RowError(f"bmc_port {port} differs from the port in bmc_address {address!r}")
    netloc = parts.netloc if parts.port is not None else f"{parts.netloc}:{port}"
    return parts._replace(netloc=netloc).geturl()


def driver_info_of(driver: str, values: Mapping[str, Any]) -> JSON:
    """The ``driver_info`` of a row, with its BMC keys named as ``driver`` wants.

    Raises:
        RowError: unknown driver or invalid port.
    """
    keys = BMC_KEYS.get(driver)
    if keys is None:
        raise RowError(f"driver {driver!r} is not one of {', '.join(sorted(BMC_KEYS))}")
    port = _integer(values, "bmc_port", low=1, high=65535) if "bmc_port" in values else None
    address = str(_text(values, "bmc_address"))
    info: JSON = {}
    if keys.port is None:
        info[keys.address] = redfish_address(address, port)
    else:
        info[keys.address] = address
        if port is not None:
            info[keys.port] = port
    for source, target in (("bmc_username", keys.username), ("bmc_password", keys.password)):
        value = _text(values, source)
        if value is not None:
            info[target] = value
    return info


def properties_of(values: Mapping[str, Any]) -> JSON:
    """The ``properties`` of a row (integers checked).

    Raises:
        RowError: an integer field is not a whole number ≥ 0.
    """
    properties: JSON = {key: _integer(values, key) for key in INTEGERS if key in values}
    arch = _text(values, "cpu_arch")
    if arch:
        properties["cpu_arch"] = arch
    return properties


def _check_shape(raw: RawRow) -> None:
    if "_not_mapping" in raw.values:
        raise RowError("is not a mapping of field names to values")
    if "_extra" in raw.values:
        raise RowError("has more cells than the header has columns")
    unknown = sorted(k for k in raw.values if k not in FIELDS)
    if unknown:
        raise RowError(f"unknown field(s) {', '.join(unknown)}")
    missing = [k for k in REQUIRED if _text(raw.values, k) is None]
    if missing:
        raise RowError(f"missing {', '.join(missing)}")


def parse_row(raw: RawRow) -> NodeSpec:
    """Check one row and map it to a :class:`NodeSpec`.

    Raises:
        RowError: the first problem found.
    """
    _check_shape(raw)
    values = raw.values
    driver = str(_text(values, "driver"))
    return NodeSpec(
        row=raw.number,
        name=str(_text(values, "name")),
        driver=driver,
        driver_info=driver_info_of(driver, values),
        properties=properties_of(values),
        resource_class=_text(values, "resource_class"),
        macs=parse_macs(values["mac"]) if "mac" in values else (),
    )


def check_rows(rows: Sequence[RawRow]) -> list[NodeSpec | Rejected]:
    """Check every row, then reject later rows that reuse a name or MAC of an
    earlier one; the result keeps the order of ``rows``."""
    checked: list[NodeSpec | Rejected] = []
    names: dict[str, int] = {}
    macs: dict[str, int] = {}
    for raw in rows:
        try:
            spec = parse_row(raw)
            _claim(names, key=spec.name, row=spec.row, what="name")
            for mac in spec.macs:
                _claim(macs, key=mac, row=spec.row, what="mac")
        except RowError as exc:
            checked.append(Rejected(raw.number, raw.name, exc.message))
            continue
        names.setdefault(spec.name, spec.row)
        macs.update({mac: spec.row for mac in spec.macs})
        checked.append(spec)
    return checked


def _claim(seen: Mapping[str, int], *, key: str, row: int, what: str) -> None:
    if key in seen:
        raise RowError(f"{what} {key!r} is already used by row {seen[key]}")
