"""The morning explains part of the night: the same day's demand level.

A night's flow is the background leakage plus the few people up at night, and how
many are up follows the day's demand (a hot day, a holiday week), which the same
day's morning shows. The fit regresses each training night's excess over its level
on the morning's relative excess (against its day type's usual morning); where that
cuts the night σ by ``morning_min_gain`` (both σs of nights held out of the fit), the
night watch waits for the morning and judges the night against
``level + slope × morning excess``.

A leak adds the same flow to the morning, whose flow is several times the night's;
it raises the expected night by ``slope × leak ÷ morning flow``, a small part of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.clock import DAY_TYPES, WEEKDAY
from leaksense.edge.detection.stats import core_sigma, distinct, median, robust_sigma

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DayMeans = dict[int, tuple[float, int]]
"""Local day ordinal -> (mean flow over a window of hours, day type)."""
MIN_PAIRS = 7
TRIM_SIGMAS = 4.0


@dataclass(frozen=True, slots=True)
class MorningFit:
    """What the night watch needs to take the morning into account."""

    morning_m3h: list[float]
    """Usual morning mean flow by day type."""
    slope_m3h: float
    sigma_m3h: float


def day_means(
    calendar_columns: tuple[IntArray, IntArray, IntArray],
    flow: FloatArray,
    hours: tuple[int, int],
    min_count: float,
) -> DayMeans:
    """Mean flow over local ``hours`` [start, end) of every day with ``min_count``
    readings in them."""
    day, day_type, hour = calendar_columns
    inside = (hour >= hours[0]) & (hour < hours[1])
    out: DayMeans = {}
    for d in distinct(day[inside]).tolist():
        selected = inside & (day == d)
        if selected.sum() >= min_count:
            out[int(d)] = (float(flow[selected].mean()), int(day_type[selected][0]))
    return out


def fit_morning(
    nights: DayMeans,
    mornings: DayMeans,
    night_fit: tuple[float, list[float], float],
    floor_m3h: float,
    params: DetectionParams,
) -> MorningFit | None:
    """The morning's part of the night flow, or None where it does not help.

    ``night_fit``: the night level, its day-type factors and σ, as fitted alone.
    """
    level, factors, sigma = night_fit
    usual = _usual(mornings)
    days = [d for d in nights if d in mornings]
    if len(days) < MIN_PAIRS or level <= 0:
        return None
    x = np.array([mornings[d][0] / usual[mornings[d][1]] - 1.0 for d in days])
    y = np.array([nights[d][0] / factors[nights[d][1]] - level for d in days])
    spread = robust_sigma(y)
    keep = np.abs(y - median(y)) <= TRIM_SIGMAS * max(spread, 1e-9)  # a leaky night
    if keep.sum() < MIN_PAIRS or float(np.ptp(x[keep])) <= 0.0:
        return None
    xk, yk = x[keep], y[keep]
    slope, intercept = (float(c) for c in np.polyfit(xk, yk, 1))
    # Both σs are of held-out nights: fitted on the same dozen nights, a slope always
    # explains some of their spread, and the next nights would not keep that promise.
    leverage = 1.0 / xk.size + (xk - xk.mean()) ** 2 / float(((xk - xk.mean()) ** 2).sum())
    adjusted = core_sigma((yk - intercept - slope * xk) / (1.0 - leverage))
    plain = core_sigma((yk - yk.mean()) * xk.size / (xk.size - 1))
    # The gain is judged on the nights' own spread, not on the floors under it.
    if slope <= 0.0 or adjusted > (1.0 - params.morning_min_gain) * plain:
        return None
    floor = max(params.morning_sigma_floor_fraction * level, floor_m3h)
    return MorningFit(usual, slope, min(max(adjusted, floor), sigma))


def _usual(mornings: DayMeans) -> list[float]:
    """Median morning by day type; a day type with under two mornings borrows the
    weekday's (or every morning's)."""
    every = [m for m, _ in mornings.values()] or [1.0]
    of_type = [[m for m, k in mornings.values() if k == t] for t in range(DAY_TYPES)]
    fallback = median(of_type[WEEKDAY]) if len(of_type[WEEKDAY]) >= 2 else median(every)
    usual = [median(m) if len(m) >= 2 else fallback for m in of_type]
    return [u if u > 0 else 1.0 for u in usual]
