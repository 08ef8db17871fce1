"""Build the ground truth from the true flows: water balances, leaks, faults, events."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from leaksense.simulator.billing import BilledPeriod
from leaksense.simulator.faults import Fault
from leaksense.simulator.network import DmaFlows
from leaksense.simulator.scenario import Scenario
from leaksense.simulator.spec import LeakSpec
from leaksense.simulator.timegrid import (
    SECONDS_PER_DAY,
    FloatArray,
    TimeGrid,
    from_unix_s,
    unix_s,
)
from leaksense.simulator.truth import (
    TRUTH_FORMAT,
    DayTruth,
    DmaTruth,
    EventTruth,
    FaultTruth,
    LeakTruth,
    SensorTruth,
    Truth,
)

# UARL (water-loss-indicators.md §3), litres per day per metre of pressure
_UARL_L_PER_KM_MAINS = 18.0
_UARL_L_PER_CONNECTION = 0.8
_UARL_L_PER_KM_PRIVATE = 25.0


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def _daily(grid: TimeGrid, flow_m3h: FloatArray) -> FloatArray:
    """Volume per 24 h from the window start."""
    out: FloatArray = flow_m3h.reshape(-1, SECONDS_PER_DAY // grid.step_s).sum(1) * grid.step_h
    return out


def _network_leaks(scenario: Scenario) -> set[str]:
    return {leak.leak_id for leak in scenario.spec.leaks if leak.customer_meter is None}


def _days(scenario: Scenario, grid: TimeGrid, flows: DmaFlows) -> tuple[DayTruth, ...]:
    zeros = np.zeros(grid.n)
    registered = sum((a.registered_m3h for a in flows.accounts), zeros)
    network = _network_leaks(scenario)
    leaks = sum((f for k, f in flows.leaks_m3h.items() if k in network), zeros)
    inlet, exported, consumed, counted, unbilled, real = (
        _daily(grid, f)
        for f in (
            flows.inlet_m3h,
            flows.exported_m3h,
            flows.consumption_m3h,
            registered,
            flows.unbilled_m3h,
            leaks,
        )
    )
    return tuple(
        DayTruth(
            day_start=scenario.start + timedelta(days=d),
            system_input_m3=float(inlet[d]),
            exported_m3=float(exported[d]),
            consumed_m3=float(consumed[d]),
            registered_m3=float(counted[d]),
            unbilled_authorised_m3=float(unbilled[d]),
            real_losses_m3=float(real[d]),
            yield_pct=_pct(float(counted[d] + unbilled[d] + exported[d]), float(inlet[d])),
        )
        for d in range(scenario.days)
    )


def dma_truth(
    scenario: Scenario, grid: TimeGrid, flows: DmaFlows, billing: list[BilledPeriod]
) -> DmaTruth:
    """The water balance of one DMA over the window."""
    dma = flows.dma

    def volume(flow: FloatArray) -> float:
        return float(flow.sum() * grid.step_h)

    network = _network_leaks(scenario)
    real_m3 = sum(volume(f) for k, f in flows.leaks_m3h.items() if k in network)
    customer_side_m3 = sum(volume(f) for k, f in flows.leaks_m3h.items() if k not in network)
    system_input_m3, exported_m3 = volume(flows.inlet_m3h), volume(flows.exported_m3h)
    consumed_m3, unbilled_m3 = volume(flows.consumption_m3h), volume(flows.unbilled_m3h)
    billed_m3 = sum(b.volume_m3 for b in billing if b.dma_id == dma.dma_id)
    uarl_m3_per_day = (
        (
            _UARL_L_PER_KM_MAINS * dma.mains_km
            + _UARL_L_PER_CONNECTION * dma.service_connections
            + _UARL_L_PER_KM_PRIVATE * dma.private_pipes_km
        )
        * dma.avg_pressure_m
        / 1000
    )
    return DmaTruth(
        dma_id=dma.dma_id,
        inlet_sensor_id=dma.inlet.sensor_id,
        outlet_sensor_ids=tuple(d.inlet.sensor_id for d in scenario.downstream(dma.dma_id)),
        mains_km=dma.mains_km,
        service_connections=dma.service_connections,
        avg_pressure_m=dma.avg_pressure_m,
        min_pressure_m=float(flows.pressure_m.min()),
        max_pressure_m=float(flows.pressure_m.max()),
        legitimate_night_use_m3h=flows.night_use_m3h,
        system_input_m3=system_input_m3,
        exported_m3=exported_m3,
        consumed_m3=consumed_m3,
        billed_m3=billed_m3,
        unbilled_authorised_m3=unbilled_m3,
        apparent_losses_m3=consumed_m3 - billed_m3,
        real_losses_m3=real_m3,
        customer_side_leaks_m3=customer_side_m3,
        yield_pct=_pct(billed_m3 + unbilled_m3 + exported_m3, system_input_m3),
        yield_billed_only_pct=_pct(billed_m3 + exported_m3, system_input_m3),
        ilp_m3_per_km_day=(consumed_m3 - billed_m3 + real_m3) / (scenario.days * dma.mains_km),
        uarl_m3_per_day=uarl_m3_per_day,
        ili=real_m3 / scenario.days / uarl_m3_per_day if uarl_m3_per_day > 0 else 0.0,
        days=_days(scenario, grid, flows),
    )


def _leak_truth(
    scenario: Scenario, grid: TimeGrid, flows: dict[str, DmaFlows], spec: LeakSpec
) -> LeakTruth:
    flow = flows[spec.dma].leaks_m3h[spec.leak_id]
    begin = None if spec.start is None else scenario.at(spec.start)
    end = None if spec.repaired_at is None else scenario.at(spec.repaired_at)
    fraction = grid.active_fraction(
        -np.inf if begin is None else unix_s(begin), np.inf if end is None else unix_s(end)
    )
    running = np.flatnonzero(fraction > 0)
    rate = flow[running] / fraction[running]  # flow while running, partial steps included
    volume_m3 = float(flow.sum() * grid.step_h)
    hours = float(fraction.sum() * grid.step_h)
    return LeakTruth(
        leak_id=spec.leak_id,
        dma_id=spec.dma,
        kind=spec.kind,
        side="network" if spec.customer_meter is None else "customer",
        customer_meter=spec.customer_meter,
        n1=spec.n1_exponent,
        start=begin,
        end=end,
        flow_start_m3h=float(rate[0]) if rate.size else 0.0,
        flow_end_m3h=float(rate[-1]) if rate.size else 0.0,
        mean_flow_m3h=volume_m3 / hours if hours > 0 else 0.0,
        volume_m3=volume_m3,
        description=spec.description,
    )


def _event_truths(scenario: Scenario) -> list[EventTruth]:
    return [
        EventTruth(
            event.event_id,
            dma.dma_id,
            event.kind,
            scenario.at(event.start),
            scenario.at(event.start) + timedelta(hours=event.duration_h),
            event.volume_m3,
        )
        for dma in scenario.dmas
        for event in dma.unbilled
    ]


def _fault_truth(sensor_id: str, fault: Fault) -> FaultTruth:
    parameters = {
        "spikes": {"count": float(fault.count), "spike_flow_m3h": fault.spike_flow_m3h},
        "clock_drift": {"drift_s_per_day": fault.drift_s_per_day},
    }.get(fault.kind, {})
    end = None if fault.end_s is None else from_unix_s(fault.end_s)
    return FaultTruth(sensor_id, fault.kind, from_unix_s(fault.start_s), end, parameters)


def build_truth(
    scenario: Scenario,
    seed: int,
    grid: TimeGrid,
    *,
    flows: dict[str, DmaFlows],
    billing: list[BilledPeriod],
    faults: list[tuple[str, Fault]],
) -> Truth:
    """Everything that happened in the window, in the ``leaksense.truth/1`` layout."""
    return Truth(
        format=TRUTH_FORMAT,
        scenario=scenario.name,
        site=scenario.site,
        seed=seed,
        timezone=scenario.spec.timezone,
        start=scenario.start,
        end=scenario.end,
        days=scenario.days,
        dmas=tuple(dma_truth(scenario, grid, f, billing) for f in flows.values()),
        leaks=tuple(_leak_truth(scenario, grid, flows, spec) for spec in scenario.spec.leaks),
        faults=tuple(_fault_truth(sensor_id, fault) for sensor_id, fault in faults),
        unbilled=tuple(_event_truths(scenario)),
        sensors=tuple(
            SensorTruth(
                s.sensor_id,
                s.dma_id,
                s.role,
                s.outlet_of,
                s.meter.name,
                s.interval_s,
                s.meter.pulse_l,
                s.meter.under_registration,
            )
            for s in scenario.sensors
        ),
    )
