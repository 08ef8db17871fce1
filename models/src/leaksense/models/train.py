"""The server's profile trainer: robust regression on Fourier features of local time.

Why this model rather than the gateway's per-slot medians:

- Demand is a smooth daily cycle. K harmonics of 24 h describe a day type with
  2K+1 numbers instead of 96 medians, so three or four Saturdays of history are
  enough for a stable Saturday shape.
- Saturday and Sunday/holiday are fitted as *deviations* from the weekday curve,
  and only when the history covers (nearly) all their quarter-hours: a day type
  seen for an hour at the edge of the history borrows the weekday shape instead
  of bending a whole day's curve through that hour.
- Huber loss: a history holds leaks, bursts, spikes and meter faults. Squared loss
  would learn them as normal demand; Huber weighs residuals beyond ε·σ (σ estimated
  with the fit) linearly, so a two-day leak in a month of history barely moves it.
- K is chosen by forward-chaining cross-validation (TimeSeriesSplit, scored by mean
  absolute error): each candidate is judged on days after those it learned from, and
  the smallest K within 1 % of the best wins (fewer wiggles to extrapolate).

Readings are first averaged per (local day, quarter-hour), the grid of the profile,
so the cost of a fit does not depend on the meters' reporting interval.

The recent level is not learned here: the gateway rescales the profile by a causal
level tracker at run time (``series.py``), and noise is learned against that level
(``fit_artifact``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import HuberRegressor
from sklearn.model_selection import TimeSeriesSplit

from leaksense.core.errors import InvalidInput
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import (
    DAY_TYPES,
    SATURDAY,
    SLOTS_PER_DAY,
    SUNDAY,
    LocalClock,
)
from leaksense.edge.detection.fit import MIN_DAYS, calendar, fit_artifact

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRAINER = "sklearn-huber-fourier"
HARMONICS = (2, 3, 4, 6, 8)
"""Candidate numbers of 24 h harmonics (8 resolves features of about 1.5 h)."""
CV_SPLITS = 3
PARSIMONY = 0.01
"""A smaller K is preferred when its CV error is within this share of the best."""
HUBER_EPSILON = 1.35
"""sklearn's default: 95 % efficiency on Gaussian noise, linear beyond 1.35 σ."""
HUBER_ALPHA = 1.0
"""L2 penalty on the coefficients (flows scaled to a mean of 1): negligible against
hundreds of quarter-hours, it only keeps the fit well-posed."""
MIN_COVERAGE = 0.9
"""Share of a day type's 96 quarter-hours the history must cover for it to get its
own deviation from the weekday curve."""


@dataclass(frozen=True, slots=True)
class ProfileFit:
    profile_m3h: FloatArray
    """Expected flow, 3 day types × 96 quarter-hours (m³/h)."""
    harmonics: int
    cv_mae_m3h: float
    """Forward-chaining CV mean absolute error of the chosen K, on quarter-hour means."""


def fit_profile(epoch_s: FloatArray, flow_m3h: FloatArray, clock: LocalClock) -> ProfileFit:
    """Fit the demand profile of one series, choosing K by time-series CV."""
    _check_history(epoch_s, flow_m3h)
    day_type, slot, mean_m3h = _quarter_hour_means(epoch_s, flow_m3h, clock)
    scale = float(np.mean(np.abs(mean_m3h))) or 1.0
    target = mean_m3h / scale
    own = tuple(
        k
        for k in (SATURDAY, SUNDAY)
        if np.unique(slot[day_type == k]).size >= MIN_COVERAGE * SLOTS_PER_DAY
    )
    design = _Design(day_type, slot, own)
    scores = {k: _cv_mae(design, target, k) for k in HARMONICS}
    best = min(scores.values())
    harmonics = min(k for k, s in scores.items() if s <= best * (1 + PARSIMONY))
    model = _regressor().fit(design.features(harmonics), target)
    grid_type = np.repeat(np.arange(DAY_TYPES, dtype=np.int64), SLOTS_PER_DAY)
    grid_slot = np.tile(np.arange(SLOTS_PER_DAY, dtype=np.int64), DAY_TYPES)
    grid = model.predict(_Design(grid_type, grid_slot, own).features(harmonics)) * scale
    floor = min(0.0, float(np.percentile(flow_m3h, 1)))
    profile = np.maximum(grid, floor).reshape(DAY_TYPES, SLOTS_PER_DAY)
    return ProfileFit(profile, harmonics, scores[harmonics] * scale)


