"""Turn a :class:`Scenario` into readings, billing and ground truth, deterministically.

Convention: the reading at ``t`` carries the mean flow over ``[t, t + interval_s)``
and the meter index *at* ``t``, so ``index[k + 1] = index[k] + flow[k] * interval``
and a day's volume is the sum of its readings' flows times the interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from leaksense.core.messages import Reading
from leaksense.simulator.scenario import SECONDS_PER_DAY, LeakSpec, Scenario

FloatArray = npt.NDArray[np.float64]

# Hourly domestic demand shape (multiplier at hh:00), low at night, morning and
# evening peaks; interpolated between hours and normalised to a daily mean of 1.
_PROFILE_BY_HOUR = np.array(
    [0.45, 0.40, 0.37, 0.36, 0.38, 0.50, 0.85, 1.35, 1.50, 1.30, 1.15, 1.10,
     1.20, 1.15, 1.00, 0.95, 1.00, 1.15, 1.35, 1.45, 1.30, 1.05, 0.80, 0.60],
)  # fmt: skip
_FLOW_DECIMALS = 4  # 0.1 L/h: a meter's resolution, and short CSV lines
_INDEX_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class BilledPeriod:
    """Volume billed to the DMA's customers over ``[period_start, period_end)``."""

    dma_id: str
    period_start: datetime
    period_end: datetime
    volume_m3: float


@dataclass(frozen=True, slots=True)
class Truth:
    """What really happened, for scoring detectors and checking reports."""

    scenario: str
    site: str
    dma_id: str
    seed: int
    start: datetime
    end: datetime
    interval_s: int
    consumption_m3_per_day: float
    leaks: tuple[LeakSpec, ...]
    nominal_consumption_m3: float
    nominal_leakage_m3: float

    @property
    def nominal_distributed_m3(self) -> float:
        """Volume put into distribution without noise: consumption plus leaks."""
        return self.nominal_consumption_m3 + self.nominal_leakage_m3


@dataclass(frozen=True, slots=True)
class Simulation:
    """Readings of every sensor (time-ordered), billing and truth for one seed."""

    scenario: Scenario
    readings: list[Reading]
    billing: list[BilledPeriod]
    truth: Truth


