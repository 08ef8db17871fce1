"""The durable outbox: one SQLite file in WAL mode, committed with ``synchronous=FULL``.

Why SQLite: a reading acknowledged to the broker must survive ``kill -9`` and a power
cut, and the outbox may hold weeks of readings while the uplink is down. SQLite gives
atomic transactions and crash recovery in the standard library.

**fsync policy.** The connection runs ``journal_mode=WAL`` and ``synchronous=FULL``:
every commit appends its pages to the WAL and fsyncs it before returning, so a
committed transaction survives a power cut (on storage that honours fsync). The
gateway commits once per *intake group* (every ~50 ms or 1 000 messages, see
:mod:`leaksense.edge.intake_group`), once per batch taken for sending and once per
confirmed batch: a few fsyncs per second at most, whatever the message rate. A
checkpoint (every ~4 MB of WAL) also fsyncs the database file. The cost measured on
the development machine is in docs/gateway-durability.md.

**Layout.** Readings are stored compactly (an integer sensor key, microseconds since
the epoch, flow, index: ~31 bytes a row) in arrival order; alerts as JSON, at most one
*pending* row per ``alert_id`` (a fresher version replaces the pending one, never the
one inside a batch already handed to the uplink). A batch is a persisted row
``(batch_seq, first_id, last_id)`` over the oldest readings plus the alerts marked
with its ``batch_seq``; it is re-read identically after a restart until confirmed.
The next ``batch_seq`` is stored too, so it grows across restarts.

**Bound.** Past ``max_readings`` rows or ``max_bytes`` of pages in use, the oldest
readings (outside the batch in flight) are folded into one row per sensor and hour:
the mean flow, stamped with the time of the earliest reading it stands for (within
the hour; not the hour's start, which a raw reading already sent may hold), with the
last index, so hourly volumes on the server stay right. Each fold is counted in
``readings_dropped`` and logged as an ERROR. Alerts are never dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from leaksense.core.errors import ConfigError, StoreUnavailable
from leaksense.core.messages import MAX_ALERTS_PER_BATCH, Alert, Reading
from leaksense.edge.outbox import OutboxStats, PendingBatch, ReadingRow

log = logging.getLogger(__name__)

DEFAULT_MAX_READINGS = 30 * 200 * 24 * 60
"""30 days × 200 sensors × 1 reading a minute = 8 640 000 readings."""
DEFAULT_MAX_BYTES = 1 << 30
"""1 GiB of database pages; 8.64 M readings take about 0.25 GiB."""
LOW_WATER = 0.9
"""A fold at the bound brings the outbox back to 90 % of it, so it does not fold at
every commit."""
FOLD_CHUNK = 100_000
"""Readings folded per transaction (the intake waits for the fold: keep it short)."""
SCHEMA_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
HOUR_US = 3_600_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sensors (
    sensor_key INTEGER PRIMARY KEY, sensor_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    sensor_key INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    flow_m3h REAL NOT NULL,
    index_m3 REAL,
    folded INTEGER NOT NULL DEFAULT 0  -- 0: as received; n > 0: hourly mean of n readings
);
CREATE INDEX IF NOT EXISTS readings_folded ON readings (sensor_key, time_us) WHERE folded > 0;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, body TEXT NOT NULL, batch_seq INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_pending ON alerts (alert_id) WHERE batch_seq IS NULL;
CREATE TABLE IF NOT EXISTS batches (
    batch_seq INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta VALUES
    ('next_batch_seq', 0), ('readings_dropped', 0), ('aggregates_dropped', 0);
"""
INSERT_READINGS = "INSERT INTO readings (sensor_key, time_us, flow_m3h, index_m3) VALUES "
INSERT_CHUNK = 100
"""Readings a statement inserts: one statement step (one GIL release) per 100 rows, not
per row, which a committing thread makes the intake thread wait for."""
INSERT_READING = INSERT_READINGS + "(?, ?, ?, ?)"
INSERT_CHUNK_SQL = INSERT_READINGS + ", ".join(["(?, ?, ?, ?)"] * INSERT_CHUNK)
UPSERT_ALERT = """
INSERT INTO alerts (alert_id, body) VALUES (?, ?)
ON CONFLICT (alert_id) WHERE batch_seq IS NULL DO UPDATE SET body = excluded.body
"""


