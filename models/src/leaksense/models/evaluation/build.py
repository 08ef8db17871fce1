"""A case as a scenario file, with its test leaks sized against its own night flow.

The scenario is written as a plain dict in the ``leaksense.scenario/1`` format and
validated by :class:`ScenarioSpec`, exactly as a YAML file would be.

**Sizing.** The case is first simulated without its test leaks and faults (standing
background leakage included) for its seed, and the true flows are read. A DMA's
*night flow* is the mean flow it takes for itself (inlet − outlets: the consumers'
legitimate night use, the rest of their night demand and the standing background
leakage) over 01:00–05:00 local time on the warm-up nights; its *mean flow* is the
mean over the warm-up days. A "5 %" background leak gets the reference flow that makes
its mean night flow 5 % of the DMA's night flow: night pressure is above average, so
the reference flow is divided by the mean of (P/P_avg)^N1 over the same nights
(FAVAD). Bursts are sized against the mean flow at the pressure of their first
quarter hour. The simulator draws each component's randomness from its own named
generator, so adding the test leaks changes nothing else in the water.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from leaksense.models.evaluation.scenarios import NETWORKS, Case, DmaLayout, EventKind
from leaksense.simulator.generate import make_scenario_grid
from leaksense.simulator.network import dma_flows
from leaksense.simulator.scenario import Scenario
from leaksense.simulator.spec import ScenarioSpec

DAY_S = 86_400.0
TIMEZONE = "Europe/Paris"
INTERVAL_S = 300
RAMP_START_PCT = 1.0
"""An incipient leak starts at 1 % of the night flow…"""
RAMP_DEADLINE_PCT = 10.0
"""…and must be found before it reaches twice the 5 % size."""
FAULT_LENGTH_S = {"dropout": 6 * 3600.0, "flatline": 8 * 3600.0, "spikes": 2 * DAY_S}
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class LabelledLeak:
    """A test leak and what counts as finding it (times in Unix seconds)."""

    leak_id: str
    kind: EventKind
    size: float
    dma_id: str
    start_s: float
    end_s: float
    """Repair, or the end of the window."""
    deadline_s: float
    """Found by then: within target (48 h, 15 min, or before the ramp reaches 10 %)."""
    night_flow_m3h: float
    mean_flow_m3h: float
    customer_meter: str | None = None

    def flow_at(self, epoch_s: float) -> float:
        """The leak's nominal flow at a moment (night flow for background leaks), m³/h."""
        if self.kind == "background":
            return self.size / 100 * self.night_flow_m3h
        if self.kind == "incipient":
            days = max(0.0, epoch_s - self.start_s) / DAY_S
            return (RAMP_START_PCT + self.size * days) / 100 * self.night_flow_m3h
        if self.kind == "burst":
            return self.size / 100 * self.mean_flow_m3h
        return self.size / 1000


@dataclass(frozen=True)
class Labelled:
    """A case ready to simulate: the scenario and its labelled test leaks."""

    case: Case
    scenario: Scenario
    leaks: tuple[LabelledLeak, ...]
    test_start_s: float
    night_flow_m3h: dict[str, float]


@dataclass(frozen=True, slots=True)
class _Levels:
    night_m3h: float
    mean_m3h: float
    night: BoolArray
    pressure_ratio: FloatArray


def dma_id(layout: DmaLayout) -> str:
    return f"dma-{layout.dma_id}"


