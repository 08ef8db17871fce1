"""Step test: the last readings against the readings just before them.

The burst CUSUM and the short window compare each reading with the profile, whose
error over an hour (a busier day, a later morning) is part of their σ. A burst is a
step: this test compares the mean excess of the last ``burst_step_n`` readings with
the mean excess of the ``burst_step_before_n`` readings before them (one reading
skipped between, the one a burst may have started in), over that difference's own σ
at the hour (``step_sigma_m3h``, learned by fit.py on the same statistic). What the
profile gets wrong for an hour cancels; the noise from one reading to the next is
what is left.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from leaksense.edge.detection.artifact import DetectionParams

FloatArray = npt.NDArray[np.float64]
REGULAR_TOLERANCE = 0.5
"""Readings count as consecutive when their spacing is within 50 % of the interval."""


def step_differences(
    epoch_s: FloatArray, residual: FloatArray, interval_s: float, recent_n: int, before_n: int
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The step statistic at every reading with a regular window behind it: ``(d, index)``."""
    span = recent_n + 1 + before_n
    if residual.size < span:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    c = np.concatenate([[0.0], np.cumsum(residual)])
    end = np.arange(span - 1, residual.size)
    recent = (c[end + 1] - c[end + 1 - recent_n]) / recent_n
    before = (c[end - recent_n] - c[end - recent_n - before_n]) / before_n
    width = epoch_s[end] - epoch_s[end - span + 1]
    regular = np.abs(width - (span - 1) * interval_s) <= REGULAR_TOLERANCE * interval_s
    return (recent - before)[regular], end[regular]


class StepTest:
    """The last few excesses of one series, as (time, excess in m³/h, z)."""

    __slots__ = ("_before_n", "_interval_s", "_last_s", "_min_z", "_readings", "_recent_n", "_z")

    def __init__(self, params: DetectionParams, interval_s: float) -> None:
        self._z = params.burst_step_z
        self._min_z = params.burst_window_min_z
        self._recent_n = params.burst_step_n
        self._before_n = params.burst_step_before_n
        self._interval_s = interval_s
        span = self._recent_n + 1 + self._before_n
        self._readings: deque[tuple[float, float, float]] = deque(maxlen=span)
        self._last_s = 0.0

    def clear(self) -> None:
        self._readings.clear()

    def push(
        self, epoch_s: float, excess_m3h: float, z: float, sigma_m3h: float | None
    ) -> tuple[float, float] | None:
        """Add a reading; ``(start, mean excess of the last readings)`` if it alarms."""
        readings = self._readings
        if epoch_s - self._last_s > (1 + REGULAR_TOLERANCE) * self._interval_s:
            readings.clear()  # a gap: the readings before it are no reference
        self._last_s = epoch_s
        readings.append((epoch_s, excess_m3h, z))
        full = len(readings) == readings.maxlen
        if self._z <= 0.0 or sigma_m3h is None or z < self._min_z or not full:
            return None
        items = list(readings)
        recent = items[-self._recent_n :]
        if min(r[2] for r in recent) < self._min_z:
            return None
        before = items[: self._before_n]
        mean_recent = sum(r[1] for r in recent) / self._recent_n
        # A rise back from a dip is no burst: only a reference above the expected
        # flow is taken off.
        step = mean_recent - max(sum(r[1] for r in before) / self._before_n, 0.0)
        if step < self._z * sigma_m3h:
            return None
        return items[self._before_n][0], mean_recent
