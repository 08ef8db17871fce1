"""``leaksense models train`` as a function: read history, train, sign, store.

Each series is stored as soon as it is signed (one transaction each), so a long
run that fails halfway keeps what it finished, and gateways polling meanwhile get
the new artifacts in storage order. A series that cannot be trained is reported
and skipped; it never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput
from leaksense.edge.detection.clock import LocalClock
from leaksense.models.defaults import MIN_DAYS
from leaksense.models.history import History, SeriesKind, dma_history, sensor_history
from leaksense.models.signing import sign, signed_json
from leaksense.models.train import TRAINER, train_artifact
from leaksense.server.db import Dma, Sensor
from leaksense.server.runtime import Runtime
from leaksense.server.services import models as stored_models
from leaksense.server.services.entities import dma_meters

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    kind: SeriesKind
    series_id: str
    inlets: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """One line of the training report."""

    series_id: str
    kind: SeriesKind
    days_used: float
    trainer: str | None = None
    artifact_bytes: int | None = None
    skipped: str | None = None
    """Why the series got no new artifact (None when it did)."""


def targets(session: Session, wanted: Sequence[str] = ()) -> tuple[list[Target], list[str]]:
    """Every sensor and DMA (or only ``wanted``), and the wanted ids that exist as neither."""
    found = [Target("sensor", s) for s in session.scalars(select(Sensor.sensor_id)).all()]
    for dma_id in session.scalars(select(Dma.dma_id)).all():
        inlets, outlets = dma_meters(session, dma_id)
        found.append(Target("dma", dma_id, tuple(inlets), tuple(outlets)))
    if not wanted:
        return sorted(found, key=lambda t: (t.kind, t.series_id)), []
    chosen = [t for t in found if t.series_id in set(wanted)]
    unknown = sorted(set(wanted) - {t.series_id for t in chosen})
    return sorted(chosen, key=lambda t: (t.kind, t.series_id)), unknown


def train_all(
    runtime: Runtime,
    private_key: Ed25519PrivateKey,
    *,
    days: float = 60.0,
    series: Sequence[str] = (),
    clock: LocalClock | None = None,
    min_days: float = MIN_DAYS,
    now: datetime | None = None,
) -> list[TrainOutcome]:
    """Train, sign and store an artifact for each series with enough history."""
    end = now or datetime.now(UTC)
    start = end - timedelta(days=days)
    clock = clock or LocalClock()
    with runtime.sessions() as session:
        chosen, unknown = targets(session, series)
    outcomes = [TrainOutcome(s, "sensor", 0.0, skipped="no such sensor or DMA") for s in unknown]
    for target in chosen:
        if target.kind == "dma" and not target.inlets:
            outcomes.append(TrainOutcome(target.series_id, "dma", 0.0, skipped="no inlet meter"))
            continue
        history = _history(runtime, target, start, end)
        outcomes.append(_train_one(runtime, private_key, history, clock, min_days))
    return outcomes


def _history(runtime: Runtime, target: Target, start: datetime, end: datetime) -> History:
    if target.kind == "dma":
        return dma_history(
            runtime.store, target.series_id, target.inlets, target.outlets, start, end
        )
    return sensor_history(runtime.store, target.series_id, start, end)


def _train_one(
    runtime: Runtime,
    private_key: Ed25519PrivateKey,
    history: History,
    clock: LocalClock,
    min_days: float,
) -> TrainOutcome:
    days = history.days
    if days < min_days:
        reason = f"only {days:.1f} days of history (need {min_days:g})"
        return TrainOutcome(history.series_id, history.kind, days, skipped=reason)
    try:
        artifact = train_artifact(
            history.series_id, history.epoch_s, history.flow_m3h, clock, kind=history.kind
        )
        signed = sign(artifact, private_key)
    except InvalidInput as exc:
        log.warning("cannot train %s: %s", history.series_id, exc)
        return TrainOutcome(history.series_id, history.kind, days, skipped=str(exc))
    text = signed_json(signed).decode("utf-8")
    with runtime.sessions() as session:
        stored_models.store_artifact(
            session,
            series_id=artifact.series_id,
            kind=history.kind,
            created_at=artifact.created_at,
            key_id=signed.key_id or "",
            sha256=signed.sha256,
            json_text=text,
        )
    return TrainOutcome(history.series_id, history.kind, days, TRAINER, len(text.encode()))
