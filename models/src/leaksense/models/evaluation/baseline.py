"""The plain minimum-night-flow (MNF) rule, the baseline every learned part must beat.

Per series: the minimum reading between 00:00 and 06:00 local time of each day;
alarm when today's minimum exceeds the smallest of the previous ten days' minimums
by 10 %. Consecutive alarm days are one event, detected when the first alarm night
ends (its minimum is only known then: when its last reading has arrived, one
interval after the start it is stamped with). A night with under 60 % of its readings (a
gap, or the edge of the data) has no minimum, as the engine skips such nights too.
It has no model, no health check and no warm-up beyond its ten days of history,
which is exactly what makes it a fair yardstick: anything cleverer has to find more
leaks, sooner, or alarm less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leaksense.core.messages import AlertKind
from leaksense.edge.detection.clock import LocalClock
from leaksense.models.evaluation.events import AlertEvent

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MnfRule:
    """The rule's constants: window (local hours), margin and history."""

    start_hour: int = 0
    end_hour: int = 6
    margin: float = 0.10
    history_days: int = 10
    min_history_days: int = 3
    min_coverage: float = 0.6
    """A night with fewer readings (a gap, the window's edge) has no minimum."""


@dataclass(slots=True)
class _Night:
    minimum: float
    first_s: float
    last_s: float
    count: int = 1


def _nights(
    times_s: FloatArray, flow: FloatArray, clock: LocalClock, rule: MnfRule
) -> dict[int, _Night]:
    nights: dict[int, _Night] = {}
    for t, y in zip(times_s.tolist(), flow.tolist(), strict=True):
        day, _, _, hour = clock.locate(t)
        if not rule.start_hour <= hour < rule.end_hour:
            continue
        key = day.toordinal()
        night = nights.get(key)
        if night is None:
            nights[key] = _Night(y, t, t)
        else:
            night.minimum = min(night.minimum, y)
            night.last_s = t
            night.count += 1
    interval_s = float(np.median(np.diff(times_s))) if times_s.size > 1 else 3600.0
    expected = (rule.end_hour - rule.start_hour) * 3600 / max(interval_s, 1.0)
    return {d: n for d, n in nights.items() if n.count >= rule.min_coverage * expected}


def mnf_events(
    series_id: str,
    times_s: FloatArray,
    flow_m3h: FloatArray,
    clock: LocalClock,
    rule: MnfRule | None = None,
) -> list[AlertEvent]:
    """The rule's alarm events on one series (readings in time order)."""
    rule = rule or MnfRule()
    nights = _nights(times_s, flow_m3h, clock, rule)
    interval_s = float(np.median(np.diff(times_s))) if times_s.size > 1 else 0.0
    events: list[AlertEvent] = []
    previous_alarm = -10
    for day in sorted(nights):
        history = [nights[d].minimum for d in range(day - rule.history_days, day) if d in nights]
        if len(history) < rule.min_history_days:
            continue
        floor = min(history)
        tonight = nights[day]
        if tonight.minimum <= floor + rule.margin * abs(floor):
            continue
        if previous_alarm != day - 1:
            events.append(
                AlertEvent(
                    alert_id=f"mnf:{series_id}:{day}",
                    series_id=series_id,
                    kind=AlertKind.BACKGROUND_LEAK.value,
                    fault=None,
                    started_s=tonight.first_s,
                    detected_s=tonight.last_s + interval_s,
                    ended_s=None,
                    flow_m3h=tonight.minimum - floor,
                    explanation=f"night minimum {tonight.minimum:.3f} > {floor:.3f} m³/h + 10 %",
                )
            )
        events[-1].ended_s = tonight.last_s
        previous_alarm = day
    return events
