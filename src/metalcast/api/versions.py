"""API microversions: the served range, which feature needs which version, negotiation.

Ironic versions its v1 API with microversions ``1.Y`` requested through the
``X-OpenStack-Ironic-API-Version`` header (or ``OpenStack-API-Version: baremetal
1.Y``).  No header means the minimum version; ``latest`` means the maximum.

:data:`MAX_VERSION` is the highest version whose every feature metalcast serves (see
``docs/api-compat.md``).  :data:`FEATURES` maps each feature to the Ironic version
that introduced it; a request older than that meets it as Ironic's would (an
endpoint 404, 405 for a write; a field hidden; a filter or argument 406).  Should a
feature Ironic introduced *above* the maximum be added, it is served from
:data:`MAX_VERSION` on (what ``latest`` and a negotiating client get).

Errors: ``NotAcceptable`` (406) for a version outside the range, ``InvalidInput``
(400) for a header that is not a version; :func:`require` raises ``NotFound`` (404)
or :class:`MethodNotAllowed` (405) for an endpoint newer than the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from metalcast.errors import InvalidInput, MetalcastError, NotAcceptable, NotFound

HEADER = "X-OpenStack-Ironic-API-Version"
MIN_HEADER = "X-OpenStack-Ironic-API-Minimum-Version"
MAX_HEADER = "X-OpenStack-Ironic-API-Maximum-Version"
GENERIC_HEADER = "OpenStack-API-Version"
SERVICE_TYPE = "baremetal"
VARY = f"{GENERIC_HEADER}, {HEADER}"


class Version(NamedTuple):
    """A microversion; tuples compare the way versions do."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``"1.31"``.  Raises ``InvalidInput`` for anything else, a number of
        more than 9 digits included (no version has one; Python would refuse to
        convert some)."""
        match = _VERSION_RE.fullmatch(text.strip())
        if match is None:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise InvalidInput(f"Invalid value for {HEADER} header: {shown}")
        return cls(int(match[1]), int(match[2]))


_VERSION_RE = re.compile(r"(\d{1,9})\.(\d{1,9})", re.ASCII)

MIN_VERSION = Version(1, 1)
#: The one place the served maximum is set: Ironic 39's newest.  Every feature of
#: every version up to it is served, or left out for a reason docs/api-compat.md
#: gives (its table has a row for every version; deploy hold, firmware components
#: and virtual media come from other branches).
MAX_VERSION = Version(1, 115)


def _v(minor: int) -> Version:
    return Version(1, minor)


#: Feature -> the Ironic microversion that introduced it.
FEATURES: Mapping[str, Version] = {
    "node_console": _v(1),
    "driver_vendor_passthru": _v(1),
    "driver_internal_info": _v(3),
    "manageable": _v(4),
    "node_name": _v(5),
    "inspect": _v(6),
    "clean_step": _v(7),
    "fields": _v(8),
    "provision_state_filter": _v(9),
    "enroll": _v(11),
    "raid_config": _v(12),
    "raid": _v(12),
    "abort": _v(13),
    "manual_clean": _v(15),
    "driver_filter": _v(16),
    "adopt": _v(17),
    "port_internal_info": _v(18),
    "port_llc": _v(19),
    "network_interface": _v(20),
    "resource_class": _v(21),
    "ramdisk_endpoints": _v(22),
    "portgroups": _v(23),
    "portgroup_uuid": _v(24),
    "portgroup_subresources": _v(24),
    "portgroup_mode": _v(26),
    "soft_power": _v(27),
    "vifs": _v(28),
    "inject_nmi": _v(29),
    "dynamic_drivers": _v(30),
    "dynamic_interfaces": _v(31),
    "volume": _v(32),
    "storage_interface": _v(33),
    "physical_network": _v(34),
    "rebuild_configdrive": _v(35),
    "agent_version": _v(36),
    "traits": _v(37),
    "rescue": _v(38),
    "inspect_wait": _v(39),
    "bios": _v(40),
    "bios_interface": _v(40),
    "abort_inspect": _v(41),
    "fault": _v(42),
    "detail_param": _v(43),
    "deploy_step": _v(44),
    "reset_interfaces": _v(45),
    "conductor_group": _v(46),
    "automated_clean": _v(47),
    "protected": _v(48),
    "conductors": _v(49),
    "owner": _v(50),
    "description": _v(51),
    "allocations": _v(52),
    "is_smartnic": _v(53),
    "events": _v(54),
    "deploy_templates": _v(55),
    "configdrive_dict": _v(56),
    "allocation_update": _v(57),
    "allocation_backfill": _v(58),
    "configdrive_vendor_data": _v(59),
    "allocation_owner": _v(60),
    "retired": _v(61),
    "agent_token": _v(62),
    "indicators": _v(63),
    "llc_network_type": _v(64),
    "lessee": _v(65),
    "network_data": _v(66),
    "vif_port_choice": _v(67),
    "agent_verify_ca": _v(68),
    "deploy_steps": _v(69),
    "disable_ramdisk": _v(70),
    "agent_status": _v(72),
    "deploy_verbs": _v(73),
    "bios_registry": _v(74),
    "boot_mode": _v(75),
    "change_boot_mode": _v(76),
    "driver_fields": _v(77),
    "history": _v(78),
    "inventory": _v(81),
    "shards": _v(82),
    "child_nodes": _v(83),
    "unhold": _v(85),
    "firmware_interface": _v(86),
    "firmware": _v(86),
    "service": _v(87),
    "port_name": _v(88),
    "vmedia": _v(89),
    "ovn_vtep": _v(90),
    "json_suffix_plain": _v(91),
    "runbooks": _v(92),
    "vmedia_get": _v(93),
    "disable_power_off": _v(95),
    "inspection_rules": _v(96),
    "port_description": _v(97),
    "patch_pointer_escapes": _v(98),
    "port_conductor_groups": _v(99),
    "port_vendor": _v(100),
    "port_category": _v(101),
    "portgroup_physical_network": _v(102),
    "portgroup_category": _v(103),
    "instance_name": _v(104),
    "ovn_vtep_removed": _v(105),
    "portgroup_shard": _v(106),
    "service_disable_ramdisk": _v(108),
    "health": _v(109),
    "deploy_wait_abort": _v(110),
    "dynamic_portgroups": _v(111),
    "runbook_traits": _v(112),
    "history_project": _v(113),
    "firmware_identity": _v(114),
    "history_states": _v(115),
}


def allows(feature: str, version: Version) -> bool:
    """Whether a request at ``version`` may use ``feature`` (an endpoint, filter,
    request field or verb).  A feature above :data:`MAX_VERSION` may at it."""
    return version >= min(FEATURES[feature], MAX_VERSION)


class MethodNotAllowed(MetalcastError):
    """A write to an endpoint newer than the requested version (Ironic: 405)."""

    status_code = 405


def require(feature: str, version: Version, *, method: str, message: str) -> None:
    """Refuse a request to an endpoint of ``feature`` older than that feature, as
    Ironic does: 404 for a read, 405 for a write.

    Raises:
        NotFound: a GET before ``feature``.
        MethodNotAllowed: any other method before ``feature``.
    """
    if allows(feature, version):
        return
    if method == "GET":
        raise NotFound(message)
    raise MethodNotAllowed(message)


def shows(feature: str, version: Version) -> bool:
    """Whether a response at ``version`` shows the fields of ``feature``."""
    return version >= min(FEATURES[feature], MAX_VERSION)


def negotiate(headers: Mapping[str, str]) -> Version:
    """The version a request asks for, from its headers.

    Raises:
        InvalidInput: the header is not a version.
        NotAcceptable: the version is outside [MIN_VERSION, MAX_VERSION].
    """
    text = headers.get(HEADER.lower()) or _generic_version(headers.get(GENERIC_HEADER.lower()))
    if not text:
        return MIN_VERSION
    if text.strip().lower() == "latest":
        return MAX_VERSION
    version = Version.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {version} was requested but the minor version is not supported "
            f"by this service. The supported version range is: "
            f"[{MIN_VERSION}, {MAX_VERSION}]."
        )
    return version


def _generic_version(value: str | None) -> str | None:
    """The baremetal entry of ``OpenStack-API-Version: baremetal 1.31, compute 2.1``."""
    if not value:
        return None
    for part in value.split(","):
        words = part.split()
        if len(words) == 2 and words[0].lower() == SERVICE_TYPE:
            return words[1]
    return None


def response_headers(version: Version | None) -> list[tuple[bytes, bytes]]:
    """The version headers every response carries (``version`` is the one used)."""
    headers = [
        (MIN_HEADER.encode(), str(MIN_VERSION).encode()),
        (MAX_HEADER.encode(), str(MAX_VERSION).encode()),
        (b"vary", VARY.encode()),
    ]
    if version is not None:
        headers.append((HEADER.encode(), str(version).encode()))
        headers.append((GENERIC_HEADER.encode(), f"{SERVICE_TYPE} {version}".encode()))
    return headers
