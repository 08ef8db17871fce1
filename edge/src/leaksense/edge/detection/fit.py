"""Fit a model artifact from a flow history with numpy alone.

Used by a gateway warming up on its own data and by ``leaksense detect``. The
server's trainer (leaksense.models) fits the same artifact with scikit-learn.

- profile: median flow per (day type, quarter-hour), smoothed over ±30 min; day types
  with too little history borrow the weekday shape;
- noise: robust σ (1.4826·MAD) of the residuals per local hour;
- night: mean flow of each night window; baseline = median, σ = robust spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

from leaksense.core.errors import InvalidInput
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact, round_floats
from leaksense.edge.detection.balance import SPAN_S
from leaksense.edge.detection.clock import DAY_TYPES, SLOT_S, SLOTS_PER_DAY, WEEKDAY, LocalClock
from leaksense.edge.detection.level import RecentLevel
from leaksense.edge.detection.morning import MorningFit, day_means, fit_morning
from leaksense.edge.detection.stats import (
    core_sigma,
    distinct,
    median,
    nanmedian,
    percentile,
    spread_sigma,
)
from leaksense.edge.detection.step import step_differences

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MIN_DAYS = 3
INTERMITTENT_FRACTION = 0.2
MIN_HOUR_READINGS = 36
"""An hour of the history with fewer readings than this (3 days at 5 min) borrows σ."""
"""A series at rest this share of the time is intermittent (a customer's meter)."""
_UNIX_DAY_ORDINAL = date(1970, 1, 1).toordinal()


def calendar(
    clock: LocalClock, epoch_s: FloatArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Day ordinal, day type, slot and local hour of every instant (vectorised: the
    UTC offset is looked up once per UTC hour, the day type once per local day)."""
    utc_hour = (epoch_s // 3600).astype(np.int64)
    hours, inverse = np.unique(utc_hour, return_inverse=True)
    offsets = np.array([_offset_s(clock, int(h) * 3600) for h in hours], dtype=np.int64)
    local_s = epoch_s.astype(np.int64) + offsets[inverse]
    day = local_s // 86_400 + _UNIX_DAY_ORDINAL
    second = local_s % 86_400
    days, day_inverse = np.unique(day, return_inverse=True)
    types = np.array([clock.day_type(date.fromordinal(int(d))) for d in days], dtype=np.int64)
    return day, types[day_inverse], second // SLOT_S, second // 3600


def _offset_s(clock: LocalClock, epoch_s: int) -> int:
    offset = datetime.fromtimestamp(epoch_s, UTC).astimezone(clock.zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _quantum(flow: FloatArray) -> float:
    """Smallest step between distinct readings: a pulse meter's resolution in m³/h.

    Noise below one step cannot be seen, so σ is never taken smaller than it.
    """
    steps = np.diff(distinct(np.round(flow, 9)))
    steps = steps[steps > 1e-9]
    return percentile(steps, 5) if steps.size else 0.0


def _lowest(flow: FloatArray, kind: str, interval_s: float) -> float:
    """The 0.5th percentile of what the impossible-value check sees: each reading of
    a meter, the hourly mean of a DMA's net inflow (balance.py)."""
    if kind != "dma":
        return percentile(flow, 0.5)
    n = max(round(SPAN_S / interval_s), 1)
    hourly = np.convolve(flow, np.full(n, 1.0 / n), mode="valid")
    return percentile(hourly, 0.5) if hourly.size else 0.0


def _hourly_sigma(residual: FloatArray, hour: IntArray, floor: float) -> list[float]:
    """σ per local hour. An hour with too few readings in the history (a refit whose
    history stopped while an alert was open at that hour every day) takes the median
    of the others, not the floor: a floor σ there would turn normal flow into bursts."""
    counts = np.bincount(hour, minlength=24)
    sigma = [spread_sigma(residual[hour == h]) for h in range(24)]
    known = [s for s, n in zip(sigma, counts, strict=True) if n >= MIN_HOUR_READINGS]
    fallback = median(known) if known else floor
    return [
        max(s if n >= MIN_HOUR_READINGS else fallback, floor)
        for s, n in zip(sigma, counts, strict=True)
    ]


def _step_sigma(
    epoch_s: FloatArray,
    residual: FloatArray,
    hour: IntArray,
    *,
    interval_s: float,
    mean_flow: float,
    quantum: float,
    params: DetectionParams,
) -> list[float] | None:
    """σ of the step test's statistic per local hour (step.py), or None if too few
    regular readings."""
    n, before = params.burst_step_n, params.burst_step_before_n
    d, index = step_differences(epoch_s, residual, interval_s, n, before)
    if d.size < MIN_HOUR_READINGS * 24:
        return None
    # A pulse meter's rounding telescopes in a mean of consecutive readings: the
    # statistic is within about half a step, however steady the flow.
    floor = max(0.01 * mean_flow * math.sqrt(1 / n + 1 / before), 0.5 * quantum, 1e-4)
    return _hourly_sigma(d, hour[index], floor)


def _cell_medians(cell: IntArray, flow: FloatArray, cells: int) -> FloatArray:
    """Median flow of each cell (NaN where empty), by one sort instead of a mask per cell."""
    order = np.lexsort((flow, cell))
    sorted_cell, sorted_flow = cell[order], flow[order]
    starts = np.searchsorted(sorted_cell, np.arange(cells), side="left")
    ends = np.searchsorted(sorted_cell, np.arange(cells), side="right")
    out = np.full(cells, np.nan)
    filled = ends > starts
    lo = (starts + ends - 1) // 2
    hi = (starts + ends) // 2
    out[filled] = (sorted_flow[lo[filled]] + sorted_flow[hi[filled]]) / 2
    return out


def _profile(day: IntArray, day_type: IntArray, slot: IntArray, flow: FloatArray) -> FloatArray:
    cells = DAY_TYPES * SLOTS_PER_DAY
    profile = _cell_medians(day_type * SLOTS_PER_DAY + slot, flow, cells).reshape(
        DAY_TYPES, SLOTS_PER_DAY
    )
    weekday = profile[WEEKDAY]
    if np.isnan(weekday).all():
        raise InvalidInput("no weekday history to learn a demand profile from")
    weekday = np.where(np.isnan(weekday), nanmedian(weekday), weekday)
    for k in range(DAY_TYPES):
        row = profile[k]
        days_k = distinct(day[day_type == k]).size
        if days_k < 2 or np.isnan(row).mean() > 0.2:
            known = days_k and not np.isnan(row).all() and median(weekday) > 0
            level = nanmedian(row) / median(weekday) if known else 1.0
            row = weekday * level
        profile[k] = np.where(np.isnan(row), weekday, row)
    kernel = np.ones(5) / 5  # ±30 min circular smoothing
    padded = np.concatenate([profile[:, -2:], profile, profile[:, :2]], axis=1)
    return np.stack([np.convolve(r, kernel, mode="valid") for r in padded])


def _coverage(hours: tuple[int, int], params: DetectionParams, per_day: int) -> float:
    """Readings a window of local hours needs to be judged (``night_min_coverage``)."""
    return params.night_min_coverage * per_day * max(hours[1] - hours[0], 0) / 24


def _night_factors(
    relative: FloatArray, types: IntArray, fitted: list[bool] | None = None
) -> list[float]:
    """Night level of each day type relative to its mode (Sunday mornings differ).

    A day type needs two nights for a factor; ``fitted`` (a night held out) says
    which types had them, so one left is enough.
    """
    factors = []
    for k in range(DAY_TYPES):
        of_type = relative[types == k]
        enough = of_type.size >= 1 if fitted is not None and fitted[k] else of_type.size >= 2
        factor = median(of_type) if enough else 1.0
        factors.append(factor if factor > 0.05 else 1.0)  # a night at rest: no scaling
    return factors


@dataclass(frozen=True, slots=True)
class NightModes:
    """The night levels of a series: one, or two far apart (irrigation nights and
    quiet ones), with the day-type factors and the night σ within a level."""

    levels: list[float]
    factors: list[float]
    sigma: float

    @classmethod
    def of(
        cls,
        nights: FloatArray,
        types: IntArray,
        floor_fraction: float,
        floor_m3h: float,
        *,
        split: bool = True,
    ) -> NightModes:
        """Split the nights (if ``split``) at their widest gap when it is over
        ``MODE_GAP_SIGMAS`` σ (within a level) and the smaller level has
        ``MODE_MIN_SHARE`` of the nights."""
        one = cls._fit(nights, types, np.zeros(nights.size, dtype=np.int64), floor_fraction)
        if not split or nights.size < MODE_MIN_NIGHTS:
            return one._floored(floor_m3h)
        order = np.sort(nights)
        cut = int(np.argmax(np.diff(order)))
        label = (nights > order[cut]).astype(np.int64)
        minority = min(cut + 1, nights.size - cut - 1)
        if label.sum() * 2 > nights.size:  # the larger group is level 0 (the baseline)
            label = 1 - label
        two = cls._fit(nights, types, label, floor_fraction)
        gap = float(order[cut + 1] - order[cut])
        within = max(two.sigma, floor_m3h)
        if minority < MODE_MIN_SHARE * nights.size or gap < MODE_GAP_SIGMAS * within:
            return one._floored(floor_m3h)
        return two._floored(floor_m3h)

    @classmethod
    def _fit(
        cls, nights: FloatArray, types: IntArray, label: IntArray, floor_fraction: float
    ) -> NightModes:
        levels, factors = _levels_and_factors(nights, types, label, int(label.max()) + 1)
        in_sample = nights / np.asarray(factors)[types] - np.asarray(levels)[label]
        residual = _held_out(nights, types, label, in_sample)
        sigma = max(core_sigma(residual), floor_fraction * abs(levels[0]))
        return cls(levels, factors, sigma)

    def _floored(self, floor_m3h: float) -> NightModes:
        return NightModes(self.levels, self.factors, max(self.sigma, floor_m3h))


MODE_GAP_SIGMAS = 8.0
MODE_MIN_SHARE = 0.1
MODE_MIN_NIGHTS = 6


def _levels_and_factors(
    nights: FloatArray,
    types: IntArray,
    label: IntArray,
    modes: int,
    fitted: list[bool] | None = None,
) -> tuple[list[float], list[float]]:
    """Each mode's level (median; NaN if it has no night) and the day-type factors."""
    levels = [median(nights[label == m]) for m in range(modes)]
    level = np.asarray(levels)[label]
    usable = level > 0
    ratio = np.where(usable, nights / np.where(usable, level, 1.0), 1.0)
    return levels, _night_factors(ratio, types, fitted)


def _held_out(
    nights: FloatArray, types: IntArray, label: IntArray, in_sample: FloatArray
) -> FloatArray:
    """Each night's residual against the level and factors fitted without it.

    A fortnight has two Saturdays: a factor fitted on both halves their spread, and
    the σ of in-sample residuals promises nights tighter than the next ones will be.
    """
    out = in_sample.copy()
    modes = int(label.max()) + 1
    fitted = [int((types == k).sum()) >= 2 for k in range(DAY_TYPES)]
    for i in range(nights.size):
        keep = np.arange(nights.size) != i
        levels, factors = _levels_and_factors(nights[keep], types[keep], label[keep], modes, fitted)
        level = levels[int(label[i])]
        if not math.isnan(level):
            out[i] = nights[i] / factors[int(types[i])] - level
    return out


def _causal_level(
    epoch_s: FloatArray, flow: FloatArray, shape: FloatArray, params: DetectionParams
) -> FloatArray:
    """The recent-level factor the runtime detector would have had at each reading.

    Residual noise is learned against this level, not against the bare profile, so
    σ describes what the burst CUSUM really sees (day-to-day swings are absorbed).
    """
    tracker = RecentLevel(params.level_half_life_h)
    level = np.ones(flow.size)
    if flow.size:
        tracker.start(float(flow[0]), float(shape[0]))
    dts = np.diff(epoch_s, prepend=epoch_s[0]).tolist()
    for i, (y, p, dt_s) in enumerate(zip(flow.tolist(), shape.tolist(), dts, strict=True)):
        level[i] = tracker.level
        tracker.add(y, p, dt_s)
    return level


@dataclass(frozen=True, slots=True)
class _Noise:
    """How much a series' readings stray from its profile, hour by hour."""

    mean_flow: float
    quantum: float
    floor: float
    interval_s: float
    sigma: list[float]
    step_sigma: list[float] | None


def _noise(
    epoch_s: FloatArray,
    flow_m3h: FloatArray,
    shape: FloatArray,
    hour: IntArray,
    params: DetectionParams,
) -> _Noise:
    residual = flow_m3h - shape * _causal_level(epoch_s, flow_m3h, shape, params)
    mean_flow = float(np.mean(np.abs(flow_m3h))) or 1e-3
    quantum = _quantum(flow_m3h)
    floor = max(0.01 * mean_flow, quantum, 1e-4)
    interval_s = median(np.diff(epoch_s))
    step_sigma = _step_sigma(
        epoch_s,
        residual,
        hour,
        interval_s=interval_s,
        mean_flow=mean_flow,
        quantum=quantum,
        params=params,
    )
    sigma = _hourly_sigma(residual, hour, floor)
    return _Noise(mean_flow, quantum, floor, interval_s, sigma, step_sigma)


@dataclass(frozen=True, slots=True)
class _Nights:
    """A series' night levels, and the morning's part when it has one."""

    modes: NightModes
    morning: MorningFit | None
    zero_fraction: float


def _nights(
    columns: tuple[IntArray, IntArray, IntArray],
    flow_m3h: FloatArray,
    profile: FloatArray,
    noise: _Noise,
    params: DetectionParams,
) -> _Nights:
    per_day = int(86_400 / max(noise.interval_s, 1.0))
    night_hours = (params.night_start_hour, params.night_end_hour)
    by_night = day_means(columns, flow_m3h, night_hours, _coverage(night_hours, params, per_day))
    nights = np.asarray([m for m, _ in by_night.values()])
    types = np.asarray([k for _, k in by_night.values()], dtype=np.int64)
    # A night mean averages a whole window: a pulse meter's step shrinks with it. A
    # series mostly at rest (a household) keeps the step of one reading: the spread
    # of its nights (a flush, or none) is invisible to the median.
    zero_fraction = float(np.mean(np.abs(flow_m3h) <= params.zero_flow_m3h))
    intermittent = zero_fraction > INTERMITTENT_FRACTION
    window_s = 3600.0 * (params.night_end_hour - params.night_start_hour)
    night_floor = (
        noise.floor if intermittent else max(noise.quantum * noise.interval_s / window_s, 1e-4)
    )
    if nights.size == 0:
        nights, types = np.asarray([float(np.min(profile))]), np.zeros(1, dtype=np.int64)
    # A household's nights (at rest, or a flush) are not split into levels.
    modes = NightModes.of(
        nights, types, params.night_sigma_floor_fraction, night_floor, split=not intermittent
    )
    morning = None
    if len(modes.levels) == 1 and not intermittent:
        morning_hours = (params.morning_start_hour, params.morning_end_hour)
        coverage = _coverage(morning_hours, params, per_day)
        mornings = day_means(columns, flow_m3h, morning_hours, coverage)
        night_fit = (modes.levels[0], modes.factors, modes.sigma)
        morning = fit_morning(by_night, mornings, night_fit, night_floor, params)
    return _Nights(modes, morning, zero_fraction)


def fit_artifact(
    series_id: str,
    epoch_s: FloatArray,
    flow_m3h: FloatArray,
    clock: LocalClock,
    *,
    kind: str = "sensor",
    params: DetectionParams | None = None,
    trainer: str = "numpy-medians",
    profile: FloatArray | None = None,
) -> ModelArtifact:
    """Learn a series' normal behaviour from at least three days of readings.

    ``profile`` (3 × 96, m³/h) replaces the median profile when a trainer has a
    better one (the server's scikit-learn trainer); noise and night figures are
    always learned here, against whichever profile is used.
    """
    params = params or DetectionParams()
    if epoch_s.size < 2 or float(epoch_s[-1] - epoch_s[0]) < MIN_DAYS * 86_400:
        raise InvalidInput(f"{series_id}: need at least {MIN_DAYS} days of history to fit")
    day, day_type, slot, hour = calendar(clock, epoch_s)
    if profile is None:
        profile = _profile(day, day_type, slot, flow_m3h)
    elif profile.shape != (DAY_TYPES, SLOTS_PER_DAY):
        raise InvalidInput(f"{series_id}: a profile must be {DAY_TYPES} × {SLOTS_PER_DAY}")
    noise = _noise(epoch_s, flow_m3h, profile[day_type, slot], hour, params)
    fitted = _nights((day, day_type, hour), flow_m3h, profile, noise, params)
    modes, morning = fitted.modes, fitted.morning
    interval_s = noise.interval_s
    return ModelArtifact(
        series_id=series_id,
        kind="dma" if kind == "dma" else "sensor",
        trainer=trainer,
        created_at=datetime.now(UTC),
        trained_from=datetime.fromtimestamp(float(epoch_s[0]), UTC),
        trained_to=datetime.fromtimestamp(float(epoch_s[-1]), UTC),
        timezone=str(clock.zone.key),
        interval_s=interval_s,
        profile_m3h=round_floats(profile.tolist()),
        sigma_m3h=round_floats(noise.sigma),
        step_sigma_m3h=None if noise.step_sigma is None else round_floats(noise.step_sigma),
        night_baseline_m3h=round_floats(modes.levels[0]),
        night_alt_baseline_m3h=None if len(modes.levels) < 2 else round_floats(modes.levels[1]),
        night_sigma_m3h=round_floats(modes.sigma),
        night_day_factors=round_floats(modes.factors),
        morning_m3h=None if morning is None else round_floats(morning.morning_m3h),
        morning_slope_m3h=0.0 if morning is None else round_floats(morning.slope_m3h),
        morning_sigma_m3h=None if morning is None else round_floats(morning.sigma_m3h),
        mean_flow_m3h=round_floats(noise.mean_flow),
        zero_fraction=round(fitted.zero_fraction, 4),
        peak_flow_m3h=round_floats(max(percentile(flow_m3h, 99.5), 0.0)),
        params=params.model_copy(
            update={
                "max_flow_m3h": max(10 * percentile(flow_m3h, 99.5), 1.0),
                "min_flow_m3h": min(params.min_flow_m3h, 2 * _lowest(flow_m3h, kind, interval_s)),
            }
        ),
    )
