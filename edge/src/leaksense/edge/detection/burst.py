"""Burst watch: is the flow of one series rising, suddenly and for good?

Two tests on the standardised residuals (z: flow minus what the profile, the recent
level and the recent days expect, over the hour's σ): a one-sided CUSUM with
allowance ``burst_k`` and threshold ``burst_h`` (each z clipped at ``burst_z_clip``,
so one spike cannot alarm), the short window (window.py), which answers first
when a rise is already sustained over a few readings, and the step test (step.py),
which compares the last readings with those just before them. While a burst is open, a
second CUSUM (allowance 0.5 σ below the expected) says when the flow has come back.
Pure arithmetic: the series (series.py) decides what an alarm becomes.
"""

from __future__ import annotations

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.step import StepTest
from leaksense.edge.detection.window import ShortWindow


class BurstWatch:
    """The burst CUSUMs and the short window of one series."""

    __slots__ = (
        "_down",
        "_excess_n",
        "_excess_sum",
        "_params",
        "_step",
        "_window",
        "cusum",
        "interval_s",
        "start_s",
    )

    def __init__(self, params: DetectionParams, interval_s: float = 300.0) -> None:
        self._params = params
        self.interval_s = interval_s
        """The series' reading interval: the step test's readings must follow on."""
        self._window = ShortWindow(params)
        self._step = StepTest(params, interval_s)
        self.cusum = 0.0
        self.start_s = 0.0
        """Where the rise being added up started."""
        self._down = 0.0
        self._excess_sum = 0.0
        self._excess_n = 0

    def use(self, params: DetectionParams) -> None:
        """New thresholds: the CUSUMs keep their evidence, the short window restarts."""
        self._params = params
        self._window = ShortWindow(params)
        self._step = StepTest(params, self.interval_s)

    def reset(self) -> None:
        """Forget everything (a burst closed, a sensor fault)."""
        self.cusum = self._down = self.start_s = self._excess_sum = 0.0
        self._excess_n = 0
        self._window.clear()
        self._step.clear()

    def push(
        self, epoch_s: float, excess_m3h: float, z: float, step_sigma_m3h: float | None = None
    ) -> tuple[float, float] | None:
        """Feed one reading; returns the short window's or the step test's
        ``(start, mean excess)`` if one alarms (see :meth:`alarms`)."""
        p = self._params
        if self.cusum == 0.0:
            self.start_s, self._excess_sum, self._excess_n = epoch_s, 0.0, 0
        self.cusum = max(0.0, self.cusum + min(z, p.burst_z_clip) - p.burst_k)
        if self.cusum > 0.0:
            self._excess_sum += excess_m3h
            self._excess_n += 1
        window = self._window.push(epoch_s, excess_m3h, z)
        step = self._step.push(epoch_s, excess_m3h, z, step_sigma_m3h)
        return window or step

    def alarms(self, window: tuple[float, float] | None) -> bool:
        """Does the rise alarm (no burst open)? When the short window alarms before the
        CUSUM, its readings say where the rise started and how large it is."""
        if self.cusum > self._params.burst_h:
            return True
        if window is None:
            return False
        start_s, self._excess_sum, self._excess_n = window[0], window[1], 1
        if self.cusum > 0.0:
            start_s = min(start_s, self.start_s)
        self.start_s = start_s
        return True

    @property
    def excess_m3h(self) -> float:
        """Mean excess of the rise over what is expected."""
        return self._excess_sum / max(self._excess_n, 1)

    @property
    def confidence(self) -> float:
        h = self._params.burst_h
        return min(1.0, max(self.cusum, h) / (2 * h))

    def came_back(self, z: float) -> bool:
        """Feed an open burst's reading; True once the flow is back to what is expected."""
        self._down = max(0.0, self._down + 0.5 - z)
        return self._down > self._params.burst_h
