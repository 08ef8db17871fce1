"""Turn a :class:`Scenario` into readings, billing and ground truth, deterministically.

The pipeline: true flows of every DMA (:mod:`network`) → what each meter registers
and reports (:mod:`meters`) → what a faulty sensor sends instead (:mod:`faults`),
plus bills (:mod:`billing`) and the truth (:mod:`balance`). Everything stays in
numpy columns (:class:`MeterSeries`); :attr:`Simulation.readings` builds the
validated :class:`Reading` objects only when asked, and files are written straight
from the columns (:mod:`files`).

Convention: the reading at ``t`` carries the mean flow over ``[t, t + interval_s)``
and the meter index *at* ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np

from leaksense.core.messages import Reading
from leaksense.simulator.balance import build_truth
from leaksense.simulator.billing import BilledPeriod, CustomerBill, bill
from leaksense.simulator.checks import grid_step_s
from leaksense.simulator.faults import Fault, apply_faults
from leaksense.simulator.meters import read, registered_m3h
from leaksense.simulator.network import DmaFlows, component_rng, dma_flows
from leaksense.simulator.scenario import Scenario, SensorSpec
from leaksense.simulator.timegrid import (
    FloatArray,
    IntArray,
    TimeGrid,
    from_unix_s,
    make_grid,
    unix_s,
)
from leaksense.simulator.truth import Truth

__all__ = ["BilledPeriod", "CustomerBill", "MeterSeries", "Simulation", "simulate", "volume_m3"]


@dataclass(frozen=True, eq=False)
class MeterSeries:
    """Readings of one sensor as columns (``times_s``: Unix seconds, as sent)."""

    sensor_id: str
    times_s: IntArray
    flow_m3h: FloatArray
    index_m3: FloatArray | None

    def __len__(self) -> int:
        return int(self.times_s.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MeterSeries):
            return NotImplemented
        same_index = (self.index_m3 is None and other.index_m3 is None) or (
            self.index_m3 is not None
            and other.index_m3 is not None
            and np.array_equal(self.index_m3, other.index_m3)
        )
        return (
            self.sensor_id == other.sensor_id
            and np.array_equal(self.times_s, other.times_s)
            and np.array_equal(self.flow_m3h, other.flow_m3h)
            and same_index
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Simulation:
    """Readings of every sensor, billing and truth for one seed."""

    scenario: Scenario
    seed: int
    series: tuple[MeterSeries, ...]
    billing: list[BilledPeriod]
    """Per DMA and billing period: the file ``leaksense server import-billing`` takes."""
    customer_billing: list[CustomerBill]
    truth: Truth

    @property
    def reading_count(self) -> int:
        return sum(len(s) for s in self.series)

    @cached_property
    def readings(self) -> list[Reading]:
        """Every reading, validated, in time order (sensors in scenario order at a tie)."""
        times, sensor, position = merged_order(self.series)
        moments = {int(t): from_unix_s(int(t)) for t in np.unique(times)}
        out = []
        for t, s, k in zip(times.tolist(), sensor.tolist(), position.tolist(), strict=True):
            column = self.series[s]
            index = None if column.index_m3 is None else float(column.index_m3[k])
            out.append(
                Reading(
                    sensor_id=column.sensor_id,
                    time=moments[t],
                    flow_m3h=float(column.flow_m3h[k]),
                    index_m3=index,
                )
            )
        return out

    def series_of(self, sensor_id: str) -> MeterSeries:
        return next(s for s in self.series if s.sensor_id == sensor_id)


def merged_order(series: tuple[MeterSeries, ...]) -> tuple[IntArray, IntArray, IntArray]:
    """``(time, sensor number, position in its series)`` of every reading, time-ordered."""
    times = np.concatenate([s.times_s for s in series])
    sensor = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in enumerate(series)])
    position = np.concatenate([np.arange(len(s), dtype=np.int64) for s in series])
    order = np.lexsort((sensor, times))
    return times[order], sensor[order], position[order]


def make_scenario_grid(scenario: Scenario) -> TimeGrid:
    school = [(r.start, r.end) for r in scenario.spec.school_holidays]
    return make_grid(
        scenario.start,
        scenario.days,
        grid_step_s(scenario.spec),
        scenario.zone,
        holidays=scenario.holidays(),
        school_holidays=school,
    )


def _faults(scenario: Scenario) -> list[tuple[str, Fault]]:
    return [
        (
            spec.sensor_id,
            Fault(
                kind=spec.kind,
                start_s=unix_s(scenario.at(spec.start)),
                end_s=None if spec.end is None else unix_s(scenario.at(spec.end)),
                count=spec.count,
                spike_flow_m3h=spec.spike_flow_m3h,
                drift_s_per_day=spec.drift_s_per_day,
            ),
        )
        for spec in scenario.spec.faults
    ]


def _true_flow(sensor: SensorSpec, flows: dict[str, DmaFlows]) -> FloatArray:
    dma = flows[sensor.dma_id]
    return dma.inlet_m3h if sensor.role == "inlet" else dma.customers_m3h[sensor.sensor_id]


def _meter_series(
    sensor: SensorSpec,
    true_m3h: FloatArray,
    grid: TimeGrid,
    faults: list[Fault],
    seed: int,
) -> MeterSeries:
    rng = component_rng(seed, "meter", sensor.sensor_id)
    output = read(
        sensor.meter,
        registered_m3h(sensor.meter, true_m3h),
        grid_step_s=grid.step_s,
        start_s=grid.start_s,
        interval_s=sensor.interval_s,
        initial_index_m3=sensor.initial_index_m3,
        rng=rng,
    )
    output = apply_faults(output, faults, component_rng(seed, "faults", sensor.sensor_id))
    return MeterSeries(sensor.sensor_id, output.times_s, output.flow_m3h, output.index_m3)


def simulate(scenario: Scenario, seed: int) -> Simulation:
    """Generate the scenario; the same ``(scenario, seed)`` gives identical output."""
    grid = make_scenario_grid(scenario)
    flows = dma_flows(scenario, grid, seed)
    faults = _faults(scenario)
    series = tuple(
        _meter_series(
            sensor,
            _true_flow(sensor, flows),
            grid,
            [f for s, f in faults if s == sensor.sensor_id],
            seed,
        )
        for sensor in scenario.sensors
    )
    billing, customer_billing = bill(
        scenario, grid, [a for f in flows.values() for a in f.accounts]
    )
    truth = build_truth(scenario, seed, grid, flows=flows, billing=billing, faults=faults)
    return Simulation(scenario, seed, series, billing, customer_billing, truth)


def volume_m3(series: MeterSeries, start: datetime, end: datetime, interval_s: int) -> float:
    """Volume through a meter over ``[start, end)``, integrated from its reported flows."""
    inside = (series.times_s >= unix_s(start)) & (series.times_s < unix_s(end))
    return float(series.flow_m3h[inside].sum() * interval_s / 3600)
