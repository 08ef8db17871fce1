"""Annual efficiency report of 50 DMAs at 1-minute resolution, from a real influxd.

Run: ``uv run python benchmarks/bench_reports.py [--quick] [--raw-dmas N]`` (or ``make bench``).

1. Writes one year (2025) of 1-minute inlet readings for 50 DMAs (525 600 points a
   meter, 26.3 M in all) through ``InfluxReadingStore.write_points`` in 5 000-point
   batches, as ingest does: each write also marks the hours it touched as dirty.
   Then times ``refresh_aggregates`` (the background worker's job) bringing the hourly
   and daily aggregates up to date with all of it. ``--raw-dmas N`` writes the raw
   points of N DMAs only and the aggregates of the others directly (computed with
   numpy from the same flows): the report reads only aggregates, so its timing does not
   change; raw-query costs are then extrapolated to 50 meters.
2. Times ``compute_efficiency`` for the 50 DMAs over the year (median of 5), and the
   HTML rendering of that report.
3. Times the first report after fresh writes the worker has not refreshed yet: one
   more hour of readings for each of the 50 meters plus, per meter, a late reading in
   an old hour of the year. The report refreshes those buckets before it reads.
4. Times the same aggregates computed from raw readings in the same run: the hourly
   ``mean``/``count … GROUP BY time(1h)`` of each written meter over the year.
5. Times writing a month of one meter (marks only), and its refresh.

Prints a plain table and the Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from leaksense.server.db import make_engine, make_sessionmaker
from leaksense.server.render.views import efficiency_html
from leaksense.server.services import billing, entities
from leaksense.server.services.report_constants import ReportConstants
from leaksense.server.services.report_data import report_period
from leaksense.server.services.reports import compute_efficiency
from leaksense.server.stores.influx import InfluxReadingStore
from services import InfluxServer

YEAR = datetime(2025, 1, 1, tzinfo=UTC)
DMAS = 50
BATCH = 5_000
US = 1_000_000


def flows(dma: int, minutes: int) -> np.ndarray:
    """A daily demand curve with noise, 20–60 m³/h, different per DMA."""
    rng = np.random.default_rng(dma)
    t = np.arange(minutes)
    hour = (t % 1440) / 60
    base = 20 + dma * 0.5
    curve = base * (1 + 0.6 * np.sin((hour - 9) / 24 * 2 * np.pi).clip(-0.7, 1))
    return np.round(curve + rng.normal(0, 0.5, minutes), 3)


def sensor(dma: int) -> str:
    return f"dma-{dma:02d}-in"


def write_raw(store: InfluxReadingStore, dma: int, start: datetime, minutes: int) -> int:
    times = (int(start.timestamp()) + 60 * np.arange(minutes, dtype=np.int64)) * US
    values = flows(dma, minutes)
    sid = sensor(dma)
    for i in range(0, minutes, BATCH):
        chunk = zip(times[i : i + BATCH].tolist(), values[i : i + BATCH].tolist(), strict=True)
        store.write_points([(sid, t, f, None) for t, f in chunk])
    return minutes


def write_aggregates_only(url: str, db: str, dma: int, minutes: int) -> None:
    """The aggregates a raw write would have produced, without the raw points."""
    hourly = flows(dma, minutes).reshape(-1, 60).mean(axis=1)
    hours0 = int(YEAR.timestamp()) // 3600
    sid = sensor(dma)
    lines = [
        f"flow_hourly,sensor_id={sid} mean_flow_m3h={m!r},reading_count=60i {(hours0 + h) * 3600}"
        for h, m in enumerate(hourly.tolist())
    ]
    days = hourly.reshape(-1, 24)
    day0 = int(YEAR.timestamp())
    lines += [
        f"flow_daily,sensor_id={sid} volume_m3={float(v.sum())!r},hours_measured=24i,"
        f"min_hourly_flow_m3h={float(v.min())!r} {day0 + d * 86400}"
        for d, v in enumerate(days)
    ]
    for i in range(0, len(lines), BATCH):
        response = httpx.post(
            f"{url}/write",
            params={"db": db, "precision": "s"},
            content="\n".join(lines[i : i + BATCH]),
        )
        response.raise_for_status()


BACKLOG_NOTE = "1 h of new readings + 1 late reading per meter, not yet refreshed"


def write_backlog(store: InfluxReadingStore, days: int) -> None:
    """Writes the worker has not refreshed: the next hour of every meter, as 1-minute
    batches of 50 readings, and one late reading per meter in an old hour."""
    end_us = int((YEAR + timedelta(days=days)).timestamp()) * US
    for minute in range(60):
        t = end_us - 3600 * US + minute * 60 * US
        store.write_points([(sensor(d), t + 1, 30.0, None) for d in range(DMAS)])
    late = [
        (sensor(d), end_us - (d * 7 + 3) * 86_400 * US + 1_000 * US, 99.0, None)
        for d in range(DMAS)
    ]
    store.write_points(late)


def provision(sessions: object, days: int) -> None:
    dmas = [
        {
            "dma_id": f"dma-{d:02d}", "site_id": "bench", "name": f"Secteur {d}",
            "mains_km": 20 + d, "service_connections": 6_000 + 100 * d, "avg_pressure_m": 45,
            "households": 5_000, "inlets": [sensor(d)],
        }
        for d in range(DMAS)
    ]  # fmt: skip
    network = entities.NetworkDescription.model_validate(
        {"sites": [{"site_id": "bench", "name": "Bench"}], "dmas": dmas}
    )
    rows = [
        billing.BillingRow(
            dma_id=f"dma-{d:02d}",
            period_start=YEAR + timedelta(days=k * 30 - 10),
            period_end=YEAR + timedelta(days=(k + 1) * 30 - 10),
            volume_m3=30 * 24 * (20 + d * 0.5) * 0.8,
        )
        for d in range(DMAS)
        for k in range(days // 30 + 2)
    ]
    with sessions() as session:  # type: ignore[operator]
        entities.load_network(session, network)
        billing.import_billing(session, rows)


def raw_hourly(store: InfluxReadingStore, raw_dmas: int, days: int) -> None:
    """What the aggregate replaces: each meter's hourly mean and count from raw readings."""
    end = YEAR + timedelta(days=days)
    for d in range(raw_dmas):
        store._select(  # the raw query, through the store's HTTP client
            f'SELECT mean("flow_m3h"), count("flow_m3h") FROM "flow" '  # noqa: S608
            f"WHERE \"sensor_id\" = '{sensor(d)}' AND time >= '{YEAR:%Y-%m-%dT%H:%M:%SZ}' "
            f"AND time < '{end:%Y-%m-%dT%H:%M:%SZ}' GROUP BY time(1h) fill(none)"
        )


