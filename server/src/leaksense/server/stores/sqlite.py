"""SQLite reading store: the embedded, zero-setup default."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leaksense.core.errors import StoreUnavailable
from leaksense.core.messages import Reading
from leaksense.server.stores.base import HourlyFlow, check_range

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


def _to_us(value: datetime) -> int:
    return round(value.timestamp() * _US)


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
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite reading store {path}: {exc}") from exc
        self._lock = threading.Lock()

    def write(self, readings: Sequence[Reading]) -> int:
        rows = [(r.sensor_id, _to_us(r.time), r.flow_m3h, r.index_m3) for r in readings]
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreUnavailable(f"SQLite write failed: {exc}") from exc
        return len(rows)

    def readings(
        self, sensor_id: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[Reading]:
        check_range(start, end)
        rows = self._query(
            "SELECT time_us, flow_m3h, index_m3 FROM readings WHERE sensor_id = ? "
            "AND time_us >= ? AND time_us < ? ORDER BY time_us LIMIT ?",
            (sensor_id, _to_us(start), _to_us(end), limit),
        )
        return [
            Reading(sensor_id=sensor_id, time=_from_us(t), flow_m3h=f, index_m3=i)
            for t, f, i in rows
        ]

    def hourly_flow(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        check_range(start, end)
        hour_us = 3600 * _US
        rows = self._query(
            "SELECT (time_us / ?) * ? AS hour, avg(flow_m3h), count(*) FROM readings "
            "WHERE sensor_id = ? AND time_us >= ? AND time_us < ? GROUP BY hour ORDER BY hour",
            (hour_us, hour_us, sensor_id, _to_us(start), _to_us(end)),
        )
        return [HourlyFlow(_from_us(h), float(m), int(c)) for h, m, c in rows]

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
