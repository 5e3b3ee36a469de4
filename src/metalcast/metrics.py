"""The process's Prometheus metrics: what this process did, counted where it is done.

Every metric here lives in prometheus_client's process-wide registry
(:data:`prometheus_client.REGISTRY`) and is exported by the process that does the
work: an API process its requests, a conductor its transitions, BMC calls, agent
results, workers, locks and sensor readings; the all-in-one server all of them.
Fleet-wide numbers that the database holds (nodes by state) are not counted here but
read at each scrape (:mod:`metalcast.api.metrics`).  docs/metrics.md lists them all.

Labels are bounded: provision states, verbs, protocols, operation names and route
templates are finite sets written in metalcast's code.  Node names, owners, raw
paths, addresses and secrets are never labels; the one label with a value per node
is ``node`` (its UUID) on the sensor readings, one series per sensor of each node in
a stable state (:class:`SensorBoard`).

Recording costs a dictionary lookup and an addition under a lock (a few
microseconds); nothing here touches the database or the network.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: seconds: from a millisecond API call to a half-hour deploy
_SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: bytes per second: 1 MiB/s to 2 GiB/s
_RATE_BUCKETS = tuple(float(2**20 * 2**k) for k in range(12))

# ------------------------------------------------------------------ the API

API_REQUESTS = Histogram(
    "metalcast_api_request_duration_seconds",
    "API requests by method, route template and status, and how long they took",
    ("method", "route", "status"),
    buckets=_FAST_BUCKETS,
)

# ------------------------------------------------------------------ the conductor

TRANSITIONS = Counter(
    "metalcast_provision_transitions_total",
    "Provision state transitions by event (verb) and the states left and entered",
    ("event", "from_state", "to_state"),
)
STATE_SECONDS = Histogram(
    "metalcast_provision_state_duration_seconds",
    "Time nodes spent in a provision state before leaving it (a phase of a verb: "
    "deploying, wait call-back, clean wait, ...)",
    ("state",),
    buckets=_SLOW_BUCKETS,
)
VERB_SECONDS = Histogram(
    "metalcast_provision_verb_duration_seconds",
    "Time from a verb's first transition out of a stable state until the node rests "
    "again, by verb and result (succeeded: a stable state, failed: a failure state)",
    ("verb", "result"),
    buckets=_SLOW_BUCKETS,
)
WORKERS_SIZE = Gauge("metalcast_workers_size", "Workers of this conductor's pool")
WORKERS_BUSY = Gauge("metalcast_workers_busy", "Workers of this conductor's pool running a task")
WORKERS_REFUSED = Counter(
    "metalcast_workers_refused_total", "Tasks refused because every worker was busy"
)
LOCKS_HELD = Gauge("metalcast_node_locks_held", "Node locks this process's tasks hold now")
LOCK_ATTEMPTS = Counter(
    "metalcast_node_lock_attempts_total",
    "Attempts at a node's exclusive lock, by result (acquired, held: another task had it)",
    ("result",),
)

# ------------------------------------------------------------------ BMCs

BMC_CALLS = Histogram(
    "metalcast_bmc_call_duration_seconds",
    "Calls to BMCs (one try each) by driver (ipmi, redfish) and operation, and how long they took",
    ("driver", "operation"),
    buckets=_FAST_BUCKETS,
)
BMC_ERRORS = Counter(
    "metalcast_bmc_call_errors_total",
    "Failed calls to BMCs (one try each) by driver, operation and kind of failure "
    "(no answer, busy, client, auth, rejected, settings, timeout)",
    ("driver", "operation", "kind"),
)

# ------------------------------------------------------------------ the agent

AGENT_COMMANDS = Counter(
    "metalcast_agent_commands_total",
    "Results of the agents' commands by command and status (succeeded, failed)",
    ("command", "status"),
)
IMAGE_WRITE_BYTES = Counter(
    "metalcast_image_write_bytes_total", "Bytes the agents wrote to disks (write_image)"
)
IMAGE_WRITE_SECONDS = Histogram(
    "metalcast_image_write_duration_seconds",
    "How long the agents took to write an image",
    buckets=_SLOW_BUCKETS,
)
IMAGE_WRITE_RATE = Histogram(
    "metalcast_image_write_rate_bytes_per_second",
    "The speed of each image write, as the agent measured it",
    buckets=_RATE_BUCKETS,
)

# ------------------------------------------------------------------ sensors

SENSOR_PASSES = Counter(
    "metalcast_sensor_collections_total",
    "Sensor reads of nodes by the periodic collection, by result (ok, failed)",
    ("result",),
)


@dataclass(frozen=True, slots=True)
class SensorValue:
    """One reading: ``metric`` is one of :data:`SENSOR_METRICS`' keys."""

    metric: str
    sensor: str
    value: float


#: metric name suffix -> help text; a reading of another unit is not exported
SENSOR_METRICS = {
    "temperature_celsius": "Temperature sensors of nodes, in degrees Celsius",
    "fan_rpm": "Fan speeds of nodes, in revolutions per minute",
    "power_watts": "Power sensors of nodes, in watts",
    "voltage_volts": "Voltage sensors of nodes, in volts",
}
#: at most this many readings of one node are kept (the BMC names its sensors)
MAX_SENSORS_PER_NODE = 100
MAX_SENSOR_NAME = 64


class SensorBoard(Collector):
    """The latest sensor readings of each node, exported as
    ``metalcast_sensor_<metric>{node=<uuid>, sensor=<name>}``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[str, tuple[SensorValue, ...]] = {}

    def put(self, node: str, readings: Iterable[SensorValue]) -> None:
        """Replace ``node``'s readings (a node UUID); of two readings of one metric
        and sensor name, the first is kept."""
        kept: dict[tuple[str, str], SensorValue] = {}
        for r in readings:
            key = (r.metric, r.sensor[:MAX_SENSOR_NAME])
            if r.metric in SENSOR_METRICS and key not in kept:  # one series per name
                kept[key] = SensorValue(*key, r.value)
            if len(kept) >= MAX_SENSORS_PER_NODE:
                break
        with self._lock:
            self._readings[node] = tuple(kept.values())

    def keep_only(self, nodes: Iterable[str]) -> None:
        """Forget the readings of every node not in ``nodes`` (deleted, in maintenance,
        busy, or another conductor's now)."""
        wanted = set(nodes)
        with self._lock:
            for node in [n for n in self._readings if n not in wanted]:
                del self._readings[node]

    def nodes(self) -> list[str]:
        with self._lock:
            return sorted(self._readings)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            readings = list(self._readings.items())
        families = {
            name: GaugeMetricFamily(f"metalcast_sensor_{name}", text, labels=("node", "sensor"))
            for name, text in SENSOR_METRICS.items()
        }
        for node, values in readings:
            for r in values:
                families[r.metric].add_metric((node, r.sensor), r.value)
        yield from families.values()


SENSORS = SensorBoard()
REGISTRY.register(SENSORS)
