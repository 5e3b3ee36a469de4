"""The nodes' sensor readings, collected periodically as Ironic's ``send_sensor_data``
does, and exported as metrics (:class:`metalcast.metrics.SensorBoard`).

Each pass reads, through the node's management interface
(:meth:`~metalcast.drivers.base.ManagementInterface.get_sensors_data`), the sensors
of every node of this conductor that rests in ``active``, ``available`` or
``manageable`` and is not in maintenance, ``sensors.workers`` BMCs at a time.  A
node whose BMC fails is counted (``metalcast_sensor_collections_total{result=
"failed"}``) and loses its readings until it answers again; nothing is raised, no
node is changed.  Readings come in either of Ironic's layouts, which the drivers
return: IPMI's ``{type: {name: {"Sensor Reading": "45 °C"}}}`` and Redfish's
``{"Temperature": {"<member>@<chassis>": {"name": ..., "reading_celsius": 45}},
"Fan": ..., "Power": ...}`` (the sensor's ``name``, when given, labels it).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any

from metalcast import metrics
from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.pass_pool import PassPool
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.config import SensorsSettings
from metalcast.context import SYSTEM
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.drivers.base import ManagementInterface
from metalcast.metrics import SensorValue
from metalcast.states import ProvisionState

PS = ProvisionState
_log = logging.getLogger(__name__)

#: the states whose nodes are read: at rest, with a BMC known to answer
READ_STATES = (PS.ACTIVE, PS.AVAILABLE, PS.MANAGEABLE)

#: units (as BMCs write them, lower case) -> the metric they go to
_UNITS = {
    "°c": "temperature_celsius",
    "c": "temperature_celsius",
    "degrees c": "temperature_celsius",
    "rpm": "fan_rpm",
    "w": "power_watts",
    "watts": "power_watts",
    "v": "voltage_volts",
    "volts": "voltage_volts",
}
#: Redfish's keys (Ironic's redfish management layout) -> the metric they go to
_REDFISH_KEYS = {
    "reading_celsius": "temperature_celsius",
    "power_consumed_watts": "power_watts",
    "last_power_output_watts": "power_watts",
    "reading_volts": "voltage_volts",
}


def readings_of(data: Mapping[str, Any]) -> list[SensorValue]:
    """The numeric readings in a driver's ``get_sensors_data`` answer, of the units
    exported; the others (discrete states, unknown units, no reading) are left out."""
    return list(_readings(data))


def _readings(data: Mapping[str, Any]) -> Iterator[SensorValue]:
    for sensors in data.values():
        if not isinstance(sensors, Mapping):
            continue
        for key, fields in sensors.items():
            if isinstance(fields, Mapping):
                # Redfish's keys are "<member>@<chassis>"; its sensors' names read better
                name = fields.get("name")
                yield from _reading(name if isinstance(name, str) and name else str(key), fields)


def _reading(name: str, fields: Mapping[str, Any]) -> Iterator[SensorValue]:
    shown = fields.get("Sensor Reading")
    if isinstance(shown, str):  # IPMI: "45 °C", "6000 RPM", "unavailable"
        number, _, unit = shown.strip().partition(" ")
        metric = _UNITS.get(unit.strip().lower())
        value = _number(number)
        if metric is not None and value is not None:
            yield SensorValue(metric, name, value)
        return
    for key, metric in _REDFISH_KEYS.items():
        value = _number(fields.get(key))
        if value is not None:
            yield SensorValue(metric, name, value)
            return
    value = _number(fields.get("speed_rpm", fields.get("reading")))
    if value is not None and str(fields.get("reading_units", "RPM")).upper() == "RPM":
        yield SensorValue("fan_rpm", name, value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def candidates(rt: Runtime) -> list[Node]:
    """This conductor's nodes whose sensors a pass reads."""
    mine = rt.owned()
    with rt.db.read() as conn:
        nodes = repo.nodes_in_states(conn, [s.value for s in READ_STATES])
    return [n for n in nodes if not n.maintenance and n.management_interface and mine(n)]


class SensorCollector:
    """Reads the sensors of this conductor's resting nodes into
    :data:`metalcast.metrics.SENSORS`."""

    def __init__(
        self, rt: Runtime, settings: SensorsSettings, board: metrics.SensorBoard = metrics.SENSORS
    ) -> None:
        self.rt = rt
        self.settings = settings
        self.board = board
        self._pool = PassPool(settings.workers, name="sensors")

    def run_once(self) -> dict[str, int]:
        """One pass; how many nodes were read (``ok``) and how many failed."""
        nodes = candidates(self.rt)
        timeout = self.rt.settings.bmc_call_timeout * self.rt.settings.bmc_call_attempts
        rounds = math.ceil(len(nodes) / self.settings.workers) or 1
        futures = {self._pool.submit(self._read, n): n for n in nodes}
        done, late = cf.wait(futures, timeout=timeout * rounds)
        for future in late:
            future.cancel()
        read = [futures[f].uuid for f in done if f.result()]
        self.board.keep_only(read)
        counts = {"ok": len(read), "failed": len(nodes) - len(read)}
        metrics.SENSOR_PASSES.labels("ok").inc(counts["ok"])
        metrics.SENSOR_PASSES.labels("failed").inc(counts["failed"])
        return counts

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, node: Node) -> bool:
        probe = NodeTask(self.rt, node, shared=True, user=SYSTEM.who, purpose="sensor data")
        try:
            data = call(
                probe,
                ManagementInterface,
                "get sensors data",
                lambda i, ctx: i.get_sensors_data(ctx),
            )
        except OperationFailed as exc:
            _log.warning("%s: sensor data not read: %s", node.uuid, exc.message)
            return False
        except Exception:  # boundary: one node's trouble must not end the pass
            _log.exception("%s: sensor data not read", node.uuid)
            return False
        self.board.put(node.uuid, readings_of(data))
        return True
