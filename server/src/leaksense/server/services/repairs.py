"""Repairs and the before/after report: what fixing leaks earned a DMA.

Repairs come from two places: entered by hand (``POST /api/v1/repairs``, table
``repairs``), or taken from alerts a gateway raised and an operator resolved as
``repaired`` (``workflow/service.py``; an alert of a leak kind): the leak stopped at
the alert's ``ended_at`` (or, if the gateway never sent one, at the resolution), its
flow is the one measured in the field (``repaired_flow_m3h``) or else the alert's
estimate. False alarms, planned work and sensor faults are not repairs. The
comparison itself is pure (``domain/before_after.py``); this module gathers the days
and the repairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import LEAK_KINDS, Identifier, UtcDatetime
from leaksense.server.db import AlertRecord, DmaMeter, RepairRecord
from leaksense.server.domain.before_after import BeforeAfter, DayBalance, Repair, before_after
from leaksense.server.services.entities import get_dma
from leaksense.server.services.report_constants import ReportConstants
from leaksense.server.services.report_data import ReportPeriod, gather
from leaksense.server.services.report_model import Note
from leaksense.server.services.reports import daily_balance, metered_completeness_pct
from leaksense.server.stores.base import ReadingStore
from leaksense.server.workflow.models import AlertLink, AlertWorkflow


class RepairSpec(BaseModel):
    """A repair entered by hand."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    repair_id: Identifier
    dma_id: Identifier
    found_at: UtcDatetime
    repaired_at: UtcDatetime
    estimated_flow_m3h: Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]
    description: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _check(self) -> RepairSpec:
        if self.repaired_at < self.found_at:
            raise ValueError("repaired_at must not be before found_at")
        return self


@dataclass(frozen=True, slots=True)
class RepairView:
    repair_id: str
    dma_id: str
    found_at: datetime
    repaired_at: datetime
    estimated_flow_m3h: float
    description: str
    source: Literal["manual", "alert"]


@dataclass(frozen=True, slots=True)
class RepairsReport:
    """Before/after report of one DMA over a period."""

    dma_id: str
    name: str
    period_start: datetime
    period_end: datetime
    days: int
    repairs: list[RepairView]
    comparison: BeforeAfter
    daily: list[DayBalance]
    metered_completeness_pct: float
    billing_coverage_pct: float
    notes: list[Note] = field(default_factory=list)


def add_repair(session: Session, spec: RepairSpec) -> RepairView:
    """Store (or replace, by ``repair_id``) a repair entered by hand."""
    get_dma(session, spec.dma_id)
    record = session.get(RepairRecord, spec.repair_id) or RepairRecord(
        repair_id=spec.repair_id, created_at=datetime.now(UTC)
    )
    record.dma_id, record.found_at, record.repaired_at = (
        spec.dma_id,
        spec.found_at,
        spec.repaired_at,
    )
    record.estimated_flow_m3h, record.description = spec.estimated_flow_m3h, spec.description
    session.add(record)
    session.commit()
    return _manual(record)


def _manual(r: RepairRecord) -> RepairView:
    return RepairView(
        r.repair_id,
        r.dma_id,
        r.found_at,
        r.repaired_at,
        r.estimated_flow_m3h,
        r.description,
        "manual",
    )


def repairs_in(session: Session, dma_id: str, start: datetime, end: datetime) -> list[RepairView]:
    """Repairs of a DMA made in ``[start, end)``: by hand, then from resolved alerts."""
    manual = session.scalars(
        select(RepairRecord).where(
            RepairRecord.dma_id == dma_id,
            RepairRecord.repaired_at >= start,
            RepairRecord.repaired_at < end,
        )
    ).all()
    meters = select(DmaMeter.sensor_id).where(DmaMeter.dma_id == dma_id)
    repaired_at = func.coalesce(AlertRecord.ended_at, AlertWorkflow.resolved_at)
    rows = session.execute(
        select(AlertRecord, AlertWorkflow, AlertLink.primary_id)
        .join(AlertWorkflow, AlertWorkflow.alert_id == AlertRecord.alert_id)
        .outerjoin(AlertLink, AlertLink.alert_id == AlertRecord.alert_id)
        .where(
            (AlertRecord.dma_id == dma_id) | AlertRecord.sensor_id.in_(meters),
            AlertRecord.state == "resolved",
            AlertWorkflow.resolution == "repaired",
            AlertRecord.kind.in_(LEAK_KINDS),
            repaired_at >= start,
            repaired_at < end,
        )
    ).all()
    # One leak seen by two series of this DMA (grouping.py) is one repair.
    ids = {a.alert_id for a, _, _ in rows}
    alerts = [(a, w) for a, w, primary in rows if primary is None or primary not in ids]
    views = [_manual(r) for r in manual] + [
        RepairView(
            a.alert_id, dma_id, a.detected_at, a.ended_at or w.resolved_at or a.detected_at,
            a.flow_m3h if w.repaired_flow_m3h is None else w.repaired_flow_m3h,
            a.explanation_en, "alert",
        )
        for a, w in alerts
    ]  # fmt: skip
    return sorted(views, key=lambda v: (v.repaired_at, v.repair_id))


def compute_repairs_report(
    session: Session,
    store: ReadingStore,
    dma_id: str,
    period: ReportPeriod,
    constants: ReportConstants,
) -> RepairsReport:
    """Daily yield before the first repair and after the last, the period's, the savings."""
    (inputs,) = gather(session, store, [dma_id], period)
    if not inputs.inlets:
        raise InvalidInput(f"DMA {dma_id!r} has no inlet meter: declare one in the network file")
    repairs = repairs_in(session, dma_id, period.start, period.end)
    days = daily_balance(inputs, period)
    comparison = before_after(
        days,
        [Repair(r.repair_id, r.repaired_at, r.estimated_flow_m3h) for r in repairs],
        water_price_eur_per_m3=constants.water_price_eur_per_m3,
    )
    notes = [] if comparison.before is not None else [Note("no_day_before")]
    if comparison.after is None:
        notes.append(Note("no_day_after"))
    return RepairsReport(
        dma_id=dma_id,
        name=inputs.dma.name,
        period_start=period.start,
        period_end=period.end,
        days=period.days,
        repairs=repairs,
        comparison=comparison,
        daily=days,
        metered_completeness_pct=metered_completeness_pct(inputs),
        billing_coverage_pct=inputs.billed.coverage_pct,
        notes=notes,
    )
