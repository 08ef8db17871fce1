"""Stages 2-3 of the path benchmark: writes to InfluxDB and SQLite, Leaksense against raw."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from local_servers import Server
from path_common import GATEWAY_ID, US, BenchError, Figures, Sizes, frozen_heap, timed
from sensor_publisher import BASE, SENSOR_COUNT, SENSOR_IDS, flow_m3h

from leaksense.core.messages import IngestBatch, Reading
from leaksense.server.stores.base import ReadingStore
from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.server.stores.sqlite import SqliteReadingStore

BATCH = 5_000
"""Points per /write request, rows per SQLite transaction, readings per ingest POST."""


@dataclass(frozen=True)
class Dataset:
    """The same points in each form a writer needs, built outside the timings."""

    readings: list[Reading]
    lines: list[bytes]
    rows: list[list[tuple[str, int, float, None]]]
    batches: list[IngestBatch]


def make_dataset(count: int, start: datetime, first_seq: int) -> Dataset:
    """``count`` readings: 200 sensors, one per minute each, from ``start``."""
    start_us = round(start.timestamp() * US)
    columns = [
        (SENSOR_IDS[i % SENSOR_COUNT], start_us + (i // SENSOR_COUNT) * 60 * US, flow_m3h(i))
        for i in range(count)
    ]
    readings = [
        Reading(sensor_id=s, time=datetime.fromtimestamp(t / US, tz=UTC), flow_m3h=f)
        for s, t, f in columns
    ]
    chunks = range(0, count, BATCH)
    return Dataset(
        readings=readings,
        lines=[
            "\n".join(
                f"flow,sensor_id={s} flow_m3h={f!r} {t}" for s, t, f in columns[i : i + BATCH]
            ).encode()
            for i in chunks
        ],
        rows=[[(s, t, f, None) for s, t, f in columns[i : i + BATCH]] for i in chunks],
        batches=[
            IngestBatch(
                gateway_id=GATEWAY_ID,
                batch_seq=first_seq + n,
                sent_at=datetime.now(UTC),
                readings=readings[i : i + BATCH],
            )
            for n, i in enumerate(chunks)
        ],
    )


def influx_raw_write(http: httpx.Client, database: str, bodies: Sequence[bytes]) -> None:
    for body in bodies:
        response = http.post("/write", params={"db": database, "precision": "u"}, content=body)
        if response.status_code != 204:
            raise BenchError(f"raw /write: HTTP {response.status_code} {response.text[:200]}")


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL, time_us INTEGER NOT NULL, flow_m3h REAL NOT NULL, index_m3 REAL,
    PRIMARY KEY (sensor_id, time_us)
) WITHOUT ROWID;
"""


def open_raw_sqlite(path: Path) -> sqlite3.Connection:
    """The table and pragmas of ``SqliteReadingStore`` (WAL, ``synchronous=FULL``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SQLITE_SCHEMA)
    return conn


def sqlite_raw_write(
    conn: sqlite3.Connection, batches: Sequence[Sequence[tuple[Any, ...]]]
) -> None:
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")


def write_in_batches(store: ReadingStore, readings: Sequence[Reading]) -> None:
    """One ``write`` per 5 000 readings, as ingest calls it once per gateway batch."""
    for i in range(0, len(readings), BATCH):
        store.write(readings[i : i + BATCH])


@dataclass
class StoreTargets:
    """Where each writer of stages 2-3 writes: one database or file per writer."""

    influx_http: httpx.Client
    influx_store: InfluxReadingStore
    influx_server: Server
    sqlite_conn: sqlite3.Connection
    sqlite_store: SqliteReadingStore
    sqlite_server: Server
    sqlite_server_db: Path


def store_repeat(figures: Figures, targets: StoreTargets, data: Dataset) -> None:
    """Each writer writes the same fresh points; records points/s.

    Writers take turns batch by batch, so a slow moment of the disk or of a neighbour
    on the machine hits all of them alike instead of one whole run.
    """
    t = targets

    def readings(i: int) -> list[Reading]:
        return data.readings[i * BATCH : (i + 1) * BATCH]

    writers: dict[str, Callable[[int], object]] = {
        "influx raw": lambda i: influx_raw_write(t.influx_http, "bench_raw", data.lines[i : i + 1]),
        "influx store": lambda i: t.influx_store.write(readings(i)),
        "influx http": lambda i: t.influx_server.uplink.send(data.batches[i]),
        "sqlite raw": lambda i: sqlite_raw_write(t.sqlite_conn, data.rows[i : i + 1]),
        "sqlite store": lambda i: t.sqlite_store.write(readings(i)),
        "sqlite http": lambda i: t.sqlite_server.uplink.send(data.batches[i]),
    }
    elapsed_s = dict.fromkeys(writers, 0.0)
    with frozen_heap():
        for i in range(len(data.batches)):
            for name, write in writers.items():
                elapsed_s[name] += timed(write, i)
    for name, seconds in elapsed_s.items():
        figures.add(name, len(data.readings) / seconds)


def bench_stores(figures: Figures, targets: StoreTargets, sizes: Sizes) -> None:
    """Repeat ``r`` writes fresh points one day after those of repeat ``r - 1``."""
    batches = -(-sizes.points // BATCH)
    for r in range(sizes.store_repeats):
        data = make_dataset(sizes.points, BASE + timedelta(days=r), r * batches)
        store_repeat(figures, targets, data)
    unit, m = "points/s", figures.median
    for key, name, store in (
        ("influx", "InfluxDB", "InfluxReadingStore"),
        ("sqlite", "SQLite", "SqliteReadingStore"),
    ):
        raw = m(f"{key} raw")
        figures.rate(f"{name}: `{store}.write` vs raw", unit, m(f"{key} store"), raw)
        figures.rate(f"{name}: full HTTP ingest path vs raw", unit, m(f"{key} http"), raw)
    names = [f"{k} {w}" for k in ("influx", "sqlite") for w in ("raw", "store", "http")]
    figures.notes.append(
        f"stores: {sizes.points:,} points per run, median of {sizes.store_repeats}; ranges: "
        + "; ".join(figures.spread(n, unit) for n in names)
    )
