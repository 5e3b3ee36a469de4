"""The firmware components cache: a refresh that finds what is cached writes nothing,
and any difference is seen as one."""

from __future__ import annotations

from dataclasses import replace

from metalcast.db import firmware as db_firmware
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.firmware import FirmwareReading

BMC = FirmwareReading("bmc", "1.0", vendor="Acme", model="X1", serial_number="S1")
BIOS = FirmwareReading("bios", "2.3")


def test_the_cache_holds_exactly_what_was_read_and_nothing_else(db: Database) -> None:
    with db.begin() as conn:
        node = repo.create_node(
            conn, {"driver": "fake-hardware", "name": "fw", "provision_state": "enroll"}
        ).id
        assert db_firmware.holds(conn, node, [])
        assert not db_firmware.holds(conn, node, [BMC])
        db_firmware.sync_components(conn, node, [BMC, BIOS])
    with db.read() as conn:
        assert db_firmware.holds(conn, node, [BIOS, BMC])  # order does not matter
        assert not db_firmware.holds(conn, node, [BMC])  # bios vanished
        assert not db_firmware.holds(conn, node, [BMC, BIOS, FirmwareReading("nic", "7")])
        assert not db_firmware.holds(conn, node, [replace(BMC, current_version="1.1"), BIOS])
        assert not db_firmware.holds(conn, node, [replace(BMC, serial_number="S2"), BIOS])
        assert not db_firmware.holds(conn, node, [BMC, replace(BIOS, vendor="Acme")])
    with db.begin() as conn:
        db_firmware.sync_components(conn, node, [replace(BMC, current_version="1.1")])
    with db.read() as conn:
        cached = {r.component: r for r in db_firmware.list_components(conn, node)}
    assert set(cached) == {"bmc"}
    assert (cached["bmc"].initial_version, cached["bmc"].current_version) == ("1.0", "1.1")
    assert cached["bmc"].last_version_flashed == "1.1"
