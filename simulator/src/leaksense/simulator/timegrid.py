"""The simulation's time grid, in UTC, with the local-time facts demand depends on.

Everything is computed on one regular UTC grid (so output stays regular across DST
changes); people live in local time, so each step also carries its local hour,
weekday, date, month and whether it is a public or school holiday.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_DAY = 86_400
_OFFSET_STEP_S = 900  # every tz transition in tzdata falls on a quarter hour
_EPOCH_DAY = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class TimeGrid:
    """Steps ``[start_s + k·step_s, start_s + (k+1)·step_s)`` for ``k < n``."""

    start_s: int
    step_s: int
    n: int
    local_hour: FloatArray
    """Local clock hour at the middle of each step, in [0, 24)."""
    local_day: IntArray
    """Local date of each step, as days since 1970-01-01."""
    weekday: IntArray
    """Local weekday, Monday = 0."""
    month: IntArray
    day_of_year: IntArray
    public_holiday: BoolArray
    school_holiday: BoolArray

    @property
    def step_h(self) -> float:
        return self.step_s / 3600

    @property
    def end_s(self) -> int:
        return self.start_s + self.n * self.step_s

    def times_s(self) -> IntArray:
        """Start of each step, Unix seconds."""
        return self.start_s + np.arange(self.n, dtype=np.int64) * self.step_s

    def index(self, time_s: float) -> int:
        """Grid boundary nearest to ``time_s``, clipped to ``[0, n]``."""
        return int(min(self.n, max(0, round((time_s - self.start_s) / self.step_s))))

    def active_fraction(self, begin_s: float, end_s: float) -> FloatArray:
        """Share of each step inside ``[begin_s, end_s)``: exact volumes for events."""
        lo = self.times_s().astype(np.float64)
        overlap = np.minimum(lo + self.step_s, end_s) - np.maximum(lo, begin_s)
        return np.clip(overlap / self.step_s, 0.0, 1.0)


def unix_s(time: datetime) -> int:
    """Whole Unix seconds of an aware datetime."""
    return round(time.timestamp())


def from_unix_s(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _utc_offsets_s(start_s: int, duration_s: int, zone: ZoneInfo) -> IntArray:
    """UTC offset at each quarter hour of the window (and one beyond)."""
    points = range(start_s, start_s + duration_s + _OFFSET_STEP_S, _OFFSET_STEP_S)
    offsets = [datetime.fromtimestamp(t, zone).utcoffset() or timedelta(0) for t in points]
    return np.array([int(o.total_seconds()) for o in offsets], dtype=np.int64)


def make_grid(
    start: datetime,
    days: int,
    step_s: int,
    zone: ZoneInfo,
    *,
    holidays: Iterable[date] = (),
    school_holidays: Iterable[tuple[date, date]] = (),
) -> TimeGrid:
    """The grid of ``days`` from ``start`` (aware), with local facts for ``zone``."""
    start_s, n = unix_s(start), days * SECONDS_PER_DAY // step_s
    mid_s = start_s + np.arange(n, dtype=np.int64) * step_s + step_s // 2
    offsets = _utc_offsets_s(start_s, n * step_s, zone)
    local_s = mid_s + offsets[(mid_s - start_s) // _OFFSET_STEP_S]
    local_day = local_s // SECONDS_PER_DAY
    dates = local_day.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]")
    month = (dates.astype("datetime64[M]") - years.astype("datetime64[M]")).astype(np.int64) + 1
    holiday_days = [d.toordinal() - _EPOCH_DAY for d in holidays]
    school = np.zeros(n, dtype=np.bool_)
    for first, last in school_holidays:
        school |= (local_day >= first.toordinal() - _EPOCH_DAY) & (
            local_day <= last.toordinal() - _EPOCH_DAY
        )
    return TimeGrid(
        start_s=start_s,
        step_s=step_s,
        n=n,
        local_hour=(local_s % SECONDS_PER_DAY) / 3600,
        local_day=local_day,
        weekday=(local_day + 3) % 7,  # 1970-01-01 was a Thursday
        month=month,
        day_of_year=(dates - years).astype(np.int64) + 1,
        public_holiday=np.isin(local_day, holiday_days),
        school_holiday=school,
    )


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(years: Iterable[int]) -> set[date]:
    """The eleven jours fériés of metropolitan France (Alsace-Moselle's two excluded)."""
    out: set[date] = set()
    for year in years:
        sunday = easter(year)
        out |= {date(year, m, d) for m, d in ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15))}
        out |= {date(year, m, d) for m, d in ((11, 1), (11, 11), (12, 25))}
        out |= {sunday + timedelta(days=n) for n in (1, 39, 50)}  # Monday, Ascension, Pentecost
    return out
