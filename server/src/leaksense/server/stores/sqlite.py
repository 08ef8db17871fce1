"""SQLite reading store: the embedded, zero-setup default.

Besides ``readings`` it keeps the hourly and daily aggregates (``aggregates.py``) in
``flow_hourly`` and ``flow_daily``, recomputed for the touched hours and days in the
same transaction as the readings: a confirmed write has its aggregates too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leaksense.core.errors import StoreUnavailable
from leaksense.core.messages import Reading
from leaksense.server.columns import ReadingPoint, epoch_us
from leaksense.server.stores import aggregates
from leaksense.server.stores.base import DailyFlow, HourlyFlow, check_range, points_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    flow_m3h REAL NOT NULL,
    index_m3 REAL,
    PRIMARY KEY (sensor_id, time_us)
) WITHOUT ROWID;
"""
_US = 1_000_000


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / _US, tz=UTC)


class SqliteReadingStore:
    """Readings in one SQLite file (WAL mode, ``synchronous=FULL``: a confirmed write
    survives power loss). One connection guarded by a lock: SQLite serialises writers."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._conn.executescript(aggregates.SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite reading store {path}: {exc}") from exc
        self._lock = threading.Lock()

    def write(self, readings: Sequence[Reading]) -> int:
        return self.write_points(points_of(readings))

    def write_points(self, points: Sequence[ReadingPoint]) -> int:
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", points
                )
                aggregates.update_sqlite(self._conn, points)
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
        return len(points)

    def refresh_aggregates(self) -> int:
        """Nothing to do: SQLite updates the aggregates in the write's own transaction."""
        return 0

    def readings(
        self, sensor_id: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[Reading]:
        check_range(start, end)
        rows = self._query(
            "SELECT time_us, flow_m3h, index_m3 FROM readings WHERE sensor_id = ? "
            "AND time_us >= ? AND time_us < ? ORDER BY time_us LIMIT ?",
            (sensor_id, epoch_us(start), epoch_us(end), limit),
        )
        return [
            Reading(sensor_id=sensor_id, time=_from_us(t), flow_m3h=f, index_m3=i)
            for t, f, i in rows
        ]

    def hourly_flow(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        check_range(start, end)
        rows = self._query(
            "SELECT hour_us, mean_flow_m3h, reading_count FROM flow_hourly "
            "WHERE sensor_id = ? AND hour_us >= ? AND hour_us < ? ORDER BY hour_us",
            (sensor_id, epoch_us(start), epoch_us(end)),
        )
        return [HourlyFlow(_from_us(h), float(m), int(c)) for h, m, c in rows]

    def daily_flow(
        self, sensor_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[DailyFlow]]:
        check_range(start, end)
        out: dict[str, list[DailyFlow]] = {s: [] for s in sensor_ids}
        for sensor_id in out:
            rows = self._query(
                "SELECT day_us, volume_m3, hours_measured, min_hourly_flow_m3h FROM flow_daily "
                "WHERE sensor_id = ? AND day_us >= ? AND day_us < ? ORDER BY day_us",
                (sensor_id, epoch_us(start), epoch_us(end)),
            )
            out[sensor_id] = [DailyFlow(_from_us(d), v, int(h), m) for d, v, h, m in rows]
        return out

    def ping(self) -> None:
        self._query("SELECT 1", ())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite query failed: {exc}") from exc
