"""Detection on one flow series (a meter, or a DMA's net inflow), causal and cheap.

Per reading, in this order: sensor health (health.py: the sensor's clock, gaps,
impossible values, flatline, counter resets; then isolated spikes, against the
model) — a faulty reading never feeds leak detection and a fault pauses it; then
a CUSUM on residuals against the learned time-of-week profile scaled by the recent
level (bursts, burst.py); then the night-flow watch (background and incipient
leaks, night.py, and what a judged night does to the open events, verdicts.py);
then continuous flow for customer meters (continuous.py). This module holds them
together: what is expected, when to refit, how an alarm becomes an alert.
Everything in the hot path is plain float arithmetic (a few µs per reading on a
Raspberry Pi).
"""

from __future__ import annotations

import math
from pathlib import Path

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection import texts
from leaksense.edge.detection.accepted import Acceptance
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.burst import BurstWatch
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.continuous import ContinuousFlow
from leaksense.edge.detection.eventfile import SeriesState, load_state, save_state
from leaksense.edge.detection.events import EventBook
from leaksense.edge.detection.fit import INTERMITTENT_FRACTION, fit_artifact
from leaksense.edge.detection.health import SensorHealth
from leaksense.edge.detection.history import HistoryStore, MemoryHistory
from leaksense.edge.detection.level import RecentLevel
from leaksense.edge.detection.modelfile import load_model, save_model
from leaksense.edge.detection.night import NightVerdict, NightWatch
from leaksense.edge.detection.recent import RecentExcess
from leaksense.edge.detection.verdicts import BURST, NIGHT, NightCourse

GUARD_S = 3600.0
"""Leak detection stays paused this long after a sensor fault ends."""
RESUME_WITHIN_S = 36 * 3600.0
"""What a series saved before a restart (night evidence and windows, the recurring-
excess memory, the recent level, the open leaks' volume since) is taken back if saved
this recently (a gateway down for days has missed nights: they were no evidence)."""
REST_FRACTION = 0.05
"""A customer's meter is watched for continuous flow if it rested this share of its
training readings."""
SPIKE_PEAK_FACTOR = 5.0
"""A spike reads more than this many times the series' training peak (p99.5)."""