def step_offsets_s(scenario: Scenario) -> FloatArray:
    """Seconds from the scenario start to each reading."""
    steps = scenario.days * (SECONDS_PER_DAY // scenario.interval_s)
    return np.arange(steps, dtype=np.float64) * scenario.interval_s


def diurnal_profile(scenario: Scenario) -> FloatArray:
    """Demand multiplier per step; every 24 h window averages exactly 1."""
    start = scenario.start.astimezone(UTC)
    start_of_day_s = start.hour * 3600 + start.minute * 60 + start.second
    hours = ((start_of_day_s + step_offsets_s(scenario)) % SECONDS_PER_DAY) / 3600
    profile: FloatArray = np.interp(hours, np.arange(24.0), _PROFILE_BY_HOUR, period=24)
    return profile / float(profile[: SECONDS_PER_DAY // scenario.interval_s].mean())


def _leak_flows_m3h(scenario: Scenario, offsets_s: FloatArray) -> FloatArray:
    total = np.zeros_like(offsets_s)
    for leak in scenario.leaks:
        begin_s = (leak.start - scenario.start).total_seconds()
        end_s = (
            math.inf
            if leak.repaired_at is None
            else (leak.repaired_at - scenario.start).total_seconds()
        )
        total += np.where((offsets_s >= begin_s) & (offsets_s < end_s), leak.flow_m3h, 0.0)
    return total


def _flows_m3h(
    scenario: Scenario, rng: np.random.Generator
) -> tuple[dict[str, FloatArray], FloatArray, FloatArray]:
    """Per-sensor flows, plus the DMA's true consumption and leak flows behind the inlet."""
    profile = diurnal_profile(scenario)

    def noisy(mean_m3h: float) -> FloatArray:
        factor = 1 + scenario.noise_fraction * rng.standard_normal(profile.size)
        return np.clip(mean_m3h * profile * factor, 0.0, None)

    consumption_m3h = noisy(scenario.consumption_m3_per_day / 24)
    leaks_m3h = _leak_flows_m3h(scenario, step_offsets_s(scenario))
    flows = {
        s.sensor_id: noisy(s.mean_flow_m3h).round(_FLOW_DECIMALS)
        for s in scenario.sensors
        if s.mean_flow_m3h is not None
    }
    inlet_m3h = consumption_m3h + leaks_m3h
    for sensor in scenario.sensors:
        if sensor.role == "outlet":  # water crossing the DMA passes the inlet too
            inlet_m3h = inlet_m3h + flows[sensor.sensor_id]
    flows[scenario.inlet.sensor_id] = inlet_m3h.round(_FLOW_DECIMALS)
    return flows, consumption_m3h, leaks_m3h


def _readings(scenario: Scenario, flows: dict[str, FloatArray]) -> list[Reading]:
    """Time-ordered readings of every sensor, with indexes integrated from the flows."""
    step_h = scenario.interval_s / 3600
    start = scenario.start.astimezone(UTC)
    times = [start + timedelta(seconds=float(s)) for s in step_offsets_s(scenario)]
    columns = []
    for sensor in scenario.sensors:
        flow = flows[sensor.sensor_id]
        index = sensor.initial_index_m3 + np.concatenate(([0.0], np.cumsum(flow * step_h)[:-1]))
        columns.append((sensor.sensor_id, flow.tolist(), index.round(_INDEX_DECIMALS).tolist()))
    return [
        Reading(sensor_id=sensor_id, time=time, flow_m3h=flow[k], index_m3=index[k])
        for k, time in enumerate(times)
        for sensor_id, flow, index in columns
    ]


def simulate(scenario: Scenario, seed: int) -> Simulation:
    """Generate the scenario; the same ``(scenario, seed)`` gives identical output."""
    flows, consumption_m3h, leaks_m3h = _flows_m3h(scenario, np.random.default_rng(seed))
    step_h = scenario.interval_s / 3600
    truth = Truth(
        scenario=scenario.name,
        site=scenario.site,
        dma_id=scenario.dma_id,
        seed=seed,
        start=scenario.start.astimezone(UTC),
        end=scenario.end.astimezone(UTC),
        interval_s=scenario.interval_s,
        consumption_m3_per_day=scenario.consumption_m3_per_day,
        leaks=scenario.leaks,
        nominal_consumption_m3=scenario.consumption_m3_per_day * scenario.days,
        nominal_leakage_m3=float(leaks_m3h.sum() * step_h),
    )
    return Simulation(
        scenario=scenario,
        readings=_readings(scenario, flows),
        billing=_bill(scenario, consumption_m3h * step_h),
        truth=truth,
    )


def _bill(scenario: Scenario, consumed_m3: FloatArray) -> list[BilledPeriod]:
    """Integrate true consumption (what the customers' meters saw) per billing period."""
    steps = scenario.billing_period_days * SECONDS_PER_DAY // scenario.interval_s
    start = scenario.start.astimezone(UTC)
    period = timedelta(days=scenario.billing_period_days)
    return [
        BilledPeriod(
            dma_id=scenario.dma_id,
            period_start=start + i * period,
            period_end=min(start + (i + 1) * period, scenario.end.astimezone(UTC)),
            volume_m3=round(float(consumed_m3[first : first + steps].sum()), 3),
        )
        for i, first in enumerate(range(0, consumed_m3.size, steps))
    ]


def volume_m3(
    readings: list[Reading], sensor_id: str, start: datetime, end: datetime, interval_s: int
) -> float:
    """Volume through ``sensor_id`` over ``[start, end)``, integrated from flows."""
    return sum(
        r.flow_m3h for r in readings if r.sensor_id == sensor_id and start <= r.time < end
    ) * (interval_s / 3600)
