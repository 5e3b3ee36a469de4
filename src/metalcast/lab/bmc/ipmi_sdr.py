"""Sensors of the virtual IPMI BMC: an SDR repository of full sensor records.

Clients (pyghmi's ``get_sensor_data``, ``ipmitool sdr``) read the repository once
(Get SDR Repository Info, Reserve SDR Repository, Get SDR), then each sensor's
reading (Get Sensor Reading).  Records follow IPMI v2.0 section 43.1 (full sensor
record); readings are linear, ``value = M * raw * 10**R``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from metalcast.lab.machine import Machine, Sensor

NETFN_SENSOR = 0x04
NETFN_STORAGE = 0x0A
GET_SENSOR_READING = 0x2D
GET_SDR_REPOSITORY_INFO = 0x20
RESERVE_SDR_REPOSITORY = 0x22
GET_SDR = 0x23
CC_OK = 0x00
CC_SENSOR_NOT_PRESENT = 0xCB
CC_INVALID_DATA = 0xCC
LAST_RECORD = 0xFFFF


@dataclass(frozen=True, slots=True)
class _Encoding:
    sensor_type: int  # IPMI sensor type code
    entity: int  # IPMI entity ID
    unit: int  # IPMI base unit code
    m: int  # value = m * raw * 10**r_exp
    r_exp: int


_ENCODINGS: dict[str, _Encoding] = {
    "temperature": _Encoding(sensor_type=0x01, entity=0x03, unit=1, m=1, r_exp=0),
    "voltage": _Encoding(sensor_type=0x02, entity=0x07, unit=4, m=1, r_exp=-1),
    "fan": _Encoding(sensor_type=0x04, entity=0x1D, unit=18, m=50, r_exp=0),
    "power": _Encoding(sensor_type=0x0B, entity=0x0A, unit=6, m=2, r_exp=0),
}


def _full_record(record_id: int, number: int, sensor: Sensor) -> bytes:
    """The full sensor record (type 01h) describing ``sensor`` as sensor ``number``."""
    enc = _ENCODINGS[sensor.kind]
    name = sensor.name.encode("ascii", "replace")[:16]
    body = bytearray([0x20, 0x00, number, enc.entity, 0x01, 0x7F, 0x00, enc.sensor_type, 0x01])
    body += bytes(6)  # event masks
    body += bytearray([0x00, enc.unit, 0x00, 0x00])  # unsigned; units; linear
    body += bytearray([enc.m & 0xFF, (enc.m >> 2) & 0xC0, 0x00, 0x00, 0x00])  # M, B
    body += bytearray([(enc.r_exp & 0x0F) << 4])  # R and B exponents
    body += bytes(17)  # analog flags, nominal and limits, thresholds, hysteresis, OEM
    body += bytearray([0xC0 | len(name)]) + name
    header = struct.pack("<HBBB", record_id, 0x51, 0x01, len(body))
    return header + bytes(body)


def _raw(sensor: Sensor) -> int:
    enc = _ENCODINGS[sensor.kind]
    raw = round(sensor.value / (enc.m * 10.0**enc.r_exp))
    return max(0, min(255, raw))


class SensorRepository:
    """The SDR repository and sensor readings of one machine."""

    def __init__(self, machine: Machine) -> None:
        self._machine = machine
        sensors = [s for s in machine.sensors() if s.kind in _ENCODINGS]
        self._names = [s.name for s in sensors]
        self._records = [_full_record(i, i + 1, s) for i, s in enumerate(sensors)]
        # Clients cache repositories by this stamp: tie it to the layout.
        self._stamp = zlib.crc32("\0".join(self._names).encode())

    def handles(self, netfn: int, command: int) -> bool:
        """Whether this request is one the repository answers."""
        if netfn == NETFN_SENSOR:
            return command == GET_SENSOR_READING
        return netfn == NETFN_STORAGE and command in (
            GET_SDR_REPOSITORY_INFO,
            RESERVE_SDR_REPOSITORY,
            GET_SDR,
        )

    def answer(self, netfn: int, command: int, data: bytes) -> tuple[int, list[int]]:
        """The completion code and response data of a request :meth:`handles`."""
        if netfn == NETFN_SENSOR:
            return self._reading(data)
        if command == GET_SDR_REPOSITORY_INFO:
            return CC_OK, self._info()
        if command == RESERVE_SDR_REPOSITORY:
            return CC_OK, [0x01, 0x00]
        return self._get_sdr(data)

    def _info(self) -> list[int]:
        count = len(self._records)
        stamps = struct.pack("<II", self._stamp, self._stamp)
        return [0x51, count & 0xFF, count >> 8, 0x00, 0x00, *stamps, 0x00]

    def _get_sdr(self, data: bytes) -> tuple[int, list[int]]:
        if len(data) < 6:
            return CC_INVALID_DATA, []
        record_id = data[2] | data[3] << 8
        offset, size = data[4], data[5]
        if record_id >= len(self._records):
            return CC_SENSOR_NOT_PRESENT, []
        following = record_id + 1 if record_id + 1 < len(self._records) else LAST_RECORD
        chunk = self._records[record_id][offset : offset + size]
        return CC_OK, [following & 0xFF, following >> 8, *chunk]

    def _reading(self, data: bytes) -> tuple[int, list[int]]:
        number = data[0] if data else 0
        if not 1 <= number <= len(self._names):
            return CC_SENSOR_NOT_PRESENT, []
        name = self._names[number - 1]
        sensor = next((s for s in self._machine.sensors() if s.name == name), None)
        if sensor is None:
            return CC_SENSOR_NOT_PRESENT, []
        return CC_OK, [_raw(sensor), 0x40, 0x00]
