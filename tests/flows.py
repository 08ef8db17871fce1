"""Synthetic flow series for detection unit tests: a diurnal demand in local time.

Deliberately simple and independent of the simulator, so that a detection test
fails for a detection reason. Flows are ``base × shape(local hour) × day factor ×
(1 + noise)``; Sundays and the listed holidays are 10 % higher.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the DST change is on 29 March


def shape(local_hour: float) -> float:
    """Night trough ≈ 0.35 at 3 am, morning and evening peaks ≈ 1.6."""
    morning = math.exp(-(((local_hour - 8) / 2) ** 2))
    evening = math.exp(-(((local_hour - 19.5) / 2.5) ** 2))
    return 0.35 + 1.25 * morning + 1.1 * evening


def series(
    days: int,
    *,
    base_m3h: float = 20.0,
    noise: float = 0.02,
    interval_s: int = 300,
    seed: int = 1,
    holidays: Iterable[date] = (),
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(epoch seconds, flow m³/h)`` every ``interval_s`` from :data:`START`."""
    rng = np.random.default_rng(seed)
    off_days = set(holidays)
    steps = np.arange(days * 86_400 // interval_s, dtype=np.float64)
    epoch: npt.NDArray[np.float64] = START.timestamp() + steps * float(interval_s)
    flow = np.empty_like(epoch)
    for i, t in enumerate(epoch):
        local = datetime.fromtimestamp(float(t), PARIS)
        factor = 1.1 if local.weekday() == 6 or local.date() in off_days else 1.0
        flow[i] = base_m3h * shape(local.hour + local.minute / 60) * factor
    flow *= 1 + noise * rng.standard_normal(epoch.size)
    return epoch, flow


def night_mean(epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64]) -> float:
    """Mean flow between 01:00 and 05:00 local time."""
    hours = np.array([datetime.fromtimestamp(float(t), PARIS).hour for t in epoch])
    return float(flow[(hours >= 1) & (hours < 5)].mean())


def busy_days_series(days: int, seed: int = 5) -> tuple[npt.NDArray[np.float64], ...]:
    """The synthetic series with each local day busier or quieter by a shared factor
    (weather, occupancy), night and morning alike; also returns each reading's hour."""
    epoch, flow = series(days, seed=seed, noise=0.01)
    local = [datetime.fromtimestamp(float(t), PARIS) for t in epoch]
    ordinal = np.array([d.toordinal() for d in (x.date() for x in local)])
    factor = 1 + 0.05 * np.random.default_rng(seed).standard_normal(days + 2)
    flow = flow * factor[ordinal - ordinal[0]]
    return epoch, flow, np.array([x.hour for x in local])
