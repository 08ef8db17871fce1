"""Ingest of gateway batches: readings to the reading store, alerts to the database.

Both writes are idempotent (readings keyed by sensor and time, alerts by
``alert_id``), so a gateway that re-sends a batch it got no answer for stores
nothing twice. The batch is confirmed only after both writes succeeded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError
from leaksense.core.messages import Alert, IngestBatch, IngestResult
from leaksense.server.db import AlertRecord, ApiToken, Gateway, Sensor
from leaksense.server.stores.base import ReadingStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ingest_batch(
    session: Session, store: ReadingStore, token: ApiToken, batch: IngestBatch
) -> IngestResult:
    """Store a batch sent by the gateway that ``token`` belongs to."""
    if token.gateway_id != batch.gateway_id:
        raise AuthenticationError(
            f"this token belongs to gateway {token.gateway_id!r}, not {batch.gateway_id!r}"
        )
    gateway = session.get(Gateway, batch.gateway_id)
    if gateway is None:  # pragma: no cover - tokens reference gateways by foreign key
        raise AuthenticationError(f"gateway {batch.gateway_id!r} is not registered")
    stored = store.write(batch.readings) if batch.readings else 0
    now = datetime.now(UTC)
    for alert in batch.alerts:
        _upsert_alert(session, batch.gateway_id, alert, now)
    _touch_sensors(session, gateway, batch)
    gateway.last_seen_at = now
    gateway.last_batch_seq = batch.batch_seq
    session.commit()
    return IngestResult(
        gateway_id=batch.gateway_id,
        batch_seq=batch.batch_seq,
        readings_stored=stored,
        alerts_stored=len(batch.alerts),
    )


def _upsert_alert(session: Session, gateway_id: str, alert: Alert, now: datetime) -> None:
    record = session.get(AlertRecord, alert.alert_id) or AlertRecord(
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


def _touch_sensors(session: Session, gateway: Gateway, batch: IngestBatch) -> None:
    """Record when each sensor was last heard of; unknown sensors are registered."""
    latest: dict[str, datetime] = {}
    for reading in batch.readings:
        if reading.time > latest.get(reading.sensor_id, _EPOCH):
            latest[reading.sensor_id] = reading.time
    if not latest:
        return
    known = {
        s.sensor_id: s
        for s in session.scalars(select(Sensor).where(Sensor.sensor_id.in_(latest))).all()
    }
    for sensor_id, seen in latest.items():
        sensor = known.get(sensor_id) or Sensor(
            sensor_id=sensor_id, site_id=gateway.site_id, role="unknown"
        )
        if sensor.last_seen_at is None or seen > sensor.last_seen_at:
            sensor.last_seen_at = seen
        session.add(sensor)
