"""Night-flow watch: the classic signal of background and incipient leaks.

Each night's mean flow over the night window is compared with the series' recent
night level (median of the last accepted nights; a series whose nights fall in two
groups, irrigation nights and quiet ones, has two levels and each night is judged
against the nearer); a one-sided CUSUM on the
standardised excess accumulates evidence over nights, so a small leak is caught in
a couple of nights and a large one on the first. Nights are not accepted into the
baseline while evidence accumulates or a leak is open, so a leak is never learned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import median

from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact


@dataclass(frozen=True, slots=True)
class NightVerdict:
    """The result of one completed night."""

    night_start_s: float
    mean_m3h: float
    baseline_m3h: float
    excess_m3h: float
    day_factor: float
    cusum: float
    z: float
    """This night's own standardised excess."""
    alarm: bool
    normal: bool
    evidence_start_s: float
    level: int = 0
    """The night level it was judged against (0: the baseline, 1: the other level)."""


class NightWatch:
    """Accumulates one night at a time and judges it when the window ends."""

    def __init__(
        self, artifact: ModelArtifact, expected_per_night: float, params: DetectionParams
    ) -> None:
        p = params
        self._start_h, self._end_h = p.night_start_hour, p.night_end_hour
        self._k, self._h = p.night_k, p.night_h
        self._min_count = p.night_min_coverage * expected_per_night
        self._sigma = artifact.night_sigma_m3h
        self._factors = list(artifact.night_day_factors)
        # One deque of accepted nights per night level (two when nights are two-mode).
        levels = [artifact.night_baseline_m3h, artifact.night_alt_baseline_m3h]
        self._levels = [
            deque([level] * 3, maxlen=p.night_baseline_nights)
            for level in levels
            if level is not None
        ]
        self.baselines_m3h = [level for level in levels if level is not None]
        self.cusum = 0.0
        self._evidence_start_s = 0.0
        self._day: object = None
        self._day_type = 0
        self._sum = 0.0
        self._count = 0
        self._first_s = 0.0

    def carry_over(self, old: NightWatch) -> None:
        """Keep the evidence (and tonight's window so far) of the watch this one
        replaces: a weekly refit between two nights of a small leak must not reset the
        CUSUM that the first night started."""
        self.cusum, self._evidence_start_s = old.cusum, old._evidence_start_s
        if (self._start_h, self._end_h) == (old._start_h, old._end_h):
            self._day, self._day_type, self._first_s = old._day, old._day_type, old._first_s
            self._sum, self._count = old._sum, old._count

    def set_threshold(self, night_h: float) -> None:
        """A new CUSUM decision threshold (false-alarm feedback); evidence is kept."""
        self._h = night_h

    def observe(
        self, epoch_s: float, day: object, day_type: int, hour: int, flow_m3h: float
    ) -> NightVerdict | None:
        """Feed one reading; returns a verdict when a night window has just closed."""
        in_window = self._start_h <= hour < self._end_h
        verdict = None
        if self._count and (day != self._day or hour >= self._end_h):
            verdict = self._judge()
        if in_window:
            if self._count == 0:
                self._day, self._day_type, self._first_s = day, day_type, epoch_s
            self._sum += flow_m3h
            self._count += 1
        return verdict

    def reset(self) -> None:
        """Forget the current night and the evidence (after a sensor fault)."""
        self._count, self._sum, self.cusum = 0, 0.0, 0.0

    def forget_evidence(self) -> None:
        """Drop the accumulated evidence (it was explained by another event)."""
        self.cusum = 0.0

    def accept(self, verdict: NightVerdict) -> None:
        """Let a normal night into its level's baseline (as its weekday-equivalent)."""
        nights = self._levels[verdict.level]
        nights.append(verdict.mean_m3h / verdict.day_factor)
        self.baselines_m3h[verdict.level] = median(nights)

    def _judge(self) -> NightVerdict | None:
        count, total, first_s = self._count, self._sum, self._first_s
        self._count, self._sum = 0, 0.0
        if count < self._min_count:
            return None
        mean = total / count
        factor = self._factors[self._day_type]
        # Judged against the nearer night level: an irrigation night against the
        # irrigation nights, a quiet one against the quiet ones.
        level = min(
            range(len(self.baselines_m3h)),
            key=lambda m: abs(mean - self.baselines_m3h[m] * factor),
        )
        expected = self.baselines_m3h[level] * factor
        z = (mean - expected) / self._sigma
        if self.cusum == 0.0:
            self._evidence_start_s = first_s
        self.cusum = max(0.0, self.cusum + z - self._k)
        return NightVerdict(
            night_start_s=first_s,
            mean_m3h=mean,
            baseline_m3h=expected,
            excess_m3h=mean - expected,
            day_factor=factor,
            cusum=self.cusum,
            z=z,
            alarm=self.cusum > self._h,
            normal=self.cusum == 0.0 and abs(z) < 2.0,
            evidence_start_s=self._evidence_start_s,
            level=level,
        )
