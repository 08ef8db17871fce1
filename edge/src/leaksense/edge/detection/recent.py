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
from dataclasses import dataclass
from datetime import date

SLOTS = 96


@dataclass(frozen=True, slots=True)
class RecentState:
    """The memory of a :class:`RecentExcess`, kept across a gateway's restart."""

    days: list[list[float]]
    """Each remembered day's excess per quarter-hour, oldest first."""
    day: date | None
    sums: list[float]
    counts: list[int]
    """The day being gathered: its residuals' sum and count per quarter-hour."""


class RecentExcess:
    """The largest recurring excess of the last days, per local quarter-hour, m³/h."""

    def __init__(self, days: int, margin_sigma: float) -> None:
        self._days: deque[list[float]] = deque(maxlen=max(days, 1))
        self._enabled = days > 0
        self._margin = margin_sigma
        self._sum = [0.0] * SLOTS
        self._n = [0] * SLOTS
        self._day: date | None = None
        self.allowance_m3h = [0.0] * SLOTS

    def roll(self, day: date, sigma_by_hour: list[float]) -> None:
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
            self._allow()
        self._day = day
        self._sum = [0.0] * SLOTS
        self._n = [0] * SLOTS

    def _allow(self) -> None:
        """The allowance: the largest remembered excess, ±1 quarter-hour."""
        if not self._days:
            self.allowance_m3h = [0.0] * SLOTS
            return
        peak = [max(values) for values in zip(*self._days, strict=True)]
        self.allowance_m3h = [
            max(peak[s - 1], peak[s], peak[(s + 1) % SLOTS]) for s in range(SLOTS)
        ]

    def state(self) -> RecentState:
        """What to keep across a restart."""
        return RecentState([list(d) for d in self._days], self._day, list(self._sum), list(self._n))

    def restore(self, state: RecentState) -> None:
        """Take back the memory a restart lost (a state of another shape is ignored)."""
        shapes = [len(d) for d in state.days] + [len(state.sums), len(state.counts)]
        if not self._enabled or any(n != SLOTS for n in shapes):
            return
        self._days.clear()
        self._days.extend(list(d) for d in state.days)
        self._day, self._sum, self._n = state.day, list(state.sums), list(state.counts)
        self._allow()

    def add(self, slot: int, residual_m3h: float) -> None:
        """A healthy reading's residual (an alert open or not: a false burst on the
        first evening of a pattern must not keep the pattern out of the memory)."""
        self._sum[slot] += residual_m3h
        self._n[slot] += 1
