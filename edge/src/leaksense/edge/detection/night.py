"""Night-flow watch: the classic signal of background and incipient leaks.

Each night's mean flow over the night window is compared with the series' recent
night level (median of the last accepted nights; a series whose nights fall in two
groups, irrigation nights and quiet ones, has two levels and each night is judged
against the nearer); a one-sided CUSUM on the
standardised excess accumulates evidence over nights, so a small leak is caught in
a couple of nights and a large one on the first. Nights are not accepted into the
baseline while evidence accumulates or a leak is open, so a leak is never learned.
Where the same day's morning explains part of the night (``morning.py``), a night is
judged when its morning ends, against its level plus the morning's part.
A night missing some of its hours (the spring DST night, a gap) is judged against
what the profile expects of the hours it has.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import date
from statistics import median

from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import SLOTS_PER_DAY as SLOTS


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
    morning_excess: float = 0.0
    """The same day's morning flow relative to its usual, minus one (0: not used)."""
    plain_excess_m3h: float = 0.0
    """The night's excess over its level alone, without the morning's part."""


@dataclass(slots=True)
class NightWindow:
    """Readings summed over a window of local hours of one day."""

    day: date | None = None
    day_type: int = 0
    first_s: float = 0.0
    total: float = 0.0
    count: int = 0
    shape_total: float = 0.0
    """Sum of the profile's values at the readings: what their hours expect."""

    def add(self, epoch_s: float, day: date, day_type: int, flow_m3h: float, shape: float) -> None:
        if self.count == 0:
            self.day, self.day_type, self.first_s = day, day_type, epoch_s
        self.total += flow_m3h
        self.count += 1
        self.shape_total += shape


