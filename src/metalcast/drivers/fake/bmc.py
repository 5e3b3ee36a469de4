"""The fake BMC: what fake hardware "really" is, apart from what the database says.

One :class:`FakeBmcState` is shared by the fake power, management, BIOS and vendor
implementations of one registry.  A node's record starts from the power state the
database recorded for it, then changes only through the fake interfaces, so an
out-of-band change (the vendor passthru ``set_power_state``, pressing the power
button) is something the conductor's power sync can notice.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from metalcast.drivers.base import NodeSnapshot
from metalcast.states import PowerState

DEFAULT_BIOS_SETTINGS: Mapping[str, str] = MappingProxyType(
    {"boot_mode": "uefi", "hyperthreading": "enabled", "secure_boot": "disabled"}
)


#: the firmware of every fake machine until a firmware update changes it
DEFAULT_FIRMWARE: Mapping[str, str] = MappingProxyType({"bios": "1.0.0", "bmc": "1.0.0"})

#: where a fake machine boots until told otherwise (network, once): what Ironic's
#: fake management interface always reports
DEFAULT_BOOT_DEVICE = "pxe"


@dataclass(frozen=True, slots=True)
class FakeBmcRecord:
    """What the fake BMC holds for one node."""

    power_state: PowerState
    boot_device: str = DEFAULT_BOOT_DEVICE
    persistent: bool = False
    #: what a fake machine boots in, as Ironic's default boot mode: UEFI, no secure boot
    boot_mode: str = "uefi"
    secure_boot: bool = False
    bios_settings: Mapping[str, str] = field(default_factory=lambda: DEFAULT_BIOS_SETTINGS)
    #: indicator states set, by (component, name); unset ones are on, as Ironic's
    #: fake management reports every indicator
    indicators: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))
    #: the image URL in the virtual CD (None: empty)
    vmedia_image: str | None = None
    #: firmware component -> version
    firmware: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FIRMWARE)


class FakeBmcState:
    """Thread-safe store of fake BMC records, by node UUID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, FakeBmcRecord] = {}

    def record(self, node: NodeSnapshot) -> FakeBmcRecord:
        """The node's record, created from its recorded power state on first use."""
        with self._lock:
            return self._record(node)

    def set_power_state(self, node: NodeSnapshot, state: PowerState) -> FakeBmcRecord:
        """Set the node's power state; returns the new record."""
        with self._lock:
            updated = dataclasses.replace(self._record(node), power_state=state)
            self._records[node.uuid] = updated
            return updated

    def set_boot_device(
        self, node: NodeSnapshot, device: str, *, persistent: bool
    ) -> FakeBmcRecord:
        """Set the node's boot device; returns the new record."""
        with self._lock:
            current = self._record(node)
            updated = dataclasses.replace(current, boot_device=device, persistent=persistent)
            self._records[node.uuid] = updated
            return updated

    def set_boot_mode(
        self, node: NodeSnapshot, *, mode: str | None = None, secure_boot: bool | None = None
    ) -> FakeBmcRecord:
        """Change the node's boot mode or secure boot state; returns the new record."""
        with self._lock:
            updated = self._record(node)
            if mode is not None:
                updated = dataclasses.replace(updated, boot_mode=mode)
            if secure_boot is not None:
                updated = dataclasses.replace(updated, secure_boot=secure_boot)
            self._records[node.uuid] = updated
            return updated

    def set_vmedia(self, node: NodeSnapshot, image: str | None) -> FakeBmcRecord:
        """Put ``image`` in the node's virtual CD (None: eject); returns the new record."""
        with self._lock:
            updated = dataclasses.replace(self._record(node), vmedia_image=image)
            self._records[node.uuid] = updated
            return updated

    def set_bios_settings(self, node: NodeSnapshot, settings: Mapping[str, str]) -> FakeBmcRecord:
        """Merge ``settings`` into the node's BIOS settings; returns the new record."""
        with self._lock:
            current = self._record(node)
            merged = MappingProxyType({**current.bios_settings, **settings})
            updated = dataclasses.replace(current, bios_settings=merged)
            self._records[node.uuid] = updated
            return updated

    def set_firmware(self, node: NodeSnapshot, versions: Mapping[str, str]) -> FakeBmcRecord:
        """Merge ``versions`` into the node's firmware versions; returns the new record."""
        with self._lock:
            current = self._record(node)
            merged = MappingProxyType({**current.firmware, **versions})
            updated = dataclasses.replace(current, firmware=merged)
            self._records[node.uuid] = updated
            return updated

    def set_indicator(
        self, node: NodeSnapshot, component: str, name: str, state: str
    ) -> FakeBmcRecord:
        """Set one indicator's state; returns the new record."""
        with self._lock:
            current = self._record(node)
            states = MappingProxyType({**current.indicators, (component, name): state})
            updated = dataclasses.replace(current, indicators=states)
            self._records[node.uuid] = updated
            return updated

    def records(self) -> dict[str, FakeBmcRecord]:
        """Every node's record, by node UUID (a copy)."""
        with self._lock:
            return dict(self._records)

    def forget(self, uuid: str) -> None:
        """Drop the node's record (it starts again from the database next time)."""
        with self._lock:
            self._records.pop(uuid, None)

    def _record(self, node: NodeSnapshot) -> FakeBmcRecord:
        record = self._records.get(node.uuid)
        if record is None:
            initial = PowerState.ON if node.power_state == PowerState.ON else PowerState.OFF
            record = self._records[node.uuid] = FakeBmcRecord(power_state=initial)
        return record
