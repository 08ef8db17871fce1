"""A flow people judged normal: what a dismissed alert teaches its series.

When the utility resolves a burst or night-flow alert as ``false_alarm`` or
``sensor_fault`` while the gateway still sees it (a new customer, a farm's trough
filled on some nights), the server lists it as dismissed (``GET /api/v1/sensitivity``).
The series closes the event and takes the flow the alert had at the verdict as normal:

* **its nights get two normal levels**, the quiet one and the quiet one plus that
  flow (beside any the model learned), and each night is judged against the nearest
  (night.py): the same excess, every night or on some nights only, does not alarm
  again; a new leak on top of it is a new alert, not a rise of the dismissed one's
  flow; a small leak on a quiet night is still judged against the quiet level;
  a night near the accepted level is judged with a σ of at least
  :data:`ACCEPTED_SPREAD` of the flow (the use varies; its flow is one night's);
* **its remembered readings from before the verdict get the flow added** (the refit
  history holds nothing of the alarmed period), so a refit learns the new normal
  without a step in the middle of its window, which would inflate its night σ and
  mislead its morning model. Only at the local hours it was seen
  (:attr:`AcceptedFlow.hours`): a night alert's night window, the hours a burst was
  open (every hour, once it was open a whole day), and each further hour whose
  readings since the verdict show half of it on average while the burst watch
  expects it. A farm's irrigation dismissed at once must not be learned by day;
* **the burst watch goes on expecting it**, as it did while the alert was open, until
  the flow comes back down (the end of the use is no burst either) or a refit has
  learned it (one trained a day after the verdict: every hour it shows at is then
  in the history). Down from what the profile times the level expected at the
  verdict, or, for a night alert, after the night before its evidence began (the
  level took in part of the flow before the alert: additive flow, multiplicative
  level, so at the evening peak the part looked like most of it).

A model trained on readings from before the verdict (the one in use, a refit whose
window still starts before it, one fetched from the server) gets the two levels
(:meth:`AcceptedFlow.levels_for`); once the refit window holds only later readings,
the model has learned by itself. If the nights stop showing the flow
(:data:`UNSHOWN_NIGHTS` nights in a row without half of it: a reservoir filled once,
a burst that was over by the verdict), the series takes it back entirely, so that a
later leak of that size is a leak.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.night import NightWatch

UNSHOWN_NIGHTS = 2
SHOWN_SHARE = 0.5
"""A night at least this share of the accepted flow above the quiet level shows it."""
ACCEPTED_SPREAD = 0.1
"""Nights near the accepted level are judged with a σ of at least this share of the
accepted flow: a use people accepted (irrigation, a trough) varies from night to
night, and the flow it was accepted at is one night's estimate."""
LEARNED_AFTER_S = 86_400.0
"""A refit learned the flow if trained this long after the verdict: the burst watch
has then seen every hour at which the flow shows."""


@dataclass(frozen=True, slots=True)
class AcceptedFlow:
    """An accepted excess of one series, kept across restarts (eventfile.py)."""

    flow_m3h: float
    since_s: float
    """When it was accepted: models trained on readings from before get it."""
    quiet_m3h: float
    """The night level it came on top of (weekday-equivalent)."""
    carried_m3h: float = 0.0
    """What the burst watch still adds to the flow it expects (0: came back down)."""
    unshown_nights: int = 0
    hours: tuple[int, ...] = ()
    """The local hours at which it was seen, and at which the history carries it
    (empty: every hour)."""
    hour_excess_m3h: tuple[float, ...] = ()
    hour_readings: tuple[int, ...] = ()
    """While carried: the sum of the excesses seen at each local hour since the
    verdict, and their number (empty: none yet)."""

    @property
    def level_m3h(self) -> float:
        return self.quiet_m3h + self.flow_m3h

    def levels_for(self, artifact: ModelArtifact) -> tuple[float, ...]:
        """The night levels a model must have beside its own: the quiet one and the
        accepted one, if it was trained on readings from before the verdict."""
        if artifact.trained_from.timestamp() >= self.since_s:
            return ()
        return (self.quiet_m3h, self.level_m3h)

    def learned_by(self, artifact: ModelArtifact) -> bool:
        """Was ``artifact`` trained on the history that carries it, at every hour it
        shows? Its hours are known a day after the verdict (or once it came back
        down, which a nightly use does within the day)."""
        return artifact.trained_to.timestamp() >= self.since_s + LEARNED_AFTER_S

    def after_night(self, mean_m3h: float) -> AcceptedFlow:
        """After a night of ``mean_m3h`` (weekday-equivalent)."""
        shown = mean_m3h >= self.quiet_m3h + SHOWN_SHARE * self.flow_m3h
        return replace(self, unshown_nights=0 if shown else self.unshown_nights + 1)

    @property
    def gone(self) -> bool:
        """The nights stopped showing it: the series takes it back."""
        return self.unshown_nights >= UNSHOWN_NIGHTS


