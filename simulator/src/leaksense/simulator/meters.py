"""Meters as they really are: registers, pulses, quantisation, noise.

A meter first *registers* the water that passes (customer meters under-register by a
fraction and stop below their starting flow: apparent losses); its register is what
the cumulative ``index_m3`` shows and what billing reads. Every ``interval_s`` it
reports a flow: for a pulse meter, whole pulses counted in the interval × litres per
pulse / interval (the register carries the remainder, so a drip shows as rare single
pulses between zeros); for the others, the registered mean flow plus noise. The
reported flow is rounded to ``decimals``; a meter never reports a negative flow.

Convention: the reading at ``t`` carries the flow over ``[t, t + interval_s)`` and
the index *at* ``t``, so ``index[k + 1] = index[k] + flow[k] × interval`` before noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from leaksense.simulator.spec import ScenarioSpec
from leaksense.simulator.timegrid import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class MeterModel:
    """What a kind of meter does to the water it sees."""

    name: str
    pulse_l: float = 0.0
    """Litres per pulse; 0 for meters that measure flow continuously."""
    decimals: int = 3
    """Decimals of the reported ``flow_m3h``."""
    index_decimals: int = 3
    noise_fraction: float = 0.0
    """Multiplicative noise on the reported flow (standard deviation, fraction)."""
    noise_m3h: float = 0.0
    """Additive noise on the reported flow (standard deviation, m³/h)."""
    under_registration: float = 0.0
    """Fraction of the volume the register misses (customer meters: apparent losses)."""
    starting_flow_l_h: float = 0.0
    """Below this flow the register does not move at all."""
    reports_index: bool = True


METER_MODELS: dict[str, MeterModel] = {
    m.name: m
    for m in (
        # electromagnetic bulk meter at a DMA inlet: continuous, no moving parts
        MeterModel("bulk-em", decimals=3, noise_fraction=0.005, noise_m3h=0.005),
        # Woltmann bulk meter with a 100 L reed-switch pulse output
        MeterModel("bulk-pulse", pulse_l=100.0, decimals=3),
        # smart customer meter: 1 L pulses, class R160 starting flow
        MeterModel(
            "customer-pulse",
            pulse_l=1.0,
            decimals=4,
            under_registration=0.03,
            starting_flow_l_h=6.0,
        ),
        # 10 L/pulse retrofit on an old customer meter (sees no drip)
        MeterModel(
            "customer-pulse-10l",
            pulse_l=10.0,
            decimals=4,
            under_registration=0.05,
            starting_flow_l_h=12.0,
        ),
        # the billing register of customers without telemetry (aggregated groups)
        MeterModel("customer-mechanical", under_registration=0.04, reports_index=False),
        # ESPHome node with a hall-effect sensor on a customer's supply
        MeterModel("esphome-hall", decimals=4, noise_fraction=0.01),
        # an ideal meter, for tests and for scenarios that need exact volumes
        MeterModel("ideal", decimals=6, index_decimals=6),
    )
}
"""Built-in meter models; a scenario's ``meter_models`` adds or changes entries."""


def registered_m3h(model: MeterModel, true_m3h: FloatArray) -> FloatArray:
    """Flow the register counts: nothing below the starting flow, less the under-registration."""
    counted = np.where(true_m3h * 1000 < model.starting_flow_l_h, 0.0, true_m3h)
    out: FloatArray = counted * (1 - model.under_registration)
    return out


@dataclass(frozen=True, slots=True)
class MeterOutput:
    """Readings of one meter before faults: ``times_s`` are interval starts."""

    times_s: IntArray
    flow_m3h: FloatArray
    index_m3: FloatArray | None


def read(
    model: MeterModel,
    registered: FloatArray,
    *,
    grid_step_s: int,
    start_s: int,
    interval_s: int,
    initial_index_m3: float,
    rng: np.random.Generator,
) -> MeterOutput:
    """What the meter reports every ``interval_s`` from the registered flow on the grid."""
    per = interval_s // grid_step_s
    volume_m3 = registered.reshape(-1, per).sum(axis=1) * (grid_step_s / 3600)
    cumulative_m3 = np.concatenate(([0.0], np.cumsum(volume_m3)))
    interval_h = interval_s / 3600
    if model.pulse_l > 0:
        pulse_m3 = model.pulse_l / 1000
        phase = rng.random()  # where the dial stood when the simulation began
        pulses = np.floor(cumulative_m3 / pulse_m3 + phase)
        cumulative_m3 = (pulses - pulses[0]) * pulse_m3
        flow = np.diff(cumulative_m3) / interval_h
    else:
        flow = volume_m3 / interval_h
    if model.noise_fraction or model.noise_m3h:
        flow = flow * (1 + model.noise_fraction * rng.standard_normal(flow.size))
        flow = flow + model.noise_m3h * rng.standard_normal(flow.size)
    times_s = start_s + np.arange(flow.size, dtype=np.int64) * interval_s
    index = None
    if model.reports_index:
        index = np.round(initial_index_m3 + cumulative_m3[:-1], model.index_decimals)
    return MeterOutput(times_s, np.round(np.clip(flow, 0.0, None), model.decimals), index)


def meter_models(spec: ScenarioSpec) -> dict[str, MeterModel]:
    """Built-in meter models plus the scenario's own (each derived from its ``base``)."""
    models = dict(METER_MODELS)
    for name, custom in spec.meter_models.items():
        base = METER_MODELS.get(custom.base or name, MeterModel(name))  # same name: change it
        changes = custom.model_dump(exclude={"base"}, exclude_none=True)
        models[name] = dataclasses.replace(base, name=name, **changes)
    return models