def train_profile(epoch_s: FloatArray, flow_m3h: FloatArray, clock: LocalClock) -> FloatArray:
    """Expected flow (m³/h) by day type and local quarter-hour: a 3 × 96 array."""
    return fit_profile(epoch_s, flow_m3h, clock).profile_m3h


def train_artifact(
    series_id: str,
    epoch_s: FloatArray,
    flow_m3h: FloatArray,
    clock: LocalClock,
    *,
    kind: str = "sensor",
    params: DetectionParams | None = None,
) -> ModelArtifact:
    """A model artifact whose profile comes from :func:`train_profile`.

    Noise, night baseline and thresholds are learned by the gateway's own
    ``fit_artifact`` against this profile, so both trainers stay comparable.
    """
    profile = train_profile(epoch_s, flow_m3h, clock)
    return fit_artifact(
        series_id,
        epoch_s,
        flow_m3h,
        clock,
        kind=kind,
        params=params,
        trainer=TRAINER,
        profile=profile,
    )


def _check_history(epoch_s: FloatArray, flow_m3h: FloatArray) -> None:
    if epoch_s.shape != flow_m3h.shape or epoch_s.ndim != 1:
        raise InvalidInput("times and flows must be 1-D arrays of the same length")
    if not (np.isfinite(epoch_s).all() and np.isfinite(flow_m3h).all()):
        raise InvalidInput("history holds non-finite times or flows")
    if np.any(np.diff(epoch_s) <= 0):
        raise InvalidInput("history must be in strictly increasing time order")
    if epoch_s.size < 2 or float(epoch_s[-1] - epoch_s[0]) < MIN_DAYS * 86_400:
        raise InvalidInput(f"need at least {MIN_DAYS} days of history to train a profile")


def _quarter_hour_means(
    epoch_s: FloatArray, flow_m3h: FloatArray, clock: LocalClock
) -> tuple[IntArray, IntArray, FloatArray]:
    """Mean flow per (local day, quarter-hour) in time order, with its day type and slot."""
    day, day_type, slot, _ = calendar(clock, epoch_s)
    cells, first, inverse = np.unique(day * SLOTS_PER_DAY + slot, True, True)
    sums = np.bincount(inverse, weights=flow_m3h)
    counts = np.bincount(inverse)
    return day_type[first], cells % SLOTS_PER_DAY, sums / counts


@dataclass(frozen=True, slots=True)
class _Design:
    """Quarter-hours to regress on, and the day types that get their own deviation."""

    day_type: IntArray
    slot: IntArray
    own: tuple[int, ...]

    def features(self, harmonics: int) -> FloatArray:
        """Weekday harmonics, plus an offset and harmonics per day type in ``own``."""
        phase = 2 * np.pi * (self.slot + 0.5) / SLOTS_PER_DAY
        h = np.arange(1, harmonics + 1)
        waves = np.hstack([np.cos(np.outer(phase, h)), np.sin(np.outer(phase, h))])
        with_offset = np.hstack([np.ones((phase.size, 1)), waves])
        deviations = [with_offset * (self.day_type == k)[:, None] for k in self.own]
        return np.hstack([waves, *deviations])


def _regressor() -> HuberRegressor:
    return HuberRegressor(epsilon=HUBER_EPSILON, alpha=HUBER_ALPHA, max_iter=1_000)


def _cv_mae(design: _Design, target: FloatArray, harmonics: int) -> float:
    """Mean absolute error of forward-chaining folds (train on the past, test on after)."""
    features = design.features(harmonics)
    errors = []
    for train, test in TimeSeriesSplit(n_splits=CV_SPLITS).split(features):
        model = _regressor().fit(features[train], target[train])
        errors.append(float(np.mean(np.abs(model.predict(features[test]) - target[test]))))
    return float(np.mean(errors))
