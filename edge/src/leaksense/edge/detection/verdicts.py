"""What a judged night does to the leak events of one series.

The night watch (night.py) says how a night compares with its level; this module
decides what that means for the open events (events.py). A burst that a whole
night did not show closes (``burst_night_share``); one that the night showed and
that is past ``burst_max_h`` goes on as a lasting leak. With no leak open, a night
that alarms opens a background-leak alert and a normal one joins the baseline. An
open lasting leak is updated, closes after two nights back under the allowance, or
(``night_jump_z``) gives way to a new one.
"""

from __future__ import annotations

from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection import texts
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.burst import BurstWatch
from leaksense.edge.detection.events import Event, EventBook
from leaksense.edge.detection.night import NightVerdict, NightWatch

BURST = "burst"
NIGHT = "night"


class NightCourse:
    """The course of one series' leak events, night by night."""

    __slots__ = ("_book", "_rise", "burst_judged", "normal_nights")

    def __init__(self, book: EventBook, rise: BurstWatch) -> None:
        self._book, self._rise = book, rise
        self.normal_nights = 0
        """Nights in a row back under the allowance while a lasting leak is open."""
        self.burst_judged = False
        """Has a whole night been judged since the open burst was alerted?"""

    def lasting(self) -> None:
        """The open burst goes on as a lasting leak: the same event, the night's now."""
        self._book.rename(BURST, NIGHT)
        self.normal_nights = 0

    def burst_ends(
        self, epoch_s: float, burst: Event, back: bool, max_h: float, alerts: list[Alert]
    ) -> bool | None:
        """Does the open ``burst`` end at this reading? True: it closed, the flow came
        ``back``. False: not repaired after ``max_h``, it goes on as a lasting leak
        (or, one being open, that leak takes its flow over and it closes). None: it
        goes on. A whole night judges a burst first (``burst_night_share``): one
        alarmed at 03:00 waits for the next night's verdict, or for twice ``max_h``
        without one."""
        book = self._book
        age_h = (epoch_s - burst.detected_s) / 3600
        stale = age_h > max_h and (self.burst_judged or age_h > 2 * max_h)
        if not (back or stale):
            return None
        if stale and (night := book.get(NIGHT)) is not None:
            # A lasting leak is open too: it takes the burst's flow over (so the flow
            # stays expected) and the burst closes, freeing its CUSUM.
            flow_m3h = max(night.flow_m3h, 0.0) + max(burst.flow_m3h, 0.0)
            msg = (night.explanation_en, night.explanation_fr)
            update = book.update(NIGHT, epoch_s, flow_m3h, night.confidence, msg)
            alerts.extend(a for a in [update, book.close(BURST, epoch_s)] if a is not None)
        elif stale:
            self.lasting()
        else:
            alerts.extend(a for a in [book.close(BURST, epoch_s)] if a is not None)
        return not stale

    def judge(
        self,
        epoch_s: float,
        verdict: NightVerdict,
        watch: NightWatch,
        *,
        params: DetectionParams,
        night_sigma_m3h: float,
        alerts: list[Alert],
    ) -> bool:
        """Apply one night's verdict. True when an open burst closed as not seen at
        night: the series' level, frozen with it, must start afresh."""
        book, fresh = self._book, False
        burst = book.get(BURST)
        if burst is not None:
            if not self._unseen(burst, verdict, params):
                # The open burst explains this night: it is no evidence of another leak.
                watch.forget_evidence()
                self.burst_judged = burst.detected_s <= verdict.night_start_s
                age_s = epoch_s - burst.detected_s
                if self.burst_judged and age_s > 3600 * params.burst_max_h:
                    self._lasts(epoch_s, verdict, params, alerts)
                return False
            msg = texts.unseen(burst.opened_flow_m3h, verdict.plain_excess_m3h)
            alerts.extend(a for a in [book.close(BURST, epoch_s, msg)] if a is not None)
            self._rise.reset()
            fresh = True
        if book.get(NIGHT) is None:
            # The CUSUM says "evidence enough"; this night must also be high itself,
            # so the tail of an old excess (a burst night) does not alarm on its own.
            if verdict.alarm and verdict.z > params.night_k:
                alerts.append(self._open(verdict.evidence_start_s, epoch_s, verdict, params))
            elif verdict.normal:
                watch.accept(verdict)
            return fresh
        if self._follow(epoch_s, verdict, params, night_sigma_m3h, alerts):
            watch.forget_evidence()  # the closed event used it: a new one starts afresh
        return fresh

    def _follow(
        self,
        epoch_s: float,
        verdict: NightVerdict,
        p: DetectionParams,
        sigma_m3h: float,
        alerts: list[Alert],
    ) -> bool:
        """A night while a lasting leak is open: it is updated, or gives way to a new
        one, or (True) the leak ends."""
        book = self._book
        leak = book.get(NIGHT)
        assert leak is not None
        # The event ends after two nights back under the allowance (a repair; or,
        # for a false alarm, the normal that came back).
        self.normal_nights = self.normal_nights + 1 if verdict.z < p.night_k else 0
        if self.normal_nights >= 2:
            alerts.extend(a for a in [book.close(NIGHT, epoch_s)] if a is not None)
            return True
        jump_z = (verdict.excess_m3h - leak.flow_m3h) / sigma_m3h
        if 0.0 < p.night_jump_z < jump_z and book.get(BURST) is None:
            # A further sudden rise of the night flow: a new leak beside the known one.
            closed = book.close(NIGHT, epoch_s)
            opened = self._open(verdict.night_start_s, epoch_s, verdict, p)
            alerts.extend(a for a in [closed, opened] if a is not None)
            return False
        flow_m3h = max(verdict.excess_m3h, 0.0)
        update = book.update(
            NIGHT, epoch_s, flow_m3h, _confidence(verdict, p), _message(verdict, p)
        )
        alerts.extend(a for a in [update] if a is not None)
        return False

    def _open(
        self, started_s: float, epoch_s: float, verdict: NightVerdict, params: DetectionParams
    ) -> Alert:
        """Open a background-leak alert from a night that alarmed."""
        self.normal_nights = 0
        return self._book.open(
            NIGHT,
            AlertKind.BACKGROUND_LEAK,
            started_s=started_s,
            now_s=epoch_s,
            flow_m3h=verdict.excess_m3h,
            confidence=_confidence(verdict, params),
            texts=_message(verdict, params),
        )

    def _unseen(self, burst: Event, verdict: NightVerdict, params: DetectionParams) -> bool:
        """Did a whole night that the open burst spanned show too little of its flow?"""
        share = params.burst_night_share
        if share <= 0.0 or burst.detected_s > verdict.night_start_s:
            return False
        lasting = self._book.get(NIGHT)
        known = 0.0 if lasting is None else max(lasting.flow_m3h, 0.0)
        return verdict.plain_excess_m3h - known < share * burst.opened_flow_m3h

    def _lasts(
        self, epoch_s: float, verdict: NightVerdict, params: DetectionParams, alerts: list[Alert]
    ) -> None:
        """A burst past ``burst_max_h`` that this night showed: the same event goes on
        as a lasting leak, at the flow the night shows (with no lasting leak open)."""
        if self._book.get(NIGHT) is not None:
            return  # the burst's next reading hands its flow to the open leak
        self.lasting()
        self._rise.reset()
        flow_m3h = max(verdict.excess_m3h, 0.0)
        msg = _message(verdict, params)
        update = self._book.update(NIGHT, epoch_s, flow_m3h, _confidence(verdict, params), msg)
        alerts.extend(a for a in [update] if a is not None)


def _confidence(verdict: NightVerdict, params: DetectionParams) -> float:
    return min(1.0, verdict.cusum / (2 * params.night_h))


def _message(verdict: NightVerdict, params: DetectionParams) -> tuple[str, str]:
    return texts.night(verdict.excess_m3h, verdict.baseline_m3h, params.night_baseline_nights)
