"""A DMA's water balance over the last hour: negative means a member meter misreads.

One reading of a DMA's net inflow may dip below zero with every meter right: a
100 L pulse inlet reads 0 in a 5-minute interval while a 1 L customer meter
subtracted from it (a large user) reads a few litres. Over an hour each meter is
wrong by at most one pulse, and water does not flow out of a DMA faster than it
came in: a net inflow still negative there is a meter fault (an inlet that
under-registers, an outlet declared the wrong way round), not noise.
"""

from __future__ import annotations

from collections import deque

SPAN_S = 3600.0


class HourlyBalance:
    """The mean of the readings of the last ``span_s`` seconds (O(1) per reading)."""

    def __init__(self, span_s: float = SPAN_S) -> None:
        self.span_s = span_s
        self._readings: deque[tuple[float, float]] = deque()
        self._sum = 0.0
        self._since_s: float | None = None

    def add(self, epoch_s: float, flow_m3h: float) -> float | None:
        """Add a reading; the mean flow over the span, once a whole span is covered."""
        readings = self._readings
        if readings and epoch_s - readings[-1][0] > self.span_s:
            self.clear()  # after a gap, a new span starts
        if self._since_s is None:
            self._since_s = epoch_s
        readings.append((epoch_s, flow_m3h))
        self._sum += flow_m3h
        while readings[0][0] <= epoch_s - self.span_s:
            self._sum -= readings.popleft()[1]
        if epoch_s - self._since_s < self.span_s - 1e-6 * self.span_s:
            return None
        return self._sum / len(readings)

    def clear(self) -> None:
        self._readings.clear()
        self._sum = 0.0
        self._since_s = None
