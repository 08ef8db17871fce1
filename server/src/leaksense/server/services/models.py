"""Signed detection model artifacts: kept as the trainer signed them, served by site.

The trainer (``leaksense models train``, in leaksense-models) fits and signs; this
service only stores the JSON text and hands it back, so the server needs neither
the private key nor the edge package to serve models. Gateways verify the
signature themselves: a server that serves a tampered row serves a refused row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError, InvalidInput
from leaksense.server.db import Dma, Gateway, ModelArtifactRecord, Sensor

SeriesKind = Literal["sensor", "dma"]
MAX_ARTIFACT_BYTES = 16_384
"""The gateway's bound (leaksense.edge.detection.artifact.MAX_ARTIFACT_BYTES), checked
again here so an oversized artifact is refused when stored, not on every gateway."""
KEEP_PER_SERIES = 5
"""Older artifacts kept per series, to roll back a bad training by re-storing one."""


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    series_id: str
    kind: SeriesKind
    created_at: datetime
    stored_at: datetime
    key_id: str
    sha256: str
    json: str


@dataclass(frozen=True, slots=True)
class GatewayModels:
    """What a gateway gets: the latest artifact of each of its series, and a cursor."""

    artifacts: list[StoredArtifact]
    as_of: datetime | None
    """Newest ``stored_at`` returned (or the request's ``since``): the next ``since``."""


def store_artifact(
    session: Session,
    *,
    series_id: str,
    kind: SeriesKind,
    created_at: datetime,
    key_id: str,
    sha256: str,
    json_text: str,
    now: datetime | None = None,
) -> StoredArtifact:
    """Append a signed artifact; it becomes the one served for its series."""
    size = len(json_text.encode("utf-8"))
    if size > MAX_ARTIFACT_BYTES:
        raise InvalidInput(f"artifact {series_id}: {size} bytes exceeds {MAX_ARTIFACT_BYTES}")
    try:
        json.loads(json_text)
    except ValueError as exc:
        raise InvalidInput(f"artifact {series_id}: not JSON: {exc}") from exc
    record = ModelArtifactRecord(
        series_id=series_id,
        kind=kind,
        created_at=created_at,
        stored_at=now or datetime.now(UTC),
        key_id=key_id,
        sha256=sha256,
        json=json_text,
    )
    session.add(record)
    session.flush()
    _prune(session, kind, series_id)
    session.commit()
    return _stored(record)


def latest_artifacts(
    session: Session, series: Iterable[tuple[SeriesKind, str]], since: datetime | None = None
) -> list[StoredArtifact]:
    """The latest artifact of each ``(kind, series_id)``, if stored after ``since``."""
    wanted = set(series)
    if not wanted:
        return []
    ids = {series_id for _, series_id in wanted}
    newest = (
        select(func.max(ModelArtifactRecord.id))
        .where(ModelArtifactRecord.series_id.in_(ids))
        .group_by(ModelArtifactRecord.kind, ModelArtifactRecord.series_id)
    )
    query = select(ModelArtifactRecord).where(ModelArtifactRecord.id.in_(newest))
    if since is not None:
        query = query.where(ModelArtifactRecord.stored_at > since.astimezone(UTC))
    rows = session.scalars(query.order_by(ModelArtifactRecord.id)).all()
    return [_stored(r) for r in rows if (r.kind, r.series_id) in wanted]


def site_series(session: Session, site_id: str) -> list[tuple[SeriesKind, str]]:
    """Every series a site's gateway detects on: its sensors and its DMAs."""
    sensors = session.scalars(select(Sensor.sensor_id).where(Sensor.site_id == site_id)).all()
    dmas = session.scalars(select(Dma.dma_id).where(Dma.site_id == site_id)).all()
    return [("sensor", s) for s in sensors] + [("dma", d) for d in dmas]


def models_for_gateway(
    session: Session, gateway_id: str | None, since: datetime | None = None
) -> GatewayModels:
    """Latest artifacts of the series of the gateway's site (none if it has no site)."""
    gateway = session.get(Gateway, gateway_id) if gateway_id is not None else None
    if gateway is None:  # pragma: no cover - gateway tokens reference their gateway
        raise AuthenticationError("this token does not belong to a registered gateway")
    if gateway.site_id is None:
        return GatewayModels([], since)
    artifacts = latest_artifacts(session, site_series(session, gateway.site_id), since)
    as_of = max((a.stored_at for a in artifacts), default=since)
    return GatewayModels(artifacts, as_of)


def _prune(session: Session, kind: str, series_id: str) -> None:
    keep = (
        select(ModelArtifactRecord.id)
        .where(ModelArtifactRecord.kind == kind, ModelArtifactRecord.series_id == series_id)
        .order_by(ModelArtifactRecord.id.desc())
        .limit(KEEP_PER_SERIES)
    )
    kept = list(session.scalars(keep).all())
    session.execute(
        delete(ModelArtifactRecord).where(
            ModelArtifactRecord.kind == kind,
            ModelArtifactRecord.series_id == series_id,
            ModelArtifactRecord.id.not_in(kept),
        )
    )


def _stored(record: ModelArtifactRecord) -> StoredArtifact:
    kind: SeriesKind = "dma" if record.kind == "dma" else "sensor"
    return StoredArtifact(
        series_id=record.series_id,
        kind=kind,
        created_at=record.created_at,
        stored_at=record.stored_at,
        key_id=record.key_id,
        sha256=record.sha256,
        json=record.json,
    )
