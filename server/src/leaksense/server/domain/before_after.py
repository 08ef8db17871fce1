"""What leak repairs earned: yield before and after, volume and money saved.

Two figures answer "what is the yield now?" and they differ (reference §6):

- the **daily figures**: the mean day over whole days *before the first repair* and
  over whole days *after the last one*. Saint-Savin: 600 / 800 = 75 % before,
  600 / 650 = 92.3 % after.
- the **period figure**: the yield of the whole period, in which each repair counts
  only from the day it was made; it lies between the two, closer to "before" the later
  in the period the repairs come. An annual report quoting 90 % is such a figure (or a
  rounding): neither is wrong, they answer different questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leaksense.core.errors import InvalidInput

DAY = timedelta(days=1)
DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class DayBalance:
    """One day of a DMA, m³: water in (Vp + Vimp), out (Vexp), authorised use (VCA)."""

    day_start: datetime
    intake_m3: float
    exported_m3: float
    authorised_m3: float

    @property
    def losses_m3(self) -> float:
        return self.intake_m3 - self.exported_m3 - self.authorised_m3


@dataclass(frozen=True, slots=True)
class Repair:
    """A repaired leak: when, and its estimated flow (m³/h) before the repair."""

    repair_id: str
    repaired_at: datetime
    estimated_flow_m3h: float


@dataclass(frozen=True, slots=True)
class WindowFigure:
    """Mean daily balance over whole days ``[first_day, first_day + days)``."""

    first_day: datetime
    days: int
    intake_m3_per_day: float
    exported_m3_per_day: float
    authorised_m3_per_day: float
    losses_m3_per_day: float
    yield_pct: float


@dataclass(frozen=True, slots=True)
class BeforeAfter:
    """The before/after comparison (see the module docstring)."""

    before: WindowFigure | None
    """None when the period has no whole day before the first repair."""
    after: WindowFigure | None
    """None when the period has no whole day after the last repair."""
    period: WindowFigure
    saved_m3_per_day: float | None
    """Measured: losses per day before − after."""
    estimated_saved_m3_per_day: float
    """From the repairs' estimated flows × 24 h."""
    period_saved_m3: float | None
    """Measured saving within the period: Σ over days from the first repair's day of
    (losses per day before − that day's losses)."""
    water_price_eur_per_m3: float

    @property
    def saved_eur_per_day(self) -> float | None:
        return (
            None
            if self.saved_m3_per_day is None
            else self.saved_m3_per_day * self.water_price_eur_per_m3
        )

    @property
    def saved_eur_per_year(self) -> float | None:
        per_day = self.saved_eur_per_day
        return None if per_day is None else per_day * DAYS_PER_YEAR

    @property
    def period_saved_eur(self) -> float | None:
        return (
            None
            if self.period_saved_m3 is None
            else self.period_saved_m3 * self.water_price_eur_per_m3
        )


def window(days: Sequence[DayBalance]) -> WindowFigure | None:
    """Mean day of ``days`` (None when empty or when nothing went in)."""
    if not days:
        return None
    n = len(days)
    intake = sum(d.intake_m3 for d in days) / n
    exported = sum(d.exported_m3 for d in days) / n
    authorised = sum(d.authorised_m3 for d in days) / n
    if intake <= 0:
        return None
    return WindowFigure(
        first_day=days[0].day_start,
        days=n,
        intake_m3_per_day=intake,
        exported_m3_per_day=exported,
        authorised_m3_per_day=authorised,
        losses_m3_per_day=intake - exported - authorised,
        yield_pct=100.0 * (authorised + exported) / intake,
    )


def _day_of(moment: datetime, first_day: datetime) -> int:
    return int((moment - first_day) // DAY)


def before_after(
    days: Sequence[DayBalance], repairs: Sequence[Repair], *, water_price_eur_per_m3: float
) -> BeforeAfter:
    """Compare the days before the first repair with the days after the last one."""
    if not days:
        raise InvalidInput("a before/after report needs at least one day of data")
    if not repairs:
        raise InvalidInput("no repair in this DMA and period: enter repairs or resolve alerts")
    period = window(days)
    if period is None:
        raise InvalidInput("no water went into the DMA over the period: yield undefined")
    first_day = days[0].day_start
    first = _day_of(min(r.repaired_at for r in repairs), first_day)
    last = _day_of(max(r.repaired_at for r in repairs), first_day)
    before = window(days[: max(first, 0)])
    after = window(days[max(last + 1, 0) :])
    saved = (
        None
        if before is None or after is None
        else before.losses_m3_per_day - after.losses_m3_per_day
    )
    period_saved = (
        None
        if before is None
        else sum(before.losses_m3_per_day - d.losses_m3 for d in days[max(first, 0) :])
    )
    return BeforeAfter(
        before=before,
        after=after,
        period=period,
        saved_m3_per_day=saved,
        estimated_saved_m3_per_day=24.0 * sum(r.estimated_flow_m3h for r in repairs),
        period_saved_m3=period_saved,
        water_price_eur_per_m3=water_price_eur_per_m3,
    )
