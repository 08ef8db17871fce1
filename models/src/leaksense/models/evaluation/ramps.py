"""How big a ramp is on the last night that can reveal it before its deadline.

A ramp (an incipient leak) must be found before it reaches 10 % of the night flow;
one that grows 8 % a day gets there about 27 h after it starts. Night-flow
detection judges a night when its window (01:00–05:00 local, the detectors' default)
closes, so what it can show is the ramp's size on the last whole night after its
start whose last reading arrives by the deadline. A ramp that starts in the evening
has no such night: its first night is hours old and the next one comes too late. It
says which ramps any night-flow detector can find in time (docs/detection.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.models.evaluation.build import LabelledLeak

_NIGHT = DetectionParams()


def last_night_pct(leak: LabelledLeak, zone: ZoneInfo, interval_s: float) -> float | None:
    """A ramp's size (% of night flow) mid-way through the last whole night window
    after its start that is over by its deadline; None when it has no such night."""
    start = datetime.fromtimestamp(leak.start_s, UTC).astimezone(zone).date()
    day = datetime.fromtimestamp(leak.deadline_s, UTC).astimezone(zone).date()
    while day >= start:
        begin_s = _local_s(day, _NIGHT.night_start_hour, zone)
        end_s = _local_s(day, _NIGHT.night_end_hour, zone)
        if begin_s >= leak.start_s and end_s + interval_s <= leak.deadline_s:
            return 100 * leak.flow_at((begin_s + end_s) / 2) / leak.night_flow_m3h
        day -= timedelta(days=1)
    return None


def _local_s(day: date, hour: int, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(hour), tzinfo=zone).timestamp()
