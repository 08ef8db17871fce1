"""Volumes from stored flows and billing periods, with how complete they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaksense.core.errors import InvalidInput
from leaksense.server.stores.base import HourlyFlow

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MeteredVolume:
    """Volume through one meter over a period.

    Hours without any reading are estimated at the mean of the measured hours and
    counted in ``hours_estimated`` so that reports can show how much is measured.
    """

    volume_m3: float
    hours_expected: int
    hours_measured: int

    @property
    def hours_estimated(self) -> int:
        return self.hours_expected - self.hours_measured

    @property
    def completeness_pct(self) -> float:
        return 100.0 * self.hours_measured / self.hours_expected


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """Volume billed over ``[start, end)``."""

    start: datetime
    end: datetime
    volume_m3: float


@dataclass(frozen=True, slots=True)
class BilledVolume:
    """Billed volume attributed to a period, prorated by overlap where periods differ."""

    volume_m3: float
    prorated_m3: float
    """Part of ``volume_m3`` that comes from billing periods only partly inside."""
    coverage_pct: float
    """Share of the period covered by some billing period."""


def check_hour_aligned(start: datetime, end: datetime) -> int:
    """Number of whole UTC hours in ``[start, end)``; refuses misaligned bounds."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must be timezone-aware (UTC)")
        if value.minute or value.second or value.microsecond:
            raise InvalidInput(f"{name} {value.isoformat()} must be a whole UTC hour")
    if end <= start:
        raise InvalidInput(f"empty period: end {end.isoformat()} <= start {start.isoformat()}")
    return int((end - start) / HOUR)


def integrate_hourly(hourly: Sequence[HourlyFlow], start: datetime, end: datetime) -> MeteredVolume:
    """Volume (m³) = Σ hourly mean flow (m³/h) × 1 h, missing hours estimated."""
    hours = check_hour_aligned(start, end)
    measured = [h for h in hourly if start <= h.hour_start < end]
    if not measured:
        return MeteredVolume(volume_m3=0.0, hours_expected=hours, hours_measured=0)
    measured_m3 = sum(h.mean_flow_m3h for h in measured)
    estimated_m3 = (hours - len(measured)) * measured_m3 / len(measured)
    return MeteredVolume(measured_m3 + estimated_m3, hours, len(measured))


def prorate_billing(
    periods: Sequence[BillingPeriod], start: datetime, end: datetime
) -> BilledVolume:
    """Billed volume in ``[start, end)``: each period counts by its overlapping share."""
    total_m3 = prorated_m3 = 0.0
    covered = timedelta(0)
    for period in periods:
        overlap = min(end, period.end) - max(start, period.start)
        if overlap <= timedelta(0):
            continue
        share = overlap / (period.end - period.start)
        total_m3 += period.volume_m3 * share
        if share < 1.0:
            prorated_m3 += period.volume_m3 * share
        covered += overlap
    coverage_pct = min(100.0, 100.0 * (covered / (end - start)))
    return BilledVolume(total_m3, prorated_m3, coverage_pct)


DAY = timedelta(days=1)


def spread_daily(periods: Sequence[BillingPeriod], start: datetime, days: int) -> list[float]:
    """Volume of each day ``[start + d, start + d + 1 day)``, every period spread evenly
    over its duration (billing periods do not follow days, weeks or months)."""
    out = [0.0] * days
    end = start + days * DAY
    for period in periods:
        lo, hi = max(start, period.start), min(end, period.end)
        if hi <= lo:
            continue
        rate_per_s = period.volume_m3 / (period.end - period.start).total_seconds()
        first = int((lo - start) / DAY)
        for d in range(first, days):
            day_lo = start + d * DAY
            overlap = min(hi, day_lo + DAY) - max(lo, day_lo)
            if overlap <= timedelta(0):
                break
            out[d] += rate_per_s * overlap.total_seconds()
    return out
