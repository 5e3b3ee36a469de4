"""The periodic sensor collection: which nodes it reads, what it keeps, and that a
failing BMC is counted, not raised."""

from __future__ import annotations

import sqlalchemy as sa
from conductor_env import Env
from prometheus_client import REGISTRY

from metalcast.conductor.sensors import SensorCollector, readings_of
from metalcast.config import SensorsSettings
from metalcast.db import tables
from metalcast.db.models import Node
from metalcast.metrics import SensorBoard, SensorValue


def put(env: Env, state: str, **values: object) -> Node:
    """A fake-hardware node moved straight to ``state`` in the database."""
    node = env.create("manageable", **values)
    with env.db.begin() as conn:
        conn.execute(
            sa.update(tables.nodes)
            .where(tables.nodes.c.id == node.id)
            .values(provision_state=state)
        )
    return env.node(node.id)


def exported(board: SensorBoard) -> dict[tuple[str, str, str], float]:
    """``(metric, node, sensor) -> value`` as the board exports them."""
    return {
        (s.name, s.labels["node"], s.labels["sensor"]): s.value
        for family in board.collect()
        for s in family.samples
    }


def failures() -> float | None:
    return REGISTRY.get_sample_value("metalcast_sensor_collections_total", {"result": "failed"})


def test_resting_nodes_out_of_maintenance_are_read(env: Env) -> None:
    read = [put(env, state) for state in ("manageable", "available", "active")]
    skipped = [
        put(env, "enroll"),
        put(env, "deploying"),
        put(env, "active", maintenance=True, maintenance_reason="repair"),
    ]
    board = SensorBoard()
    collector = SensorCollector(env.service.rt, SensorsSettings(workers=2), board)
    try:
        assert collector.run_once() == {"ok": 3, "failed": 0}
    finally:
        collector.close()
    assert exported(board) == {
        ("metalcast_sensor_temperature_celsius", n.uuid, "CPU1 Temp"): 40.0 for n in read
    }
    assert not {n.uuid for n in skipped} & set(board.nodes())


def test_a_failing_bmc_is_counted_and_its_old_readings_dropped(env: Env) -> None:
    node = put(env, "active", driver_info={"fake_fail": ["sensors"]})
    board = SensorBoard()
    board.put(node.uuid, [SensorValue("fan_rpm", "Fan 1", 5000.0)])
    board.put("a-deleted-node", [SensorValue("fan_rpm", "Fan 1", 5000.0)])
    before = failures() or 0.0
    collector = SensorCollector(env.service.rt, SensorsSettings(), board)
    try:
        assert collector.run_once() == {"ok": 0, "failed": 1}
    finally:
        collector.close()
    assert board.nodes() == []
    assert failures() == before + 1


def test_both_of_ironics_layouts_are_read() -> None:
    ipmi = {
        "Temperature": {
            "CPU Temp": {"Sensor ID": "CPU Temp", "Sensor Reading": "45 °C"},
            "Broken": {"Sensor Reading": "unavailable"},
        },
        "Fan": {"Fan 1": {"Sensor Reading": "6000 RPM"}},
        "Power Supply": {"PSU Power": {"Sensor Reading": "180 W"}},
        "Voltage": {"12V": {"Sensor Reading": "12.1 V"}},
        "Other": {"Intrusion": {"Sensor Reading": "1 discrete"}},
    }
    redfish = {
        "Temperature": {"CPU1@System.Embedded.1": {"reading_celsius": 52}},
        "Fan": {"Fan1@System.Embedded.1": {"reading": 4200, "reading_units": "RPM"}},
        "Power": {"PSU1@System.Embedded.1": {"last_power_output_watts": 210.5}},
    }
    assert readings_of(ipmi) == [
        SensorValue("temperature_celsius", "CPU Temp", 45.0),
        SensorValue("fan_rpm", "Fan 1", 6000.0),
        SensorValue("power_watts", "PSU Power", 180.0),
        SensorValue("voltage_volts", "12V", 12.1),
    ]
    assert readings_of(redfish) == [
        SensorValue("temperature_celsius", "CPU1@System.Embedded.1", 52.0),
        SensorValue("fan_rpm", "Fan1@System.Embedded.1", 4200.0),
        SensorValue("power_watts", "PSU1@System.Embedded.1", 210.5),
    ]
    assert readings_of({"Temperature": "not a mapping", "Fan": {"x": {"reading": "nan"}}}) == []


def test_the_board_bounds_what_one_node_keeps() -> None:
    board = SensorBoard()
    many = [SensorValue("fan_rpm", f"Fan {i}" + "x" * 100, float(i)) for i in range(500)]
    board.put("n1", [*many, SensorValue("humidity", "H", 1.0)])
    samples = exported(board)
    assert len(samples) == 100
    assert all(len(sensor) == 64 for _, _, sensor in samples)
    board.keep_only(["n2"])
    assert exported(board) == {}
