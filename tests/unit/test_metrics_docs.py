"""docs/metrics.md lists every metric metalcast exports, and the Grafana dashboard
asks only for metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from metalcast import metrics
from metalcast.api.metrics import NODES

DOCS = Path(__file__).parents[2] / "docs"
NAME = re.compile(r"\bmetalcast_[a-z_]+\b")
#: what the histograms and counters add to a family's name in PromQL
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    """Every metalcast family this code can export (the node states come from the
    database at each scrape; the sensor families exist whether or not a node has
    readings)."""
    assert metrics.SENSORS  # imported: every metric is registered
    names = {m.name for m in REGISTRY.collect() if m.name.startswith("metalcast_")}
    return {*names, NODES}


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_metric_is_documented_and_nothing_else() -> None:
    documented = {family(n) for n in NAME.findall((DOCS / "metrics.md").read_text())}
    assert documented == exported()


def test_the_grafana_dashboard_asks_for_metrics_that_exist() -> None:
    dashboard = json.loads((DOCS / "grafana-metalcast.json").read_text())
    asked = {
        family(name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
        for name in NAME.findall(target["expr"])
    }
    assert asked and asked <= exported()
    assert exported() - asked == set(), "a metric the dashboard does not show"