def timed(fn: object, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 days, 5 DMAs raw (smoke test)")
    parser.add_argument("--raw-dmas", type=int, default=DMAS, help="DMAs written as raw points")
    args = parser.parse_args()
    days = 30 if args.quick else 365
    raw_dmas = min(5 if args.quick else args.raw_dmas, DMAS)
    minutes = days * 1440
    with tempfile.TemporaryDirectory() as tmp, InfluxServer(Path(tmp) / "influxd") as influx:
        influx.create_database("bench")
        store = InfluxReadingStore(influx.url, "bench", timeout_s=60, refresh_interval_s=None)
        sessions = make_sessionmaker(make_engine(f"sqlite:///{Path(tmp) / 'entities.db'}"))
        provision(sessions, days)
        began = time.perf_counter()
        for d in range(raw_dmas):
            write_raw(store, d, YEAR, minutes)
            print(f"  raw DMA {d + 1}/{raw_dmas} written", file=sys.stderr, flush=True)
        write_s = time.perf_counter() - began
        refresh_s = timed(store.refresh_aggregates, 1)
        for d in range(raw_dmas, DMAS):
            write_aggregates_only(influx.url, "bench", d, minutes)
        period = report_period(YEAR, YEAR + timedelta(days=days))

        def report() -> object:
            with sessions() as session:
                return compute_efficiency(session, store, None, period, ReportConstants())

        report()  # warm-up
        report_s = timed(report, 5)
        write_backlog(store, days)
        dirty_report_s = timed(report, 1)
        html_s = timed(lambda: efficiency_html(report(), "fr"), 3) - report_s  # type: ignore[arg-type]

        raw_s = timed(lambda: raw_hourly(store, raw_dmas, days), 3) * DMAS / raw_dmas
        month = 30 * 1440
        probe = YEAR + timedelta(days=400)
        month_s = timed(lambda: write_raw(store, 90, probe, month), 1)
        month_refresh_s = timed(store.refresh_aggregates, 1)
        store.close()
    times = (write_s, refresh_s, month_s, month_refresh_s, report_s, html_s, dirty_report_s)
    print_results(Results(raw_dmas, days, *times, raw_s))


@dataclass
class Results:
    raw_dmas: int
    days: int
    write_s: float
    refresh_s: float
    month_s: float
    month_refresh_s: float
    report_s: float
    html_s: float
    dirty_report_s: float
    raw_s: float


def print_results(r: Results) -> None:
    points = r.raw_dmas * r.days * 1440
    print(f"raw points written: {points:,} ({r.raw_dmas} DMAs × {r.days} days × 1 440/day)")
    print(f"write with dirty marks: {r.write_s:.1f} s = {points / r.write_s:,.0f} points/s")
    print(f"refresh of their aggregates: {r.refresh_s:.1f} s = {points / r.refresh_s:,.0f} pts/s")
    print(f"one month of one meter: write {r.month_s:.2f} s, refresh {r.month_refresh_s:.2f} s")
    print(f"annual report, 50 DMAs: {r.report_s:.3f} s; HTML rendering +{r.html_s:.3f} s")
    print(f"first report after {BACKLOG_NOTE}: {r.dirty_report_s:.3f} s")
    extrapolated = f" (extrapolated from {r.raw_dmas})" if r.raw_dmas < DMAS else ""
    print(f"same hourly aggregates from raw readings: {r.raw_s:.2f} s{extrapolated}")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| raw points written ({r.raw_dmas} DMAs × {r.days} days, 1 min) | {points:,} |")
    print(f"| write rate (readings + dirty marks) | {points / r.write_s:,.0f} points/s |")
    print(f"| background refresh of their aggregates | {points / r.refresh_s:,.0f} points/s |")
    one_month = f"{r.month_s:.2f} / {r.month_refresh_s:.2f} s"
    print(f"| 43 200 points of one meter: write / refresh | {one_month} |")
    print(f"| **annual report of 50 DMAs (from aggregates)** | **{r.report_s:.3f} s** |")
    print(f"| **first report after {BACKLOG_NOTE}** | **{r.dirty_report_s:.3f} s** |")
    print(f"| + HTML rendering with charts | {r.html_s:.3f} s |")
    print(f"| the same hourly aggregates from raw readings{extrapolated} | {r.raw_s:.2f} s |")
    print(f"| speed-up | {r.raw_s / r.report_s:.0f}× |")


if __name__ == "__main__":
    main()