class Acceptance:
    """What one series does with the flow people accepted: its night levels, and the
    burst watch's expectation of it until it comes back down."""

    __slots__ = ("_down", "_excess", "_hour", "_level", "_readings", "flow")

    def __init__(self, flow: AcceptedFlow | None) -> None:
        self._down = 0.0  # down-CUSUM of the flow against the level at the verdict
        self._level = 0.0  # the level the burst watch had at the verdict (0: not yet)
        self._hour = -1  # the local hour being watched
        self._excess, self._readings = [0.0] * 24, [0] * 24  # per local hour, since then
        if flow is not None and len(flow.hour_readings) == len(flow.hour_excess_m3h) == 24:
            self._excess, self._readings = list(flow.hour_excess_m3h), list(flow.hour_readings)
        self.flow = None if flow is None else replace(flow, hour_excess_m3h=(), hour_readings=())

    def state(self) -> AcceptedFlow | None:
        """The accepted flow with what the hours showed so far, to keep across a restart."""
        if self.flow is None or self.carried_m3h <= 0.0 or not self.flow.hours:
            return self.flow
        return replace(
            self.flow, hour_excess_m3h=tuple(self._excess), hour_readings=tuple(self._readings)
        )

    @property
    def carried_m3h(self) -> float:
        """What the burst watch adds to the flow it expects."""
        return 0.0 if self.flow is None else self.flow.carried_m3h

    def accept(
        self,
        flow_m3h: float,
        now_s: float,
        night: NightWatch,
        hours: tuple[int, ...],
        level: float = 0.0,
    ) -> None:
        """Take ``flow_m3h``, seen at the local ``hours`` (empty: every hour), as
        normal from ``now_s``, on top of the quiet night level (or on top of a flow
        accepted earlier). ``level``: the burst watch's level before the flow came,
        if known (a night alert's: the level took in part of the flow in the hours
        before the alert), else 0 (the level at the verdict)."""
        earlier = self.flow
        quiet_m3h = min(night.baselines_m3h) if earlier is None else earlier.level_m3h
        self.flow = AcceptedFlow(flow_m3h, now_s, quiet_m3h, carried_m3h=flow_m3h, hours=hours)
        self._down, self._level = 0.0, level
        self._excess, self._readings = [0.0] * 24, [0] * 24

    def installed(self, artifact: ModelArtifact, night: NightWatch) -> None:
        """A model was installed: give its nights the two levels if it was trained on
        readings from before the verdict; stop carrying if it learned the flow."""
        flow = self.flow
        if flow is None:
            return
        apart_m3h = SHOWN_SHARE * flow.flow_m3h
        for level_m3h in flow.levels_for(artifact):
            spread = ACCEPTED_SPREAD * flow.flow_m3h if level_m3h > flow.quiet_m3h else 0.0
            night.add_level(level_m3h, apart_m3h, sigma_m3h=spread)
        if flow.learned_by(artifact):
            self.flow = replace(flow, carried_m3h=0.0)  # its profile has it

    def carry(self, flow_m3h: float, expected_m3h: float, sigma_m3h: float, h: float) -> bool:
        """Stop carrying once the flow (less an open lasting leak's) is back down to
        ``expected_m3h``, the profile times the level as it was at the verdict (the
        level itself adapts to the flow). A CUSUM, over σ, of how far each reading's
        excess falls short of half the accepted flow: the allowance halfway between
        "still there" and "gone", so that a flow small beside σ is not ended by the
        noise (until the sixteenth round the allowance was 0.5 σ, whatever the flow).
        True if it stopped."""
        flow = self.flow
        if flow is None:
            return False
        shortfall_m3h = SHOWN_SHARE * flow.flow_m3h - (flow_m3h - expected_m3h)
        self._down = max(0.0, self._down + shortfall_m3h / sigma_m3h)
        if self._down <= h:
            return False
        self.flow = replace(flow, carried_m3h=0.0)
        return True

    def watch(
        self, flow_m3h: float, expected_m3h: float, sigma_m3h: float, h: float, hour: int
    ) -> tuple[bool, int | None]:
        """One reading at the local ``hour`` while the flow is carried (``expected_m3h``:
        what the level expected at the verdict): whether the carry stopped
        (:meth:`carry`), and a further hour now known to show the flow
        (:meth:`watch_hour`), or None."""
        stopped = self.carry(flow_m3h, expected_m3h, sigma_m3h, h)
        if self.flow is None or self.carried_m3h <= 0.0:
            return stopped, None
        return stopped, self.watch_hour(hour, flow_m3h - expected_m3h)

    def watch_hour(self, hour: int, excess_m3h: float) -> int | None:
        """One reading's excess over what was expected at the verdict, while carried.
        At the end of a local hour that the flow was not known at, and whose readings
        since the verdict show it on average (half of it, at least), that hour: the
        history must then carry the flow at that hour too. Else None. The mean runs
        over every day since the verdict, so that one noisy hour decides neither way."""
        flow = self.flow
        if flow is None or not flow.hours:
            return None
        ended, self._hour = self._hour, hour
        self._excess[hour] += excess_m3h
        self._readings[hour] += 1
        if ended in (-1, hour) or ended in flow.hours:
            return None
        if self._excess[ended] < SHOWN_SHARE * flow.flow_m3h * self._readings[ended]:
            return None
        hours = tuple(sorted((*flow.hours, ended)))
        self.flow = replace(flow, hours=() if len(hours) == 24 else hours)
        return ended

    def level_at_verdict(self, level: float) -> float:
        """The burst watch's level when the flow was accepted (this one, the first time)."""
        if self._level <= 0.0:
            self._level = level
        return self._level

    def after_night(self, mean_m3h: float) -> AcceptedFlow | None:
        """After a night of ``mean_m3h`` (weekday-equivalent): the flow taken back if
        the nights stopped showing it, else None."""
        if self.flow is None:
            return None
        self.flow = self.flow.after_night(mean_m3h)
        if not self.flow.gone:
            return None
        gone, self.flow = self.flow, None
        return gone