class SeriesDetector:
    """All detectors of one series, warming up on its own data until it has a model."""

    def __init__(
        self,
        series_id: str,
        *,
        gateway_id: str,
        clock: LocalClock,
        is_dma: bool = False,
        customer: bool = False,
        warmup_s: float = 14 * 86_400.0,
        clock_tolerance_s: float = 300.0,
        interval_s: float = 300.0,
        params: DetectionParams | None = None,
        history: HistoryStore | None = None,
        events_file: Path | None = None,
        model_file: Path | None = None,
    ) -> None:
        self.series_id = series_id
        self.book = EventBook(gateway_id, series_id, is_dma)
        # Open events kept across restarts (the gateway; eventfile.py), or not (None).
        self._events_file = events_file
        # The events file is to be written: a night was judged, or an hour went by.
        self._save_due = False
        self._saved_hour = -1
        self._resumed: SeriesState | None = None
        if events_file is not None:
            self._resumed = load_state(events_file, self.book)
        # A flow people judged normal (accepted.py), kept however long the gateway
        # was down: it is a verdict, not evidence.
        self._accepted = Acceptance(None if self._resumed is None else self._resumed.accepted)
        self._installed: ModelArtifact | None = None  # as trained, before that flow
        # The model it trained itself, kept across restarts (modelfile.py), or not.
        self._model_file = model_file
        self._own_model = None if model_file is None else load_model(model_file, series_id)
        self.clock = clock
        self.is_dma, self.customer = is_dma, customer
        self.warmup_s = warmup_s
        self.params = params or DetectionParams()
        self._overrides = self.params
        self._base_params = self.params
        self.threshold_multiplier = 1.0
        self.artifact: ModelArtifact | None = None
        self._night: NightWatch  # set with the first artifact (install)
        self.out_of_order = 0
        # Refit history, 8 bytes a reading, in RAM or in a file (the gateway; history.py).
        self.history: HistoryStore = MemoryHistory() if history is None else history
        self._next_refit_s = math.inf
        self._last_s: float | None = None
        self._pause_until_s = 0.0
        self._suspects = 0
        self._continuous = ContinuousFlow(self.book)
        self._rise = BurstWatch(self.params, interval_s)  # the burst CUSUMs, short tests
        self._course = NightCourse(self.book, self._rise)  # what judged nights do
        self._step_sigma: list[float] | None = None
        self.health = SensorHealth(
            self.book,
            self._pause,
            self.params,
            is_dma=is_dma,
            clock_tolerance_s=clock_tolerance_s,
            interval_s=interval_s,
        )
        self._level = RecentLevel(self.params.level_half_life_h)
        self._recent: RecentExcess | None = None
        self._member_change_s: dict[str, float] = {}

    # -- model ---------------------------------------------------------------------
    def install(self, artifact: ModelArtifact) -> None:
        """Use a (verified) artifact from now on; one trained before people accepted a
        flow expects it on some nights (accepted.py)."""
        self._installed = artifact
        self._use_model(artifact)
        self._accepted.installed(artifact, self._night)

    def _use_model(self, artifact: ModelArtifact) -> None:
        previous: NightWatch | None = None if self.artifact is None else self._night
        self.artifact = artifact
        # Thresholds the gateway's config sets explicitly win over the artifact's.
        overrides = {k: getattr(self._overrides, k) for k in self._overrides.model_fields_set}
        self._base_params = artifact.params.model_copy(update=overrides)
        self._rise.interval_s = artifact.interval_s  # the interval it was trained on
        self._use_params(self._tuned(self._base_params))
        self.health.night_baseline_m3h = artifact.night_baseline_m3h
        self._profile = [list(row) for row in artifact.profile_m3h]
        self._sigma = list(artifact.sigma_m3h)
        step = artifact.step_sigma_m3h
        self._step_sigma = None if step is None or len(step) != 24 else list(step)
        self._min_burst_m3h = self.params.burst_min_fraction * artifact.mean_flow_m3h
        self._intermittent = self.customer or artifact.zero_fraction > INTERMITTENT_FRACTION
        # A customer whose meter never rested in training (a farm's troughs, a
        # hospital) uses water day and night: continuous flow is its normal life.
        self._rests = artifact.zero_fraction >= REST_FRACTION
        # A spike is far above both what is expected and what the series ever does.
        expected_m3h = 3.0 * max(max(row) for row in self._profile) + 3.0 * max(self._sigma)
        self.health.absurd_m3h = max(expected_m3h, SPIKE_PEAK_FACTOR * artifact.peak_flow_m3h)
        night_h = self.params.night_end_hour - self.params.night_start_hour
        night = NightWatch(artifact, 3600 * night_h / artifact.interval_s, self.params)
        if previous is not None:  # a refit: the evidence so far is kept
            night.carry_over(previous)
        self._night = night
        if self._recent is None:  # kept across refits
            self._recent = RecentExcess(self.params.burst_memory_days, self.params.burst_memory_z)
        refit_s = 86_400 * self.params.refit_every_days
        self._next_refit_s = artifact.trained_to.timestamp() + refit_s

    def set_threshold_multiplier(self, multiplier: float) -> None:
        """False-alarm feedback (docs/alerts.md): scale the decision thresholds
        (``burst_h``, ``burst_window_z``, ``burst_step_z``, ``night_h``) by
        ``multiplier`` (≥ 1: only ever less sensitive)."""
        self.threshold_multiplier = multiplier
        self._use_params(self._tuned(self._base_params))
        if self.artifact is not None:
            self._night.set_threshold(self.params.night_h)

    def dismiss(self, alert_id: str, flow_m3h: float, resolution: str) -> Alert | None:
        """People judged the open event ``alert_id`` not a leak: close it and take
        ``flow_m3h`` (its flow at the verdict) as a normal night level (accepted.py).
        None: no such open event."""
        key = next((k for k in (BURST, NIGHT) if self.book.is_open(k, alert_id)), None)
        now_s = self._last_s
        if key is None or self._installed is None or now_s is None:
            return None
        flow = max(flow_m3h, 0.0)
        event = self.book.get(key)
        started_s = now_s if event is None else event.started_s
        # The local hours it was seen at (a farm's night irrigation is not learned by
        # day): a night alert's night window, a burst's open hours (every hour once
        # open a whole day). The level it took in before a night alert is left out.
        if key == NIGHT:
            hours = tuple(range(self.params.night_start_hour, self.params.night_end_hour))
            level = self._level.before(started_s)
        else:
            hours, level = self.clock.hours_between(started_s, now_s), 0.0
        self._accepted.accept(flow, now_s, self._night, hours, level)
        self.history.shift(now_s, flow, self.clock.at_hours(hours))
        closed = self.book.close(key, now_s, texts.dismissed(resolution, flow))
        self.install(self._installed)
        self._rise.reset()  # its evidence was gathered against the old expectation
        self._night.forget_evidence()
        self._save(now_s)
        return closed

    def _carry(
        self, flow_m3h: float, shape: float, level: float, sigma_m3h: float, hour: int
    ) -> None:
        """While the burst watch expects the accepted flow (``flow_m3h``: less an open
        lasting leak's; accepted.py): each new hour at which it shows gets it in the
        history before the verdict too, so the next refit learns it there."""
        acceptance = self._accepted
        at_verdict_m3h = shape * acceptance.level_at_verdict(level)
        h = self.params.burst_h
        stopped, seen = acceptance.watch(flow_m3h, at_verdict_m3h, sigma_m3h, h, hour)
        self._save_due |= stopped
        if seen is not None and (accepted := acceptance.flow) is not None:
            self.history.shift(accepted.since_s, accepted.flow_m3h, self.clock.at_hours((seen,)))
            self._save_due = True

    def close(self) -> None:
        """A clean shutdown: write the buffered history, and the events file as of the
        last reading (else it is as of its last write, up to hours before by day)."""
        self.history.close()
        if self._last_s is not None and self._resumed is None:  # (not taken back yet)
            self._save(self._last_s)

    def _save(self, epoch_s: float) -> None:
        if self._events_file is not None:
            save_state(self._events_file, self.book, self._saved(epoch_s))

    def _use_params(self, params: DetectionParams) -> None:
        """Detect with these thresholds from now on."""
        self.params = params
        self._rise.use(params)
        self._level.use(params.level_half_life_h)
        self.health.params = params

    def _tuned(self, params: DetectionParams) -> DetectionParams:
        m = self.threshold_multiplier
        if m == 1.0:
            return params
        scaled = {
            "burst_h": params.burst_h * m,
            "burst_window_z": params.burst_window_z * m,
            "burst_step_z": params.burst_step_z * m,
            "night_h": params.night_h * m,
        }
        return params.model_copy(update=scaled)

    def _remember(self, epoch_s: float, flow_m3h: float) -> None:
        """Keep a rolling window of normal history: the material of (re)fitting.

        Nothing is remembered while a leak is open or detection is paused, so a
        refit never learns a leak that is being alarmed.
        """
        if self._leak_open() or epoch_s < self._pause_until_s:
            return
        if self.history.append(epoch_s, flow_m3h) > 1.1 * self.warmup_s:
            self.history.drop_oldest(int(len(self.history) * 0.1))

    def _leak_open(self) -> bool:
        return self.book.get(BURST) is not None or self.book.get(NIGHT) is not None

    def _refit(self, epoch_s: float) -> None:
        """Fit from the remembered window: first after warm-up, then every few days,
        so the model follows seasons (irrigation months) and changes of habit."""
        if self.history.age_s(epoch_s) < 0.95 * self.warmup_s:
            return
        t, y = self.history.read()
        try:
            artifact = fit_artifact(
                self.series_id,
                t,
                y,
                self.clock,
                kind="dma" if self.is_dma else "sensor",
                params=self._base_params,
            )
        except InvalidInput:
            self._next_refit_s = epoch_s + 3600.0
            return
        self.install(artifact)
        if self._model_file is not None:
            save_model(self._model_file, artifact)
        # History stops while a leak is open: the next refit is counted from now,
        # not from the last remembered reading (else it would refit every reading).
        refit_s = 86_400 * self.params.refit_every_days
        self._next_refit_s = max(self._next_refit_s, epoch_s + refit_s)

    # -- per reading ---------------------------------------------------------------
    def observe(
        self,
        epoch_s: float,
        flow_m3h: float,
        index_m3: float | None = None,
        received_s: float | None = None,
    ) -> list[Alert]:
        """Feed one reading (in time order); returns new or updated alerts.

        ``received_s``: when the gateway received it (its clock is checked), or None
        (replayed data, a DMA's net inflow).
        """
        alerts = self._observe(epoch_s, flow_m3h, index_m3, received_s)
        if alerts or self._save_due:
            self._save(epoch_s)
            self._save_due = False
        return alerts

    def _saved(self, epoch_s: float) -> SeriesState:
        """What to keep across a restart, beside the open events."""
        if self.artifact is None or self._recent is None:
            return SeriesState()
        return SeriesState(
            self._night.evidence(epoch_s),
            self._recent.state(),
            self._accepted.state(),
            self._level.state() if self._level.started else None,
        )

    def _resume(self, epoch_s: float, resumed: SeriesState) -> None:
        """Take back what a restart lost, if it was saved recently enough."""
        evidence = resumed.night
        if evidence is None or epoch_s - evidence.saved_s > RESUME_WITHIN_S:
            return
        self._night.resume(evidence)
        # The open leaks went on while the gateway was down (at their last flow).
        self.book.accrue_all(epoch_s - evidence.saved_s)
        if resumed.recent is not None and self._recent is not None:
            self._recent.restore(resumed.recent)
        if resumed.level is not None:
            self._level.restore(resumed.level)

    def _observe(
        self, epoch_s: float, flow_m3h: float, index_m3: float | None, received_s: float | None
    ) -> list[Alert]:
        alerts: list[Alert] = []
        if received_s is not None:
            self.health.check_clock(epoch_s, received_s, alerts)
        if self._last_s is not None and epoch_s <= self._last_s:
            self.out_of_order += 1
            return alerts
        healthy = self.health.check(epoch_s, self._last_s, flow_m3h, index_m3, alerts)
        previous_s = self._last_s if self._last_s is not None else epoch_s
        self._last_s = epoch_s
        if not healthy:
            return alerts
        self._remember(epoch_s, flow_m3h)
        if self.artifact is None and self._own_model is not None:
            self.install(self._own_model)  # trained before a restart: until its refit
            self._own_model = None
        # No refit during a burst: it would restart the night watch mid-event.
        due = epoch_s >= self._next_refit_s and self.book.get(BURST) is None
        if self.artifact is None or due:
            if len(self.history):
                self._refit(epoch_s)
            if self.artifact is None:
                return alerts
        if self._resumed is not None:  # the first reading after a restart, with a model
            self._resume(epoch_s, self._resumed)
            self._resumed = None
        self._model_step(epoch_s, epoch_s - previous_s, flow_m3h, alerts)
        if self.customer and self._rests:
            continuous = self._continuous.observe(epoch_s, flow_m3h, self.params)
            alerts.extend(a for a in [continuous] if a is not None)
        return alerts

    def member_state(self, sensor_id: str, epoch_s: float, meter: SeriesDetector) -> None:
        """What a DMA series needs from one of its meters after each of its readings:
        when its value last changed (a stuck meter makes no burst) and its fault pause
        (a faulty meter's water balance is no evidence of a leak)."""
        self._member_change_s[sensor_id] = meter.health.flat_start_s
        if meter._pause_until_s > epoch_s and meter._pause_until_s > self._pause_until_s:
            self._pause_until_s = meter._pause_until_s
            self._rise.reset()
            if self.artifact is not None:
                self._night.reset()

    def _pause(self, epoch_s: float) -> None:
        self._pause_until_s = epoch_s + GUARD_S
        self._rise.reset()
        if self.artifact is not None:
            self._night.reset()

    # -- model-based detection -----------------------------------------------------
    def _model_step(self, epoch_s: float, dt_s: float, flow: float, alerts: list[Alert]) -> None:
        p = self.params
        day, day_type, slot, hour = self.clock.locate(epoch_s)
        shape = self._profile[day_type][slot]
        carried = self._accepted.carried_m3h
        if not self._level.started:
            self._level.start(flow - carried, shape)
        level = self._level.level
        lasting = self.book.get(NIGHT)
        # A lasting leak already alerted adds its flow to what is expected: a burst
        # is a further sudden rise, and the known leak does not alarm again. So does
        # a flow people judged normal, until it comes back down.
        lasting_m3h = 0.0 if lasting is None else max(lasting.flow_m3h, 0.0)
        expected = shape * level + lasting_m3h + carried
        sigma = self._sigma[hour]
        z = (flow - expected) / sigma
        if carried > 0.0:
            self._carry(flow - lasting_m3h, shape, level, sigma, hour)
        recent = self._recent
        assert recent is not None
        recent.roll(day, self._sigma)
        # The burst CUSUM also expects what came back at this hour on recent days.
        expected_burst = expected + recent.allowance_m3h[slot]
        z_burst = (flow - expected_burst) / sigma
        held = self.health.spike((epoch_s, flow, expected_burst, z_burst), alerts)
        if held is None:
            return
        self.book.accrue(BURST, dt_s)
        self.book.accrue(NIGHT, dt_s)
        if epoch_s < self._pause_until_s:
            return
        if not self._intermittent:
            for t_s, y, e, zz in held:
                self._burst(t_s, y, e, zz, alerts)
        # Learnt during alerts too: a false burst (a first irrigation night) must not
        # stop the pattern from being expected the next day; a real one is repaired.
        recent.add(slot, flow - expected)
        if not self._leak_open() and z < p.level_freeze_z:
            self._level.add(flow - carried, shape, dt_s)
        verdict = self._night.observe(epoch_s, day, day_type, hour, flow, shape=shape)
        if verdict is not None:
            self._night_verdict(epoch_s, verdict, alerts)
            self._save_due = True
        elif hour != self._saved_hour:
            # A crash then loses at most an hour: of the night being gathered, of
            # the recent level and of the day's recurring excess.
            self._save_due = True
        self._saved_hour = hour

    def _open_burst(self, epoch_s: float, flow: float, expected: float, z: float) -> Alert | None:
        """A burst alert, if the rise that alarms is a real one."""
        rise = self._rise
        excess, start_s = rise.excess_m3h, rise.start_s
        # A frozen value (of this series, or of a meter of this DMA) is no burst.
        changed_s = min(self._member_change_s.values(), default=math.inf)
        varied = min(self.health.flat_start_s, changed_s) > start_s
        if z <= 0.0 or excess < self._min_burst_m3h or not varied:
            return None
        return self.book.open(
            BURST,
            AlertKind.BURST,
            started_s=start_s,
            now_s=epoch_s,
            flow_m3h=excess,
            confidence=rise.confidence,
            texts=texts.burst(flow, excess, expected, start_s),
        )

    def _burst(
        self, epoch_s: float, flow: float, expected: float, z: float, alerts: list[Alert]
    ) -> None:
        p, book = self.params, self.book
        hour = self.clock.locate(epoch_s)[3]
        step_sigma = None if self._step_sigma is None else self._step_sigma[hour]
        window = self._rise.push(epoch_s, flow - expected, z, step_sigma)
        burst = book.get(BURST)
        if burst is None:
            self._course.burst_judged = False
            if self._rise.alarms(window):
                alerts.extend(a for a in [self._open_burst(epoch_s, flow, expected, z)] if a)
            return
        # Over (the flow came back), or not repaired after burst_max_h: a lasting leak
        # now, which the night watch updates and closes; the burst CUSUM is free again.
        back = self._rise.came_back(z)
        closed = self._course.burst_ends(epoch_s, burst, back, p.burst_max_h, alerts)
        if closed is not None:
            self._rise.reset()
            self._night.reset()  # tonight's window so far saw the burst: no evidence
            if closed:
                self._level.reset()
            return
        excess = 0.98 * burst.flow_m3h + 0.02 * (flow - expected)
        update = book.update(
            BURST,
            epoch_s,
            excess,
            burst.confidence,
            texts.burst(flow, excess, expected, burst.started_s),
        )
        alerts.extend(a for a in [update] if a is not None)

    def _night_verdict(self, epoch_s: float, verdict: NightVerdict, alerts: list[Alert]) -> None:
        assert self.artifact is not None
        sigma = self.artifact.night_sigma_m3h
        self._level.night_judged(verdict.night_start_s)
        if self._course.judge(
            epoch_s, verdict, self._night, params=self.params, night_sigma_m3h=sigma, alerts=alerts
        ):
            self._level.reset()  # the level froze with the burst: start afresh
        self._judged_accepted(epoch_s, verdict)

    def _judged_accepted(self, epoch_s: float, verdict: NightVerdict) -> None:
        """If the nights stop showing an accepted flow (a passing use), take it back:
        out of the history, out of the night levels (a model that learned it is
        refitted)."""
        if self._installed is None:
            return
        gone = self._accepted.after_night(verdict.mean_m3h / verdict.day_factor)
        if gone is None:
            return
        self.history.shift(gone.since_s, -gone.flow_m3h, self.clock.at_hours(gone.hours))
        if gone.learned_by(self._installed):
            self._refit(epoch_s)
        else:
            self.install(self._installed)