@dataclass(frozen=True, slots=True)
class NightEvidence:
    """What the night watch has gathered, kept across a gateway's restart (eventfile.py):
    the CUSUM's evidence, and the night (or night and morning) being watched."""

    cusum: float
    evidence_start_s: float
    saved_s: float
    """When this was saved (a night judged, an alert sent, an hour of a window)."""
    hours: tuple[int, int] = (0, 0)
    """The night window (local hours) the windows below were gathered over."""
    night: NightWindow | None = None
    pending: NightWindow | None = None
    """A closed night waiting for its morning, and that morning so far."""
    morning: NightWindow | None = None


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
        # One deque of accepted nights per night level (two when nights are two-mode,
        # more when people judged a higher level normal: add_level).
        self._nights_kept = p.night_baseline_nights
        self._levels: list[deque[float]] = []
        self.baselines_m3h: list[float] = []
        self._level_sigma_m3h: list[float] = []  # at least this σ at each level
        for level in (artifact.night_baseline_m3h, artifact.night_alt_baseline_m3h):
            if level is not None:
                self.add_level(level, apart_m3h=0.0)
        self.cusum = 0.0
        self._evidence_start_s = 0.0
        self._night = NightWindow()
        # The morning's part (None: each night is judged when its window closes).
        use_morning = artifact.morning_slope_m3h > 0 and p.morning_end_hour > p.morning_start_hour
        self._usual_morning = artifact.morning_m3h if use_morning else None
        self._slope = artifact.morning_slope_m3h
        self._sigma_morning = artifact.morning_sigma_m3h or self._sigma
        self._morning_h = (p.morning_start_hour, p.morning_end_hour)
        self._early = p.night_alone_first
        hours = max(p.morning_end_hour - p.morning_start_hour, 0)
        self._morning_min = self._min_count * hours / (self._end_h - self._start_h)
        self._pending: NightWindow | None = None  # a closed night waiting for its morning
        self._morning = NightWindow()
        # The profile's mean over the night window, per day type: a night missing
        # some of its hours (the spring DST night, a gap) expects what its readings'
        # hours expect, not the whole window's mean.
        slots = [s for s in range(SLOTS) if self._start_h <= s * 24 // SLOTS < self._end_h]
        self._night_shape = [
            sum(row[s] for s in slots) / len(slots) if slots else 0.0
            for row in artifact.profile_m3h
        ]

    def add_level(self, level_m3h: float, apart_m3h: float, sigma_m3h: float = 0.0) -> None:
        """One more normal night level (weekday-equivalent), unless one is already
        within ``apart_m3h`` of it; nights near it are judged with a σ of at least
        ``sigma_m3h`` (a use people accepted varies from night to night)."""
        for m, baseline_m3h in enumerate(self.baselines_m3h):
            if abs(baseline_m3h - level_m3h) < apart_m3h:
                self._level_sigma_m3h[m] = max(self._level_sigma_m3h[m], sigma_m3h)
                return
        self._levels.append(deque([level_m3h] * 3, maxlen=self._nights_kept))
        self.baselines_m3h.append(level_m3h)
        self._level_sigma_m3h.append(sigma_m3h)

    def carry_over(self, old: NightWatch) -> None:
        """Keep the evidence (and tonight's window so far) of the watch this one
        replaces: a weekly refit between two nights of a small leak must not reset the
        CUSUM that the first night started."""
        self.cusum, self._evidence_start_s = old.cusum, old._evidence_start_s
        if (self._start_h, self._end_h) == (old._start_h, old._end_h):
            # A night waiting for its morning waits on (or is judged alone at the
            # end of the morning, if the new model has no morning part).
            self._night, self._pending, self._morning = old._night, old._pending, old._morning

    @property
    def watching(self) -> bool:
        """Is a night (or a night's morning) being gathered?"""
        return self._night.count > 0 or self._pending is not None

    def evidence(self, now_s: float) -> NightEvidence:
        """The evidence so far and the windows being gathered, to keep across a restart."""
        pending = self._pending
        return NightEvidence(
            self.cusum,
            self._evidence_start_s,
            now_s,
            (self._start_h, self._end_h),
            replace(self._night) if self._night.count else None,
            None if pending is None else replace(pending),
            None if pending is None else replace(self._morning),
        )

    def resume(self, evidence: NightEvidence) -> None:
        """Take back what the watch a restart lost. The windows come back only if they
        were gathered over the same hours; a window whose day is over is judged at
        the next reading, as it would have been."""
        self.cusum, self._evidence_start_s = evidence.cusum, evidence.evidence_start_s
        if evidence.hours != (self._start_h, self._end_h):
            return
        if evidence.night is not None:
            self._night = replace(evidence.night)
        if evidence.pending is not None:
            self._pending = replace(evidence.pending)
            self._morning = replace(evidence.morning or NightWindow())

    def set_threshold(self, night_h: float) -> None:
        """A new CUSUM decision threshold (false-alarm feedback); evidence is kept."""
        self._h = night_h

    def observe(
        self,
        epoch_s: float,
        day: date,
        day_type: int,
        hour: int,
        flow_m3h: float,
        *,
        shape: float | None = None,
    ) -> NightVerdict | None:
        """Feed one reading; returns a verdict when a night window has just closed.

        ``shape``: the profile's value at this reading (None: the night's mean).
        """
        night, verdict = self._night, None
        if night.count and (day != night.day or hour >= self._end_h):
            self._night = NightWindow()
            # A night that alarms judged alone does not wait for its morning.
            if self._usual_morning is None or self._alarms_alone(night):
                verdict = self._judge(night, None)
            else:
                self._pending, self._morning = night, NightWindow()
        pending = self._pending
        if pending is not None:
            if day != pending.day or hour >= self._morning_h[1]:
                self._pending = None
                verdict = self._judge(pending, self._morning)
            elif hour >= self._morning_h[0]:
                self._morning.add(epoch_s, day, day_type, flow_m3h, 0.0)
        if self._start_h <= hour < self._end_h:
            usual = self._night_shape[day_type] if shape is None else shape
            self._night.add(epoch_s, day, day_type, flow_m3h, usual)
        return verdict

    def reset(self) -> None:
        """Forget the current night and the evidence (after a sensor fault)."""
        self._night, self._pending, self.cusum = NightWindow(), None, 0.0

    def forget_evidence(self) -> None:
        """Drop the accumulated evidence (it was explained by another event)."""
        self.cusum = 0.0

    def accept(self, verdict: NightVerdict) -> None:
        """Let a normal night into its level's baseline (as its weekday-equivalent)."""
        nights = self._levels[verdict.level]
        morning_part = self._slope * verdict.morning_excess
        nights.append(verdict.mean_m3h / verdict.day_factor - morning_part)
        self.baselines_m3h[verdict.level] = median(nights)

    def _score(
        self, night: NightWindow, morning: NightWindow | None
    ) -> tuple[float, float, int, float, float, float]:
        """``(mean, day factor, level, morning excess, expected, z)`` of a night."""
        mean = night.total / night.count
        factor = self._factors[night.day_type] * self._coverage(night)
        # Judged against the nearer night level: an irrigation night against the
        # irrigation nights, a quiet one against the quiet ones.
        level = min(
            range(len(self.baselines_m3h)),
            key=lambda m: abs(mean - self.baselines_m3h[m] * factor),
        )
        excess, sigma = 0.0, self._sigma
        usual = self._usual_morning
        if usual is not None and morning is not None and morning.count >= self._morning_min:
            excess = morning.total / morning.count / usual[morning.day_type] - 1.0
            sigma = self._sigma_morning
        sigma = max(sigma, self._level_sigma_m3h[level])
        expected = (self.baselines_m3h[level] + self._slope * excess) * factor
        return mean, factor, level, excess, expected, (mean - expected) / sigma

    def _coverage(self, night: NightWindow) -> float:
        """What the night's readings' hours expect, relative to the whole window's."""
        usual = self._night_shape[night.day_type]
        if usual <= 0.0:
            return 1.0
        return min(max(night.shape_total / night.count / usual, 0.5), 2.0)

    def _alarms_alone(self, night: NightWindow) -> bool:
        """Would this night raise the alarm judged alone (without its morning)?"""
        if not self._early or night.count < self._min_count:
            return False
        z = self._score(night, None)[-1]
        return z > self._k and self.cusum + z - self._k > self._h

    def _judge(self, night: NightWindow, morning: NightWindow | None) -> NightVerdict | None:
        if night.count < self._min_count:
            return None
        mean, factor, level, excess, expected, z = self._score(night, morning)
        first_s = night.first_s
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
            morning_excess=excess,
            plain_excess_m3h=mean - self.baselines_m3h[level] * factor,
        )
