"""Short-window burst test: the last few readings all clearly above expectation.

The burst CUSUM (allowance ``burst_k`` = 2.5 σ) is built for large rises: one of
about 4 σ per reading needs four or five readings to cross ``burst_h``, and the 15
minutes a technician is promised hold three. This test alarms when the last
``burst_window_n`` standardised residuals (clipped like the CUSUM's) add up to
``burst_window_z`` and none is under ``burst_window_min_z``: a rise that is already
sustained, which a lone spike, a ramp or a noisy hour does not make.
"""

from __future__ import annotations

from collections import deque

from leaksense.edge.detection.artifact import DetectionParams


class ShortWindow:
    """The last few readings of one series, as (time, excess over expected, z)."""

    __slots__ = ("_clip", "_min_z", "_readings", "_sum_z")

    def __init__(self, params: DetectionParams) -> None:
        self._sum_z = params.burst_window_z
        self._min_z = params.burst_window_min_z
        self._clip = params.burst_z_clip
        self._readings: deque[tuple[float, float, float]] = deque(maxlen=params.burst_window_n)

    def clear(self) -> None:
        self._readings.clear()

    def push(self, epoch_s: float, excess_m3h: float, z: float) -> tuple[float, float] | None:
        """Add a reading; ``(start, mean excess in m³/h)`` of the window if it alarms."""
        readings = self._readings
        readings.append((epoch_s, excess_m3h, min(z, self._clip)))
        # Most readings stop here: the newest one must itself be up.
        if z < self._min_z or self._sum_z <= 0.0 or len(readings) < (readings.maxlen or 0):
            return None
        zs = [r[2] for r in readings]
        if sum(zs) < self._sum_z or min(zs) < self._min_z:
            return None
        return readings[0][0], sum(r[1] for r in readings) / len(readings)
