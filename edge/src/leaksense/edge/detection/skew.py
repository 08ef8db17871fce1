"""A sensor's clock against the gateway's: readings stamped by a clock that is wrong.

A sensor that stamps its own readings (the JSON payload's ``time``) and lost its
time source (no NTP, a flat RTC battery) drifts: a minute a day, or back to 1970
after a reboot. The gateway compares each reading's time with the moment it arrived.
A reading stamped ahead of the gateway's clock is impossible at once. Lateness is
judged on the smallest lag of an hour, beyond the reporting interval (a meter may
stamp a reading with the start of the interval it measured): a sensor that buffered
its readings during an outage sends old times, then fresh ones; a slow clock is late
on every reading.
ESPHome readings are stamped by the gateway on arrival and always agree.
"""

from __future__ import annotations

import math

SPAN_S = 3600.0


class SkewWatch:
    """The clock error of one sensor (seconds, positive: the sensor is ahead)."""

    def __init__(self, tolerance_s: float, interval_s: float = 0.0, span_s: float = SPAN_S) -> None:
        self.tolerance_s = tolerance_s
        self.late_s = tolerance_s + interval_s
        self.span_s = span_s
        self.error_s: float | None = None
        """The error beyond the tolerance, as last judged; None: the clock agrees."""
        self._since_s: float | None = None
        self._min_lag_s = math.inf

    def observe(self, epoch_s: float, received_s: float) -> float | None:
        """Judge one reading's time against its arrival; returns :attr:`error_s`."""
        lag_s = received_s - epoch_s
        if lag_s < -self.tolerance_s:  # from the future: no need to wait
            self.error_s, self._since_s = -lag_s, None
            return self.error_s
        if self._since_s is None or received_s < self._since_s:
            self._since_s, self._min_lag_s = received_s, lag_s
        self._min_lag_s = min(self._min_lag_s, lag_s)
        if received_s - self._since_s >= self.span_s:
            late = self._min_lag_s > self.late_s
            self.error_s = -self._min_lag_s if late else None
            self._since_s = None
        return self.error_s
