"""Recurring excess: what the last few days did at this time of day, beyond the model.

A pattern that comes back day after day at the same hours (gardens watered on dry
evenings, farms irrigating at night, a school holiday's different morning) is normal
life the weekly profile has not learned yet; a burst is new. Each quarter-hour keeps
the day's mean residual; at midnight the excess beyond ``margin_sigma`` σ is kept for
``days`` days, and the burst CUSUM expects the largest of them (±1 quarter-hour).
Cost: one list lookup per reading, 96 × ``days`` floats per series.
"""

from __future__ import annotations

from collections import deque

SLOTS = 96


class RecentExcess:
    """The largest recurring excess of the last days, per local quarter-hour, m³/h."""

    def __init__(self, days: int, margin_sigma: float) -> None:
        self._days: deque[list[float]] = deque(maxlen=max(days, 1))
        self._enabled = days > 0
        self._margin = margin_sigma
        self._sum = [0.0] * SLOTS
        self._n = [0] * SLOTS
        self._day: object = None
        self.allowance_m3h = [0.0] * SLOTS

    def roll(self, day: object, sigma_by_hour: list[float]) -> None:
        """Start a new local day: fold the finished day into the memory."""
        if day == self._day:
            return
        if self._day is not None and self._enabled:
            excess = [
                max(0.0, self._sum[s] / self._n[s] - self._margin * sigma_by_hour[s // 4])
                if self._n[s]
                else 0.0
                for s in range(SLOTS)
            ]
            self._days.append(excess)
            peak = [max(values) for values in zip(*self._days, strict=True)]
            self.allowance_m3h = [
                max(peak[s - 1], peak[s], peak[(s + 1) % SLOTS]) for s in range(SLOTS)
            ]
        self._day = day
        self._sum = [0.0] * SLOTS
        self._n = [0] * SLOTS

    def add(self, slot: int, residual_m3h: float) -> None:
        """A normal reading's residual (not during an alert or a fault)."""
        self._sum[slot] += residual_m3h
        self._n[slot] += 1