def _dma(layout: DmaLayout, inlet_meter: str) -> dict[str, Any]:
    d, n = layout.dma_id, layout.connections
    consumers: list[dict[str, Any]] = [
        {"type": "household", "count": round(0.82 * n), "m3_per_day": 0.30},
        {"type": "garden-household", "count": round(0.10 * n), "m3_per_day": 0.35},
        {"type": "business", "count": max(1, round(0.05 * n)), "m3_per_day": 1.2},
    ]
    if n >= 300:
        consumers.append({"type": "school", "count": 1, "m3_per_day": 6.0})
    if layout.farms:
        consumers.append({"type": "farm", "count": layout.farms, "m3_per_day": 5.0})
    meters: list[dict[str, Any]] = [
        {"sensor_id": f"{d}-c", "count": 3, "type": "household", "m3_per_day": 0.30}
    ]
    if layout.business_meter:
        meters.append({"sensor_id": f"{d}-biz", "type": "business", "m3_per_day": 1.5})
    if layout.farm_meter:
        meters.append({"sensor_id": f"{d}-farm", "type": "farm", "m3_per_day": 8.0})
    inlet: dict[str, Any] = {"sensor_id": f"{d}-in", "meter": inlet_meter}
    if layout.from_dma is not None:
        inlet["from_dma"] = f"dma-{layout.from_dma}"
    return {
        "dma_id": dma_id(layout),
        "mains_km": layout.mains_km,
        "service_connections": n,
        "avg_pressure_m": layout.pressure_m,
        "inlet": inlet,
        "consumers": consumers,
        "customer_meters": meters,
    }


def _standing_leak(layout: DmaLayout) -> dict[str, Any]:
    """Unavoidable background leakage (water-loss-indicators.md §4), there all along."""
    flow_m3h = (1.25 * layout.connections + 20 * layout.mains_km) / 1000
    return {
        "leak_id": f"{layout.dma_id}-standing",
        "dma": dma_id(layout),
        "kind": "background",
        "flow_m3h": round(flow_m3h, 4),
    }


def scenario_dict(case: Case) -> dict[str, Any]:
    """The case's network and calendar as a scenario file, without test leaks or faults."""
    layouts = NETWORKS[case.network]
    noise = {"noise_fraction": case.noise.consumer_noise}
    noise["daily_noise_fraction"] = case.noise.daily_noise
    return {
        "format": "leaksense.scenario/1",
        "name": case.name,
        "site": "eval",
        "timezone": TIMEZONE,
        "interval_s": INTERVAL_S,
        "public_holidays": "FR",
        "school_holidays": [{"start": a, "end": b} for a, b in case.season.school_holidays],
        "consumer_types": {"household": noise, "garden-household": noise},
        "meter_models": {"noisy-em": {"base": "bulk-em", "noise_fraction": 0.03}},
        "dmas": [_dma(layout, case.noise.inlet_meter) for layout in layouts],
        "leaks": [_standing_leak(layout) for layout in layouts],
    }


def _place(case: Case, spec: ScenarioSpec) -> Scenario:
    start = datetime.combine(case.season.start, time(), ZoneInfo(TIMEZONE))
    return Scenario.from_spec(spec, start, case.days)


def _levels(scenario: Scenario, seed: int, warmup_days: int) -> dict[str, _Levels]:
    grid = make_scenario_grid(scenario)
    flows = dma_flows(scenario, grid, seed)
    warm = grid.times_s() < scenario.start.timestamp() + warmup_days * DAY_S
    night = warm & (grid.local_hour >= 1) & (grid.local_hour < 5)
    out = {}
    for dma, f in flows.items():
        own = f.inlet_m3h - f.exported_m3h
        ratio = f.pressure_m / f.dma.avg_pressure_m
        out[dma] = _Levels(float(own[night].mean()), float(own[warm].mean()), night, ratio)
    return out


