"""What a report reads: report periods, per-meter daily volumes, billing and declared volumes.

Meter volumes come from the daily aggregate (``ReadingStore.daily_flow``: one query
for every meter of the report), never from raw readings. A day's missing hours are
estimated at the meter's mean hourly flow over the period's measured hours, and every
meter keeps its measured and estimated hours so that each figure can show its
completeness. Billed and declared volumes are spread over days by the share of their
period that each day covers (proration).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput
from leaksense.server.db import DeclaredVolume, Dma, DmaMeter
from leaksense.server.domain.periods import PeriodKind
from leaksense.server.domain.volumes import (
    BilledVolume,
    BillingPeriod,
    prorate_billing,
    spread_daily,
)
from leaksense.server.services.billing import billing_periods
from leaksense.server.services.entities import get_dma
from leaksense.server.stores.base import MAX_QUERY_SPAN, DailyFlow, ReadingStore

DAY = timedelta(days=1)
HOURS_PER_DAY = 24
FULL_NIGHT_HOURS = 20
"""A day's lowest hourly flow counts as its MNF only if at least this many hours were
measured: a day with its night missing would report a daytime minimum."""
DECLARED_KINDS = (
    "produced",
    "imported",
    "exported",
    "unmetered_authorised",
    "network_service",
    "billed_unmetered",
    "unauthorised",
)


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """Whole UTC days ``[start, end)``."""

    start: datetime
    end: datetime
    kind: PeriodKind

    @property
    def days(self) -> int:
        return (self.end - self.start) // DAY

    def day_starts(self) -> list[datetime]:
        return [self.start + d * DAY for d in range(self.days)]


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def report_period(
    start: datetime, end: datetime | None = None, kind: PeriodKind | None = None
) -> ReportPeriod:
    """A report period from its start and either its end (``custom``) or its kind."""
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise InvalidInput("report dates must be timezone-aware (UTC)")
    start = start.astimezone(UTC)
    if start.hour or start.minute or start.second or start.microsecond:
        raise InvalidInput(f"a report starts at midnight UTC (got {start.isoformat()})")
    lengths = {"day": DAY, "week": 7 * DAY}
    if kind in lengths:
        end = start + lengths[kind]
    elif kind in ("month", "year"):
        end = _add_months(start, 1 if kind == "month" else 12)
    elif end is None:
        raise InvalidInput("give the report's end, or a period kind: day, week, month, year")
    end = end.astimezone(UTC)
    if end <= start or (end - start) % DAY:
        raise InvalidInput(f"a report covers whole days: {start.isoformat()} → {end.isoformat()}")
    if end - start > MAX_QUERY_SPAN:
        raise InvalidInput(f"a report covers at most {MAX_QUERY_SPAN.days} days")
    return ReportPeriod(start, end, kind or "custom")


@dataclass(frozen=True, slots=True)
class MeterDays:
    """One meter over the period: daily volumes with missing hours estimated."""

    sensor_id: str
    daily_m3: list[float]
    hours_measured: list[int]
    daily_min_m3h: list[float | None]
    estimated_m3: float

    @property
    def volume_m3(self) -> float:
        return sum(self.daily_m3)

    @property
    def hours_expected(self) -> int:
        return HOURS_PER_DAY * len(self.daily_m3)

    @property
    def hours_total(self) -> int:
        return sum(self.hours_measured)

    @property
    def completeness_pct(self) -> float:
        return 100.0 * self.hours_total / self.hours_expected


def meter_days(sensor_id: str, rows: Sequence[DailyFlow], period: ReportPeriod) -> MeterDays:
    """Daily volumes of one meter; each missing hour at the period's mean hourly flow."""
    n = period.days
    measured, hours = [0.0] * n, [0] * n
    minimum: list[float | None] = [None] * n
    for row in rows:
        d = (row.day_start - period.start) // DAY
        if 0 <= d < n:
            measured[d], hours[d] = row.volume_m3, row.hours_measured
            if row.hours_measured >= FULL_NIGHT_HOURS:
                minimum[d] = row.min_hourly_flow_m3h
    total_hours = sum(hours)
    mean_m3h = sum(measured) / total_hours if total_hours else 0.0
    estimated = [(HOURS_PER_DAY - h) * mean_m3h for h in hours]
    return MeterDays(
        sensor_id=sensor_id,
        daily_m3=[m + e for m, e in zip(measured, estimated, strict=True)],
        hours_measured=hours,
        daily_min_m3h=minimum,
        estimated_m3=sum(estimated),
    )


