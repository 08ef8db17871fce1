"""The shipped Grafana dashboards' InfluxQL runs on a real InfluxDB holding server data.

Grafana itself does not run here; its macros are expanded the way Grafana does for
InfluxQL (``$timeFilter`` → a bounded time condition, ``$__interval`` → a duration,
the ``$sensor`` variable with "All" → ``.*``), and each panel's query is sent to
influxd's v1 ``/query`` over readings and aggregates the server's own store wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leaksense.core.messages import Reading
from leaksense.server.stores.influx import InfluxReadingStore
from services import InfluxDatabase, InfluxServer

pytestmark = pytest.mark.influx

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "grafana" / "dashboards").glob("*.json"))
SENSORS = ("ss-inlet", "ss-school")


def _expand(query: str) -> str:
    return (
        query.replace("$timeFilter", "time >= now() - 3d AND time <= now()")
        .replace("$__interval", "10m")
        .replace("$sensor", ".*")
    )


def _query(db: InfluxDatabase, query: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{db.url}/query", data={"q": query, "db": db.name}, timeout=10)
    response.raise_for_status()
    [result] = response.json()["results"]
    assert "error" not in result, f"{query}: {result['error']}"
    series: list[dict[str, Any]] = result.get("series", [])
    return series


@pytest.fixture(scope="module")
def server_data(influxd: InfluxServer) -> Iterator[InfluxDatabase]:
    """Two days of 5-minute readings of two meters, with the server's aggregates."""
    influxd.create_database("grafana_dashboards")
    db = InfluxDatabase(influxd.url, "grafana_dashboards")
    store = InfluxReadingStore(db.url, db.name, refresh_interval_s=None)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    steps = range(2 * 24 * 12)
    readings = [
        Reading(sensor_id=sensor, time=end - timedelta(minutes=5 * i), flow_m3h=1.0 + k + i % 7)
        for k, sensor in enumerate(SENSORS)
        for i in steps
    ]
    store.write(readings)
    store.refresh_aggregates()
    store.close()
    yield db
    influxd.drop_database(db.name)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_query_returns_both_meters(path: Path, server_data: InfluxDatabase) -> None:
    dashboard = json.loads(path.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            series = _query(server_data, _expand(target["query"]))
            tags = {s["tags"]["sensor_id"] for s in series}
            assert tags == set(SENSORS), panel["title"]
            values = [row[1] for s in series for row in s["values"] if row[1] is not None]
            assert values, f"{panel['title']}: no value"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_meter_variable_lists_the_meters(path: Path, server_data: InfluxDatabase) -> None:
    dashboard = json.loads(path.read_text())
    [variable] = dashboard["templating"]["list"]
    [series] = _query(server_data, variable["query"])
    assert {row[1] for row in series["values"]} == set(SENSORS)


def test_daily_volume_is_the_sum_of_hourly_means(server_data: InfluxDatabase) -> None:
    """The 'daily volume' panel gives m³: Σ hourly mean flow (m³/h) × 1 h."""
    [dashboard] = [json.loads(p.read_text()) for p in DASHBOARDS]
    [panel] = [p for p in dashboard["panels"] if p["title"].startswith("Volume journalier")]
    series = _query(server_data, _expand(panel["targets"][0]["query"]))
    total_m3 = sum(row[1] for s in series for row in s["values"] if row[1] is not None)
    hourly = _query(
        server_data, _expand('SELECT sum("mean_flow_m3h") FROM "flow_hourly" WHERE $timeFilter')
    )
    assert total_m3 == pytest.approx(hourly[0]["values"][0][1])
