"""Synthetic flow histories for the model-training tests, with a known true profile.

Independent of the simulator and of the detection tests' helpers, so a training
test fails for a training reason. Flow = true profile(day type, local time) ×
(1 + Gaussian noise); a leak adds a constant flow over a window, spikes are single
readings far above normal.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from leaksense.core.messages import Reading

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, no DST change for weeks
FloatArray = npt.NDArray[np.float64]


def true_flow_m3h(day_type: int, local_hour: float, base_m3h: float = 20.0) -> float:
    """Weekday: peaks at 7:30 and 19:30; Saturday: later, flatter; Sunday: lower, noon."""

    def bump(centre_h: float, width_h: float) -> float:  # wraps around midnight
        centres = (centre_h - 24, centre_h, centre_h + 24)
        return sum(math.exp(-(((local_hour - c) / width_h) ** 2)) for c in centres)

    if day_type == 0:
        shape = 0.4 + 1.3 * bump(7.5, 1.8) + 1.0 * bump(19.5, 2.2)
    elif day_type == 1:
        shape = 0.45 + 0.9 * bump(10.0, 2.5) + 0.9 * bump(20.0, 2.5)
    else:
        shape = 0.4 + 0.8 * bump(12.0, 3.0) + 0.6 * bump(19.0, 2.5)
    return base_m3h * shape


def true_profile(base_m3h: float = 20.0) -> FloatArray:
    """The truth on the artifact's grid: 3 day types × 96 quarter-hour centres."""
    hours = (np.arange(96) + 0.5) / 4
    return np.array([[true_flow_m3h(k, h, base_m3h) for h in hours] for k in range(3)])


def day_type_of(local: datetime) -> int:
    return {5: 1, 6: 2}.get(local.weekday(), 0)


def history(
    days: float,
    *,
    base_m3h: float = 20.0,
    noise: float = 0.04,
    interval_s: int = 300,
    seed: int = 3,
    start: datetime = START,
) -> tuple[FloatArray, FloatArray]:
    """``(epoch seconds, flow m³/h)`` every ``interval_s`` from ``start``."""
    rng = np.random.default_rng(seed)
    epoch_s = start.timestamp() + np.arange(0, days * 86_400, interval_s, dtype=np.float64)
    flow = np.empty_like(epoch_s)
    for i, t in enumerate(epoch_s):
        local = datetime.fromtimestamp(float(t), PARIS)
        hour = local.hour + local.minute / 60 + local.second / 3600
        flow[i] = true_flow_m3h(day_type_of(local), hour, base_m3h)
    return epoch_s, flow * (1 + noise * rng.standard_normal(flow.size))


def with_leak(
    epoch_s: FloatArray, flow: FloatArray, start_day: float, days: float, leak_m3h: float
) -> FloatArray:
    """``flow`` plus a constant leak over ``[start_day, start_day + days)``."""
    t = (epoch_s - epoch_s[0]) / 86_400
    return flow + np.where((t >= start_day) & (t < start_day + days), leak_m3h, 0.0)


def with_spikes(flow: FloatArray, count: int, factor: float = 20.0, seed: int = 5) -> FloatArray:
    """``flow`` with ``count`` isolated readings multiplied by ``factor``."""
    spiked = flow.copy()
    at = np.random.default_rng(seed).choice(flow.size, count, replace=False)
    spiked[at] *= factor
    return spiked


def readings(sensor_id: str, epoch_s: FloatArray, flow: FloatArray) -> list[Reading]:
    return [
        Reading(sensor_id=sensor_id, time=datetime.fromtimestamp(float(t), UTC), flow_m3h=float(f))
        for t, f in zip(epoch_s, flow, strict=True)
    ]