@dataclass(frozen=True, slots=True)
class Declared:
    """A declared volume kind over the period: total and per day."""

    total_m3: float
    daily_m3: list[float]


@dataclass(frozen=True, slots=True)
class DmaInputs:
    """Everything a report computes a DMA from."""

    dma: Dma
    inlets: list[MeterDays]
    outlets: list[MeterDays]
    billed: BilledVolume
    billed_daily_m3: list[float]
    declared: dict[str, Declared]
    pressure_profile_m: list[float] | None


def _declared(session: Session, dma_id: str, period: ReportPeriod) -> dict[str, Declared]:
    records = session.scalars(
        select(DeclaredVolume).where(
            DeclaredVolume.dma_id == dma_id,
            DeclaredVolume.period_end > period.start,
            DeclaredVolume.period_start < period.end,
        )
    ).all()
    out = {}
    for kind in DECLARED_KINDS:
        periods = [
            BillingPeriod(r.period_start, r.period_end, r.volume_m3)
            for r in records
            if r.kind == kind
        ]
        daily = spread_daily(periods, period.start, period.days)
        out[kind] = Declared(sum(daily), daily)
    return out


def gather(
    session: Session, store: ReadingStore, dma_ids: Sequence[str], period: ReportPeriod
) -> list[DmaInputs]:
    """The inputs of every DMA in ``dma_ids`` (one store query for all their meters)."""
    dmas = [get_dma(session, d) for d in dma_ids]
    meters = session.scalars(select(DmaMeter).where(DmaMeter.dma_id.in_(dma_ids))).all()
    sensor_ids = sorted({m.sensor_id for m in meters})
    daily = store.daily_flow(sensor_ids, period.start, period.end) if sensor_ids else {}
    days = {s: meter_days(s, daily.get(s, []), period) for s in sensor_ids}
    out = []
    for dma in dmas:
        roles = [(m.sensor_id, m.role) for m in meters if m.dma_id == dma.dma_id]
        periods = billing_periods(session, dma.dma_id, period.start, period.end)
        profile = (
            None if dma.pressure_profile_json is None else json.loads(dma.pressure_profile_json)
        )
        out.append(
            DmaInputs(
                dma=dma,
                inlets=[days[s] for s, role in sorted(roles) if role == "inlet"],
                outlets=[days[s] for s, role in sorted(roles) if role == "outlet"],
                billed=prorate_billing(periods, period.start, period.end),
                billed_daily_m3=spread_daily(periods, period.start, period.days),
                declared=_declared(session, dma.dma_id, period),
                pressure_profile_m=profile,
            )
        )
    return out


def net_hourly_mnf(
    store: ReadingStore, inputs: DmaInputs, period: ReportPeriod
) -> list[float | None]:
    """Daily MNF of a DMA with several boundary meters: the lowest hour of Σ in − Σ out.

    Only hours that every boundary meter measured count (hourly aggregate reads, one
    per meter). A single inlet without outlets needs none of this: its daily minimum
    is in the daily aggregate.
    """
    if len(inputs.inlets) == 1 and not inputs.outlets:
        return list(inputs.inlets[0].daily_min_m3h)
    sign = [(m.sensor_id, 1.0) for m in inputs.inlets] + [
        (m.sensor_id, -1.0) for m in inputs.outlets
    ]
    net: dict[datetime, float] = {}
    seen: dict[datetime, int] = {}
    for sensor_id, factor in sign:
        for hour in store.hourly_flow(sensor_id, period.start, period.end):
            net[hour.hour_start] = net.get(hour.hour_start, 0.0) + factor * hour.mean_flow_m3h
            seen[hour.hour_start] = seen.get(hour.hour_start, 0) + 1
    daily: list[list[float]] = [[] for _ in range(period.days)]
    for hour_start, value in net.items():
        if seen[hour_start] == len(sign):
            daily[(hour_start - period.start) // DAY].append(value)
    return [min(v) if len(v) >= FULL_NIGHT_HOURS else None for v in daily]


def all_dmas(session: Session) -> list[str]:
    """Every DMA id (a network-wide report)."""
    return sorted(session.scalars(select(Dma.dma_id)).all())


def parse_report_time(text: str) -> datetime:
    """``2025-01-01`` (midnight UTC) or an ISO 8601 datetime with its offset."""
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"not a date or ISO 8601 datetime: {text!r}") from exc
    if value.tzinfo is None:
        raise InvalidInput(f"{text!r} has no UTC offset: add Z or +01:00, or give a date")
    return value
