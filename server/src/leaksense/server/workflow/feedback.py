"""False-alarm feedback: a series whose alerts keep being false alarms gets less sensitive.

Each ``false_alarm`` resolution of an alert about a sensor (or a DMA) raises that
series' threshold multiplier (the rule: ``domain/sensitivity.py``). It is recomputed at each
resolution or reopening of the series' alerts and when read after a day (so old false
alarms leave the window), stored in ``series_sensitivity`` and served to gateways by
``GET /api/v1/sensitivity`` (see ``docs/alerts.md``).

The same answer lists the **dismissed** alerts (:func:`list_dismissed`): leak alerts
judged ``false_alarm`` or ``sensor_fault`` that their gateway still reports as going
on. The gateway closes each one and takes its flow as normal (an accepted excess that
its detectors expect), so a later leak on the same series is a new alert instead of
a rise of the dismissed one's flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from leaksense.core.messages import NOT_A_LEAK, AlertKind
from leaksense.server.db import AlertRecord, upsert_statement
from leaksense.server.domain.sensitivity import WINDOW_DAYS, multiplier
from leaksense.server.workflow.models import AlertVerdictFlow, AlertWorkflow, SeriesSensitivity

STALE_AFTER: Final = timedelta(days=1)
DISMISSIBLE_KINDS: Final = (AlertKind.BURST.value, AlertKind.BACKGROUND_LEAK.value)
"""The kinds a gateway can take back (its burst and night-flow events)."""


@dataclass(frozen=True, slots=True)
class Sensitivity:
    series_id: str
    false_alarms: int
    threshold_multiplier: float
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Dismissal:
    """A leak alert judged not a leak that its gateway still reports as going on."""

    alert_id: str
    series_id: str
    flow_m3h: float
    """The alert's flow when it was judged."""
    resolution: str
    judged_at: datetime


def count_false_alarms(session: Session, series_id: str, now: datetime) -> int:
    """``false_alarm`` resolutions of the series' alerts in the last :data:`WINDOW_DAYS`."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(AlertRecord)
            .join(AlertWorkflow, AlertWorkflow.alert_id == AlertRecord.alert_id)
            .where(
                or_(AlertRecord.sensor_id == series_id, AlertRecord.dma_id == series_id),
                AlertRecord.state == "resolved",
                AlertWorkflow.resolution == "false_alarm",
                AlertWorkflow.resolved_at >= now - timedelta(days=WINDOW_DAYS),
            )
        )
        or 0
    )


def refresh_sensitivity(session: Session, series_id: str, now: datetime) -> Sensitivity:
    """Recount the series' false alarms and store its multiplier (the caller commits)."""
    count = count_false_alarms(session, series_id, now)
    values = {"false_alarms": count, "threshold_multiplier": multiplier(count), "updated_at": now}
    insert = upsert_statement(session, SeriesSensitivity)
    session.execute(
        insert.values(series_id=series_id, **values).on_conflict_do_update(
            index_elements=[SeriesSensitivity.series_id], set_=values
        )
    )
    return Sensitivity(series_id, count, multiplier(count), now)


def list_sensitivity(session: Session, now: datetime) -> list[Sensitivity]:
    """Every series with a stored multiplier; rows older than a day are recounted first."""
    stale = session.scalars(
        select(SeriesSensitivity.series_id).where(
            SeriesSensitivity.false_alarms > 0, SeriesSensitivity.updated_at < now - STALE_AFTER
        )
    ).all()
    if stale:
        for series_id in stale:
            refresh_sensitivity(session, series_id, now)
        session.commit()
    rows = session.scalars(select(SeriesSensitivity).order_by(SeriesSensitivity.series_id)).all()
    return [
        Sensitivity(r.series_id, r.false_alarms, r.threshold_multiplier, r.updated_at) for r in rows
    ]


def list_dismissed(session: Session, gateway_id: str | None) -> list[Dismissal]:
    """The dismissed alerts that ``gateway_id`` (None: every gateway) has not ended."""
    query = (
        select(AlertRecord, AlertWorkflow.resolution, AlertVerdictFlow)
        .join(AlertWorkflow, AlertWorkflow.alert_id == AlertRecord.alert_id)
        .join(AlertVerdictFlow, AlertVerdictFlow.alert_id == AlertRecord.alert_id)
        .where(
            AlertRecord.state == "resolved",
            AlertRecord.ended_at.is_(None),
            AlertRecord.kind.in_(DISMISSIBLE_KINDS),
            AlertWorkflow.resolution.in_(NOT_A_LEAK),
        )
        .order_by(AlertRecord.alert_id)
    )
    if gateway_id is not None:
        query = query.where(AlertRecord.gateway_id == gateway_id)
    return [
        Dismissal(
            alert_id=record.alert_id,
            series_id=record.dma_id or record.sensor_id or "",
            flow_m3h=verdict.flow_m3h,
            resolution=resolution or "",
            judged_at=verdict.judged_at,
        )
        for record, resolution, verdict in session.execute(query).all()
    ]