def to_us(moment: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding)."""
    return (moment - EPOCH) // ONE_US


class SqliteOutbox:
    """Implements :class:`~leaksense.edge.outbox.Outbox`; safe to share between threads."""

    def __init__(
        self,
        path: Path,
        max_readings: int = DEFAULT_MAX_READINGS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.path = path
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn = _connect(path)
        self._sensor_keys: dict[str, int] = {}
        self._sensor_ids: dict[int, str] = {}
        for key, sensor_id in self._conn.execute("SELECT sensor_key, sensor_id FROM sensors"):
            self._sensor_keys[sensor_id], self._sensor_ids[key] = key, sensor_id
        self._readings: int = self._scalar("SELECT count(*) FROM readings")
        self._alerts: int = self._scalar("SELECT count(*) FROM alerts")
        self._in_flight: PendingBatch | None = None

    # -- the Outbox Protocol --------------------------------------------------------
    def add(self, readings: Sequence[Reading], alerts: Sequence[Alert]) -> None:
        """Store in one transaction; returns after the fsync."""
        self.add_rows([(r.sensor_id, r.time, r.flow_m3h, r.index_m3) for r in readings], alerts)

    def add_rows(self, readings: Sequence[ReadingRow], alerts: Sequence[Alert]) -> None:
        """:meth:`add` for ``(sensor_id, time, flow_m3h, index_m3)`` rows (UTC times)."""
        if not readings and not alerts:
            return
        with self._lock:
            new_keys: dict[str, int] = {}
            with self._transaction():
                keys = self._sensor_keys
                rows = [
                    (
                        keys.get(sensor_id) or self._key(sensor_id, new_keys),
                        (time - EPOCH) // ONE_US,
                        flow_m3h,
                        index_m3,
                    )
                    for sensor_id, time, flow_m3h, index_m3 in readings
                ]
                self._insert_readings(rows)
                for alert in alerts:
                    self._conn.execute(UPSERT_ALERT, (alert.alert_id, alert.model_dump_json()))
            for sensor_id, key in new_keys.items():
                self._sensor_keys[sensor_id], self._sensor_ids[key] = key, sensor_id
            self._readings += len(rows)
            if alerts:
                self._alerts = self._scalar("SELECT count(*) FROM alerts")
            if self._over(1.0):
                self._enforce_bound()

    def peek_batch(self, max_readings: int) -> PendingBatch | None:
        with self._lock:
            if self._in_flight is None:
                row = self._conn.execute(
                    "SELECT batch_seq, first_id, last_id FROM batches ORDER BY batch_seq LIMIT 1"
                ).fetchone()
                if row is None:
                    row = self._new_batch(max_readings)
                if row is not None:
                    self._in_flight = self._load(*row)
            return self._in_flight

    def confirm(self, batch_seq: int) -> None:
        with self._lock:
            row = self._conn.execute(
                "SELECT first_id, last_id FROM batches WHERE batch_seq = ?", (batch_seq,)
            ).fetchone()
            if row is None:
                return
            with self._transaction():
                readings = self._conn.execute(
                    "DELETE FROM readings WHERE id BETWEEN ? AND ?", row
                ).rowcount
                alerts = self._conn.execute(
                    "DELETE FROM alerts WHERE batch_seq = ?", (batch_seq,)
                ).rowcount
                self._conn.execute("DELETE FROM batches WHERE batch_seq = ?", (batch_seq,))
            self._readings -= readings
            self._alerts -= alerts
            self._in_flight = None

    def depth(self) -> int:
        return self._readings + self._alerts

    def stats(self) -> OutboxStats:
        with self._lock:
            oldest = self._conn.execute(
                "SELECT time_us FROM readings ORDER BY id LIMIT 1"
            ).fetchone()
            bytes_used = self._bytes_used()
            return OutboxStats(
                readings=self._readings,
                alerts=self._alerts,
                bytes_used=bytes_used,
                capacity_pct=100.0
                * max(self._readings / self.max_readings, bytes_used / self.max_bytes),
                oldest_unsent_at=EPOCH + oldest[0] * ONE_US if oldest else None,
                readings_dropped=self._meta("readings_dropped"),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- batches --------------------------------------------------------------------
    def _new_batch(self, max_readings: int) -> tuple[int, int, int] | None:
        """Persist the next batch: pending alerts first, then the oldest readings."""
        with self._transaction():
            seq = self._meta("next_batch_seq")
            alerts = self._conn.execute(
                "UPDATE alerts SET batch_seq = ? WHERE id IN (SELECT id FROM alerts "
                "WHERE batch_seq IS NULL ORDER BY id LIMIT ?)",
                (seq, MAX_ALERTS_PER_BATCH),
            ).rowcount
            first_id, last_id = self._conn.execute(
                "SELECT min(id), max(id) FROM (SELECT id FROM readings ORDER BY id LIMIT ?)",
                (max_readings,),
            ).fetchone()
            if first_id is None:
                if not alerts:
                    return None
                first_id, last_id = 0, -1
            self._conn.execute("INSERT INTO batches VALUES (?, ?, ?)", (seq, first_id, last_id))
            self._set_meta("next_batch_seq", seq + 1)
        return seq, first_id, last_id

    def _load(self, batch_seq: int, first_id: int, last_id: int) -> PendingBatch:
        ids = self._sensor_ids
        readings = tuple(
            # Validated when they were added: rebuilt without validating again.
            Reading.model_construct(
                sensor_id=ids[key], time=EPOCH + time_us * ONE_US, flow_m3h=flow, index_m3=index
            )
            for key, time_us, flow, index in self._conn.execute(
                "SELECT sensor_key, time_us, flow_m3h, index_m3 FROM readings "
                "WHERE id BETWEEN ? AND ? ORDER BY id",
                (first_id, last_id),
            )
        )
        alerts = tuple(
            Alert.model_validate_json(body)
            for (body,) in self._conn.execute(
                "SELECT body FROM alerts WHERE batch_seq = ? ORDER BY id", (batch_seq,)
            )
        )
        return PendingBatch(batch_seq, readings, alerts)

    # -- the bound ------------------------------------------------------------------
    def _over(self, fraction: float) -> bool:
        return (
            self._readings > fraction * self.max_readings
            or self._bytes_used() > fraction * self.max_bytes
        )

    def _enforce_bound(self) -> None:
        before = self._readings
        folded = 0
        while self._over(LOW_WATER):
            count = self._fold(self._excess_rows())
            if count == 0:
                break
            folded += count
        log.error(
            "outbox at its bound (%d readings, %d bytes): folded the %d oldest readings "
            "into hourly means; %d rows → %d (%d readings dropped in total)",
            self.max_readings,
            self.max_bytes,
            folded,
            before,
            self._readings,
            self._meta("readings_dropped"),
        )

    def _excess_rows(self) -> int:
        """About how many rows to fold to get back under the low-water mark."""
        excess = self._readings - LOW_WATER * self.max_readings
        bytes_used = self._bytes_used()
        if bytes_used > LOW_WATER * self.max_bytes and self._readings:
            row_bytes = bytes_used / self._readings
            excess = max(excess, (bytes_used - LOW_WATER * self.max_bytes) / row_bytes)
        return max(1, min(FOLD_CHUNK, int(excess) + 1))

    def _fold(self, limit: int) -> int:
        """Fold up to ``limit`` of the oldest readings outside the batch in flight."""
        after = self._scalar("SELECT coalesce(max(last_id), 0) FROM batches")
        with self._transaction():
            rows = self._conn.execute(
                "SELECT id, sensor_key, time_us, flow_m3h, index_m3 FROM readings "
                "WHERE id > ? AND folded = 0 ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
            if not rows:
                if not self._means_over_bound(after):
                    return 0  # the excess is the batch in flight: it leaves once confirmed
                return self._drop_aggregates(after, limit)
            hours: dict[tuple[int, int], list[float]] = {}
            indexes: dict[tuple[int, int], float] = {}
            firsts: dict[tuple[int, int], int] = {}
            for _, key, time_us, flow, index in rows:
                group = (key, time_us - time_us % HOUR_US)
                hours.setdefault(group, []).append(flow)
                firsts[group] = min(time_us, firsts.get(group, time_us))
                if index is not None:
                    indexes[group] = index
            self._conn.execute(
                "DELETE FROM readings WHERE id > ? AND id <= ? AND folded = 0", (after, rows[-1][0])
            )
            added = sum(
                self._merge_hour(
                    after, key, firsts[key, hour_us], flows, indexes.get((key, hour_us))
                )
                for (key, hour_us), flows in hours.items()
            )
            self._add_meta("readings_dropped", len(rows))
        self._readings -= len(rows) - added
        return len(rows)

    def _merge_hour(
        self, after: int, key: int, first_us: int, flows: list[float], index: float | None
    ) -> int:
        """Add readings of one hour to its aggregate row; 1 if a row was inserted.

        The row is stamped with the time of the earliest reading it stands for, not
        the hour's start: readings of that hour already in the batch in flight keep
        their own times on the server, and a mean stamped at the hour's start would
        overwrite the one taken at HH:00 there (the server keys by sensor and time).
        """
        hour_us = first_us - first_us % HOUR_US
        existing = self._conn.execute(
            "SELECT id, time_us, flow_m3h, index_m3, folded FROM readings WHERE sensor_key = ? "
            "AND time_us >= ? AND time_us < ? AND folded > 0 AND id > ?",
            (key, hour_us, hour_us + HOUR_US, after),
        ).fetchone()
        if existing is None:
            self._conn.execute(
                "INSERT INTO readings (sensor_key, time_us, flow_m3h, index_m3, folded) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, first_us, sum(flows) / len(flows), index, len(flows)),
            )
            return 1
        row_id, stamp_us, mean, old_index, count = existing
        total = count + len(flows)
        self._conn.execute(
            "UPDATE readings SET time_us = ?, flow_m3h = ?, index_m3 = ?, folded = ? WHERE id = ?",
            (
                min(stamp_us, first_us),
                (mean * count + sum(flows)) / total,
                old_index if index is None else index,
                total,
                row_id,
            ),
        )
        return 0

    def _means_over_bound(self, after: int) -> bool:
        """Whether the rows outside the batch in flight (all hourly means by now) are
        themselves over the low-water mark: only then are means dropped."""
        outside = self._scalar("SELECT count(*) FROM readings WHERE id > ?", after)
        share = outside / max(1, self._readings)
        return (
            outside > LOW_WATER * self.max_readings
            or share * self._bytes_used() > LOW_WATER * self.max_bytes
        )

    def _drop_aggregates(self, after: int, limit: int) -> int:
        """Last resort, once only hourly means are left: drop the oldest of them."""
        victims = self._conn.execute(
            "SELECT id, folded FROM readings WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()
        if not victims:
            return 0
        self._conn.execute("DELETE FROM readings WHERE id > ? AND id <= ?", (after, victims[-1][0]))
        lost = sum(folded for _, folded in victims)  # counted in readings_dropped at the fold
        self._add_meta("aggregates_dropped", len(victims))
        self._readings -= len(victims)
        log.error(
            "outbox holds only hourly means: dropped %d of them (%d readings)", len(victims), lost
        )
        return len(victims)

    # -- helpers --------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreUnavailable(f"gateway outbox {self.path}: {exc}") from exc

    def _insert_readings(self, rows: list[tuple[int, int, float, float | None]]) -> None:
        """Insert in arrival order (ids grow with it), 100 rows a statement."""
        whole = len(rows) - len(rows) % INSERT_CHUNK
        for start in range(0, whole, INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            self._conn.execute(INSERT_CHUNK_SQL, [value for row in chunk for value in row])
        self._conn.executemany(INSERT_READING, rows[whole:])

    def _key(self, sensor_id: str, new_keys: dict[str, int]) -> int:
        key = self._sensor_keys.get(sensor_id)
        if key is None:
            key = new_keys.get(sensor_id)
        if key is None:
            cursor = self._conn.execute("INSERT INTO sensors (sensor_id) VALUES (?)", (sensor_id,))
            key = new_keys[sensor_id] = int(cursor.lastrowid or 0)
        return key

    def _bytes_used(self) -> int:
        pages = self._scalar("PRAGMA page_count") - self._scalar("PRAGMA freelist_count")
        return pages * self._scalar("PRAGMA page_size")

    def _scalar(self, sql: str, *params: object) -> int:
        try:
            value = self._conn.execute(sql, params).fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"gateway outbox {self.path}: {exc}") from exc
        return int(value)

    def _meta(self, key: str) -> int:
        return self._scalar("SELECT value FROM meta WHERE key = ?", key)

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    def _add_meta(self, key: str, delta: int) -> None:
        self._conn.execute("UPDATE meta SET value = value + ? WHERE key = ?", (delta, key))


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) with WAL and ``synchronous=FULL``; refuse other files."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the gateway outbox {path}: {exc}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise ConfigError(f"gateway outbox {path}: WAL mode refused ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=67108864")  # WAL back to ≤ 64 MB after use
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ConfigError(f"gateway outbox {path}: unknown schema version {version}")
        conn.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"{path} is not a usable gateway outbox: {exc}") from exc
    except ConfigError:
        conn.close()
        raise
    return conn
