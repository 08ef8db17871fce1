"""Stage 4 of the path benchmark: ``compute_yield`` against the raw queries it needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from local_servers import Server
from path_common import DMA_ID, INLETS, US, BenchError, Figures, Sizes, timed
from path_stores import StoreTargets, write_in_batches
from sensor_publisher import flow_m3h

from leaksense.core.messages import Reading
from leaksense.server.services.network_yield import compute_yield

YIELD_START = datetime(2026, 2, 5, tzinfo=UTC)


def yield_readings(days: int) -> list[Reading]:
    return [
        Reading(sensor_id=s, time=YIELD_START + timedelta(minutes=m), flow_m3h=flow_m3h(m + k))
        for k, s in enumerate(INLETS)
        for m in range(days * 24 * 60)
    ]


def influx_hourly_raw(http: httpx.Client, database: str, end: datetime) -> None:
    """The two queries ``compute_yield`` needs, sent raw, JSON decoded."""
    for sensor in INLETS:
        query = (
            'SELECT mean("flow_m3h"), count("flow_m3h") FROM "flow" WHERE '  # noqa: S608
            f"\"sensor_id\" = '{sensor}' AND time >= '{YIELD_START.isoformat()}' "
            f"AND time < '{end.isoformat()}' GROUP BY time(1h) fill(none)"
        )
        response = http.get("/query", params={"db": database, "q": query, "epoch": "u"})
        response.raise_for_status()
        response.json()


def sqlite_hourly_raw(conn: sqlite3.Connection, end: datetime) -> None:
    """The two queries ``compute_yield`` needs, on a connection of our own."""
    hour_us = 3600 * US
    bounds = round(YIELD_START.timestamp() * US), round(end.timestamp() * US)
    for sensor in INLETS:
        conn.execute(
            "SELECT (time_us / ?) * ? AS hour, avg(flow_m3h), count(*) FROM readings "
            "WHERE sensor_id = ? AND time_us >= ? AND time_us < ? GROUP BY hour ORDER BY hour",
            (hour_us, hour_us, sensor, *bounds),
        ).fetchall()


def yield_once(server: Server, end: datetime) -> None:
    with server.runtime.sessions() as session:
        report = compute_yield(session, server.runtime.store, DMA_ID, YIELD_START, end)
    if report.completeness_pct != 100.0:
        raise BenchError(f"yield completeness {report.completeness_pct} %, expected 100 %")


def alternate(figures: Figures, runs: int, timings: dict[str, Callable[[], object]]) -> None:
    """One warm-up each, then ``runs`` rounds of every timing in turn."""
    for fn in timings.values():
        fn()
    for _ in range(runs):
        for name, fn in timings.items():
            figures.add(name, timed(fn))


def bench_yield(figures: Figures, targets: StoreTargets, sizes: Sizes) -> None:
    end = YIELD_START + timedelta(days=sizes.yield_days)
    readings = yield_readings(sizes.yield_days)
    write_in_batches(targets.influx_server.runtime.store, readings)
    write_in_batches(targets.sqlite_server.runtime.store, readings)
    with sqlite3.connect(targets.sqlite_server_db) as conn:
        alternate(
            figures,
            sizes.yield_runs,
            {
                "yield influx": lambda: yield_once(targets.influx_server, end),
                "yield influx raw": lambda: influx_hourly_raw(
                    targets.influx_http, "bench_http", end
                ),
                "yield sqlite": lambda: yield_once(targets.sqlite_server, end),
                "yield sqlite raw": lambda: sqlite_hourly_raw(conn, end),
            },
        )
    m = figures.median
    stage = f"Yield, 1 DMA, {sizes.yield_days} days of 1-min data from 2 inlets"
    figures.latency(
        f"{stage}, InfluxDB: `compute_yield` vs its 2 raw queries",
        m("yield influx"),
        m("yield influx raw"),
    )
    figures.latency(
        f"{stage}, SQLite: `compute_yield` vs its 2 raw queries",
        m("yield sqlite"),
        m("yield sqlite raw"),
    )
    figures.notes.append(
        f"yield: {len(readings):,} points, median of {sizes.yield_runs} runs after a warm-up"
    )