class _Placer:
    """Draws leak and fault times for one case, reproducibly."""

    def __init__(self, case: Case, scenario: Scenario) -> None:
        self.rng = np.random.default_rng(case.seed)
        self.grid_start_s = scenario.start.timestamp()
        self.test_start_s = self.grid_start_s + case.warmup_days * DAY_S
        self.end_s = scenario.end.timestamp()

    def moment(self, tail_days: float) -> float:
        """A minute in [test start + 2 days, end − tail]."""
        first = self.test_start_s + 2 * DAY_S
        last = max(first, self.end_s - tail_days * DAY_S)
        return float(round(self.rng.uniform(first, last) / 60) * 60)

    def step(self, epoch_s: float) -> int:
        return int((epoch_s - self.grid_start_s) // INTERVAL_S)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _leak(
    case: Case, layout: DmaLayout, level: _Levels, place: _Placer
) -> tuple[dict[str, Any], LabelledLeak]:
    """One test leak in ``layout``'s DMA, sized for the case's event."""
    kind, size = case.event.kind, case.event.size
    leak_id = f"t-{layout.dma_id}"
    night_favad = float(np.mean(level.pressure_ratio[level.night] ** 1.0))
    spec: dict[str, Any] = {"leak_id": leak_id, "dma": dma_id(layout), "kind": kind}
    meter = None
    end_s = place.end_s
    if kind == "background":
        start_s = place.moment(3)
        favad = float(np.mean(level.pressure_ratio[level.night] ** 1.5))
        spec["flow_m3h"] = size / 100 * level.night_m3h / favad
        deadline_s = start_s + 2 * DAY_S
    elif kind == "incipient":
        days = (RAMP_DEADLINE_PCT - RAMP_START_PCT) / size
        start_s = place.moment(days + 1)
        spec["flow_m3h"] = RAMP_START_PCT / 100 * level.night_m3h / night_favad
        spec["growth_m3h_per_day"] = size / 100 * level.night_m3h / night_favad
        deadline_s = start_s + days * DAY_S
    elif kind == "burst":
        start_s = place.moment(1)
        end_s = start_s + float(place.rng.uniform(3, 12)) * 3600
        k = place.step(start_s)
        favad = float(np.mean(level.pressure_ratio[k : k + 3] ** 0.5))
        spec["flow_m3h"] = size / 100 * level.mean_m3h / favad
        spec["repaired_at"] = _utc(end_s)
        deadline_s = start_s + 15 * 60
    else:  # customer: a constant drip behind a household's meter
        start_s = place.moment(3)
        meter = f"{layout.dma_id}-c001"
        spec.update(kind="background", flow_m3h=size / 1000, n1=0.0, customer_meter=meter)
        deadline_s = start_s + 2 * DAY_S
    spec["start"] = _utc(start_s)
    label = LabelledLeak(
        leak_id=leak_id,
        kind=kind,
        size=size,
        dma_id=dma_id(layout),
        start_s=start_s,
        end_s=end_s,
        deadline_s=deadline_s,
        night_flow_m3h=level.night_m3h,
        mean_flow_m3h=level.mean_m3h,
        customer_meter=meter,
    )
    return spec, label


def _faults(case: Case, place: _Placer) -> list[dict[str, Any]]:
    """A fault on the first DMA's inlet meter and another on one of its customer meters."""
    d = NETWORKS[case.network][0].dma_id
    out = []
    for sensor_id, kind in zip((f"{d}-in", f"{d}-c002"), case.faults, strict=True):
        start_s = place.moment(5)
        fault: dict[str, Any] = {"sensor_id": sensor_id, "kind": kind, "start": _utc(start_s)}
        if kind in FAULT_LENGTH_S:
            fault["end"] = _utc(start_s + FAULT_LENGTH_S[kind])
        if kind == "clock_drift":
            fault["drift_s_per_day"] = 60.0
        out.append(fault)
    return out


def build(case: Case) -> Labelled:
    """The case's scenario with its test leaks (sized) and faults, and their labels."""
    data = scenario_dict(case)
    base = _place(case, ScenarioSpec.model_validate(data))
    levels = _levels(base, case.seed, case.warmup_days)
    place = _Placer(case, base)
    labels: list[LabelledLeak] = []
    if case.event.kind in ("background", "incipient", "burst", "customer"):
        for layout in NETWORKS[case.network]:
            spec, label = _leak(case, layout, levels[dma_id(layout)], place)
            data["leaks"].append(spec)
            labels.append(label)
    if case.event.kind == "faults":
        data["faults"] = _faults(case, place)
    scenario = _place(case, ScenarioSpec.model_validate(data))
    return Labelled(
        case,
        scenario,
        tuple(labels),
        place.test_start_s,
        {k: v.night_m3h for k, v in levels.items()},
    )
