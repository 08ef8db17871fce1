"""Ingest of gateway batches: readings to the reading store, alerts to the database.

A batch is acknowledged only once it is durably stored, and storing it twice stores
nothing twice:

1. A batch already in the batch log (same gateway, ``batch_seq`` and content digest)
   is a replay: the gateway lost our answer. It is answered from the log, unwritten.
2. Otherwise the readings are sent to the reading store (InfluxDB: formatted and
   sent by this thread, :class:`PipelinedStore`; SQLite: written by a
   helper thread) while the request prepares, uncommitted, one database
   transaction: it upserts the alerts (by ``alert_id``), the sensors' last-seen
   times and the gateway's, and records the batch in the log.
3. Only once the store confirmed the write (InfluxDB answered 204, or SQLite
   committed) is the transaction committed; a store that is down raises
   :class:`StoreUnavailable` (503) and the transaction is rolled back. If the
   commit fails the gateway retries, and the readings, keyed by sensor and time,
   are simply rewritten.

Overlapping the store's write with the database work saves that work's time on every
batch (measured in docs/benchmarks.md); the price is that the transaction holds its
locks (on SQLite, the database's write lock) for the length of the store's write.
The hourly and daily aggregates are not refreshed here: the store marks the touched
hours dirty in the same write, and refreshes them off this path (``stores/``).

**Relaxed batch-log commit (InfluxDB only).** With ``relax_log_commit`` (the app
sets it when the reading store is InfluxDB), a batch *without alerts* (and a
replay's last-seen update) is committed without waiting for the disk: SQLite
``synchronous=NORMAL`` for that transaction, PostgreSQL ``synchronous_commit=off``.
The readings are already durable in InfluxDB (its 204 comes after its own WAL
fsync); what a crash of the machine can lose is the batch's log row and last-seen
times. A gateway retrying that batch then finds no row and writes it again: InfluxDB
keys points by series and time, so the rewrite replaces identical points and their
dirty marks, and nothing is stored twice (``tests/server/test_ingest_pipelined.py``).
Batches with alerts, and every batch on the SQLite reading store, commit fully
synchronously. This saves one fsync (1–4 ms here) after the store's confirmation.

The log keeps each gateway's batches for ``batch_log_retention_days`` (7 by default);
older records are deleted by ingest, at most once an hour per gateway and process.
Forgetting a batch never loses data, it only means that a replay arriving later than
that is written again.

An :class:`Ingestor` lives as long as the app and keeps two small per-process
caches, which only save work: when it last pruned each gateway's log, and when it
last wrote each sensor's last-seen time (written again after
``sensor_seen_interval_s``, so ``sensors.last_seen_at`` lags by up to a minute).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError
from leaksense.core.messages import Alert, IngestResult
from leaksense.server.columns import EPOCH, ReadingColumns, ReadingPoint
from leaksense.server.db import (
    RELAXED_COMMIT,
    AlertRecord,
    Gateway,
    IngestedBatch,
    Sensor,
    upsert_statement,
)
from leaksense.server.stores.base import ReadingStore
from leaksense.server.wire import DecodedBatch
from leaksense.server.workflow.received import alert_received

log = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 3600.0
SENSOR_SEEN_INTERVAL_S = 60.0
MAX_CACHED_SENSORS = 100_000
_WRITERS = ThreadPoolExecutor(8, thread_name_prefix="ingest-write")
"""Threads writing to the reading store while requests do their database work (shared
by the process's ingestors; a thread is started only when all are busy)."""


@runtime_checkable
class PipelinedStore(Protocol):
    """A reading store that can send a write and be waited for later."""

    def begin_write(self, readings: ReadingColumns) -> Callable[[], int]: ...


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """The answer to the gateway, and what the request did, for the metrics."""

    result: IngestResult
    replayed: bool
    store_write_s: float | None
    """Seconds the reading store took; None when nothing was written."""


class Ingestor:
    """Stores gateway batches (see the module doc); one per app, thread-safe."""

    def __init__(
        self,
        store: ReadingStore,
        retention: timedelta = timedelta(days=7),
        sensor_seen_interval_s: float = SENSOR_SEEN_INTERVAL_S,
        *,
        overlap_write: bool = True,
        relax_log_commit: bool = False,
    ) -> None:
        """``relax_log_commit``: commit batches without alerts without waiting for the
        disk (see the module doc); only for a store whose writes are idempotent and
        durable on their own (InfluxDB)."""
        self._store = store
        self._retention = retention
        self._sensor_seen_interval_s = sensor_seen_interval_s
        self._pruned_at_s: dict[str, float] = {}
        self._sensor_written_at_s: dict[str, float] = {}
        self._overlap = overlap_write
        self._relax = relax_log_commit

    def ingest(self, session: Session, gateway_id: str, batch: DecodedBatch) -> IngestOutcome:
        """Store a batch that the gateway ``gateway_id`` (its token's) sent."""
        if gateway_id != batch.gateway_id:
            raise AuthenticationError(
                f"this token belongs to gateway {gateway_id!r}, not {batch.gateway_id!r}"
            )
        known = _logged(session, gateway_id, batch.batch_seq)
        now = datetime.now(UTC)
        if self._relax and not batch.alerts:
            relax_commit(session)
        if known is not None and known.content_sha256 == batch.content_sha256:
            _touch_gateway(session, gateway_id, now, None)
            session.commit()
            return IngestOutcome(known.result, replayed=True, store_write_s=None)
        if known is not None:
            log.info(
                "gateway %s reused batch_seq %d for different content: stored as a new batch",
                gateway_id,
                batch.batch_seq,
            )
        result = IngestResult(
            gateway_id=gateway_id,
            batch_seq=batch.batch_seq,
            readings_stored=len(batch.readings),  # a store stores them all, or raises
            alerts_stored=len(batch.alerts),
        )
        finish = self._begin_write(batch.readings)
        try:  # the database work of the batch overlaps the store's write, uncommitted
            for alert in batch.alerts:
                _upsert_alert(session, gateway_id, alert, now)
            touched = self._touch_sensors(session, gateway_id, batch.readings)
            _touch_gateway(session, gateway_id, now, batch.batch_seq)
            self._prune(session, gateway_id, now)
            _log_batch(session, result, batch.content_sha256, now)
        finally:
            write_s = finish()  # durable, or it raises: no commit
        session.commit()
        self._remember_sensors(touched)
        return IngestOutcome(result, replayed=False, store_write_s=write_s)

    def _begin_write(self, readings: ReadingColumns) -> Callable[[], float | None]:
        """Start the store's write; the returned call waits for it and returns the
        seconds it took (None when nothing was written).

        A store that sends its writes itself (:class:`PipelinedStore`) formats and
        sends in this thread and is waited for later; any other store writes in a
        helper thread (or here, without ``overlap_write``)."""
        if not readings:
            return lambda: None
        if isinstance(self._store, PipelinedStore) and self._overlap:
            began_s = time.perf_counter()
            wait = self._store.begin_write(readings)

            def finish() -> float:
                wait()
                return time.perf_counter() - began_s

            return finish
        points = readings.points()
        if self._overlap:
            return _WRITERS.submit(self._write, points).result
        done = self._write(points)
        return lambda: done

    def _write(self, points: list[ReadingPoint]) -> float:
        """Write to the reading store; return the seconds it took."""
        began_s = time.perf_counter()
        self._store.write_points(points)
        return time.perf_counter() - began_s

    def _prune(self, session: Session, gateway_id: str, now: datetime) -> None:
        now_s = time.monotonic()
        if now_s - self._pruned_at_s.get(gateway_id, -PRUNE_INTERVAL_S) < PRUNE_INTERVAL_S:
            return
        session.connection().execute(
            delete(IngestedBatch).where(
                IngestedBatch.gateway_id == gateway_id,
                IngestedBatch.stored_at < now - self._retention,
            )
        )
        self._pruned_at_s[gateway_id] = now_s

    def _touch_sensors(
        self, session: Session, gateway_id: str, readings: ReadingColumns
    ) -> list[str]:
        """Record when each sensor was last heard of; unknown sensors are registered.

        One bulk ``INSERT ... ON CONFLICT`` for the sensors not written in the last
        minute, keeping the later of the stored and the new time. It runs on the
        session's connection: the ORM's bulk machinery would double its cost.
        Returns the sensors written, to remember once the transaction is committed.
        """
        written = self._sensor_written_at_s
        fresh_after_s = time.monotonic() - self._sensor_seen_interval_s
        due_ids = [
            s for s in readings.used_sensor_ids() if written.get(s, fresh_after_s) <= fresh_after_s
        ]
        if not due_ids:
            return []
        spans = readings.spans()  # a pass over the rows, at most once a minute per sensor
        due = {s: spans[s][1] for s in due_ids}
        site_id = session.scalar(select(Gateway.site_id).where(Gateway.gateway_id == gateway_id))
        insert = upsert_statement(session, Sensor)
        seen = insert.excluded.last_seen_at
        newer = or_(Sensor.last_seen_at.is_(None), seen > Sensor.last_seen_at)
        statement = insert.on_conflict_do_update(
            index_elements=[Sensor.sensor_id],
            set_={"last_seen_at": case((newer, seen), else_=Sensor.last_seen_at)},
        )
        session.connection().execute(
            statement,
            [
                {
                    "sensor_id": sensor_id,
                    "site_id": site_id,
                    "role": "unknown",
                    "last_seen_at": EPOCH + timedelta(microseconds=time_us),
                }
                for sensor_id, time_us in due.items()
            ],
        )
        return list(due)

    def _remember_sensors(self, sensor_ids: list[str]) -> None:
        if len(self._sensor_written_at_s) > MAX_CACHED_SENSORS:
            self._sensor_written_at_s.clear()
        self._sensor_written_at_s.update(dict.fromkeys(sensor_ids, time.monotonic()))


# Ingest's own statements run on the session's connection (SQLAlchemy Core): the
# ORM's per-statement machinery costs several times the SQL on SQLite.


@dataclass(frozen=True, slots=True)
class _Logged:
    result: IngestResult
    content_sha256: str


def _logged(session: Session, gateway_id: str, batch_seq: int) -> _Logged | None:
    """The batch log's record of ``(gateway_id, batch_seq)``, if any."""
    row = (
        session.connection()
        .execute(
            select(
                IngestedBatch.content_sha256,
                IngestedBatch.readings_stored,
                IngestedBatch.alerts_stored,
            ).where(IngestedBatch.gateway_id == gateway_id, IngestedBatch.batch_seq == batch_seq)
        )
        .first()
    )
    if row is None:
        return None
    result = IngestResult(
        gateway_id=gateway_id,
        batch_seq=batch_seq,
        readings_stored=row.readings_stored,
        alerts_stored=row.alerts_stored,
    )
    return _Logged(result, row.content_sha256)


def _touch_gateway(session: Session, gateway_id: str, now: datetime, batch_seq: int | None) -> None:
    values: dict[str, object] = {"last_seen_at": now}
    if batch_seq is not None:
        values["last_batch_seq"] = batch_seq
    session.connection().execute(
        update(Gateway).where(Gateway.gateway_id == gateway_id).values(values)
    )


def _log_batch(session: Session, result: IngestResult, content_sha256: str, now: datetime) -> None:
    """Upsert the batch record: two instances may store the same retry at once."""
    insert = upsert_statement(session, IngestedBatch)
    session.connection().execute(
        insert.values(
            gateway_id=result.gateway_id,
            batch_seq=result.batch_seq,
            content_sha256=content_sha256,
            readings_stored=result.readings_stored,
            alerts_stored=result.alerts_stored,
            stored_at=now,
        ).on_conflict_do_update(
            index_elements=[IngestedBatch.gateway_id, IngestedBatch.batch_seq],
            set_={
                name: insert.excluded[name]
                for name in ("content_sha256", "readings_stored", "alerts_stored", "stored_at")
            },
        )
    )


def _upsert_alert(session: Session, gateway_id: str, alert: Alert, now: datetime) -> None:
    """Insert or refresh the alert's figures; its workflow state is left to
    ``workflow/received.py`` (an update never undoes an acknowledgement)."""
    existing = session.get(AlertRecord, alert.alert_id)
    record = existing or AlertRecord(
        alert_id=alert.alert_id, gateway_id=gateway_id, received_at=now, state="open"
    )
    record.sensor_id, record.dma_id = alert.sensor_id, alert.dma_id
    record.kind, record.fault = alert.kind.value, alert.fault.value if alert.fault else None
    record.started_at, record.detected_at = alert.started_at, alert.detected_at
    record.updated_at, record.ended_at = alert.updated_at, alert.ended_at
    record.flow_m3h, record.lost_volume_m3 = alert.flow_m3h, alert.lost_volume_m3
    record.confidence = alert.confidence
    record.explanation_en, record.explanation_fr = alert.explanation_en, alert.explanation_fr
    session.add(record)
    alert_received(session, record, now, created=existing is None)


def relax_commit(session: Session) -> None:
    """Let the session's transaction commit without waiting for the disk.

    PostgreSQL: ``synchronous_commit = off`` for this transaction only. SQLite (WAL):
    ``synchronous = NORMAL`` on the connection until it goes back to the pool; it can
    only change outside a transaction, so a session that already wrote keeps FULL.
    Either way the database stays consistent; a crash of the machine (not of the
    process) may lose the last such commits.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    elif dialect == "sqlite" and not getattr(
        connection.connection.dbapi_connection, "in_transaction", True
    ):
        connection.info[RELAXED_COMMIT] = True
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
