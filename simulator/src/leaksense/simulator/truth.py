"""Ground truth (``leaksense.truth/1``): what really happened, for scoring and checks.

Per DMA, the water balance over the window, in the vocabulary of
water-loss-indicators.md: system input (Vimp), water passed on downstream (Vexp),
true consumption, billed (Vc: what the registers counted), unbilled authorised use
(Vs + Vsc), apparent losses (consumed − billed), real losses (network leaks), and
``system_input = exported + consumed + unbilled + real losses`` exactly. The yield
P104.3 is (billed + unbilled + exported) / system input; ``yield_billed_only_pct``
leaves the unbilled use out, as a yield computed without declaring it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TRUTH_FORMAT = "leaksense.truth/1"


@dataclass(frozen=True, slots=True)
class DayTruth:
    """One day (from ``day_start``, 24 h) of a DMA's balance, in m³."""

    day_start: datetime
    system_input_m3: float
    exported_m3: float
    consumed_m3: float
    registered_m3: float
    unbilled_authorised_m3: float
    real_losses_m3: float
    yield_pct: float
    """(registered + unbilled + exported) / system input, the day's P104.3."""


@dataclass(frozen=True, slots=True)
class DmaTruth:
    dma_id: str
    inlet_sensor_id: str
    outlet_sensor_ids: tuple[str, ...]
    mains_km: float
    service_connections: int
    avg_pressure_m: float
    min_pressure_m: float
    max_pressure_m: float
    legitimate_night_use_m3h: float
    system_input_m3: float
    exported_m3: float
    consumed_m3: float
    billed_m3: float
    unbilled_authorised_m3: float
    apparent_losses_m3: float
    real_losses_m3: float
    customer_side_leaks_m3: float
    """Leaks behind customer meters: counted in ``consumed_m3`` and billed."""
    yield_pct: float
    yield_billed_only_pct: float
    ilp_m3_per_km_day: float
    uarl_m3_per_day: float
    ili: float
    days: tuple[DayTruth, ...]


@dataclass(frozen=True, slots=True)
class LeakTruth:
    leak_id: str
    dma_id: str
    kind: str
    side: Literal["network", "customer"]
    customer_meter: str | None
    n1: float
    start: datetime | None
    """None: already running when the window opens."""
    end: datetime | None
    """The repair (possibly after the window); None: never repaired."""
    flow_start_m3h: float
    """Mean flow over the first step the leak runs in the window (0 if it never does)."""
    flow_end_m3h: float
    mean_flow_m3h: float
    """Mean over the time the leak runs inside the window."""
    volume_m3: float
    description: str


@dataclass(frozen=True, slots=True)
class FaultTruth:
    sensor_id: str
    kind: str
    start: datetime
    end: datetime | None
    parameters: dict[str, float]


@dataclass(frozen=True, slots=True)
class EventTruth:
    """Unbilled authorised use (flushing, fire fighting...)."""

    event_id: str
    dma_id: str
    kind: str
    start: datetime
    end: datetime
    volume_m3: float


@dataclass(frozen=True, slots=True)
class SensorTruth:
    sensor_id: str
    dma_id: str
    role: str
    outlet_of: str | None
    meter: str
    interval_s: int
    pulse_l: float
    under_registration: float


@dataclass(frozen=True, slots=True)
class Truth:
    format: str
    scenario: str
    site: str
    seed: int
    timezone: str
    start: datetime
    end: datetime
    days: int
    dmas: tuple[DmaTruth, ...]
    leaks: tuple[LeakTruth, ...]
    faults: tuple[FaultTruth, ...]
    unbilled: tuple[EventTruth, ...]
    sensors: tuple[SensorTruth, ...]

    def dma(self, dma_id: str) -> DmaTruth:
        return next(d for d in self.dmas if d.dma_id == dma_id)

    @property
    def real_losses_m3(self) -> float:
        """Network leakage of every DMA over the window."""
        return sum(d.real_losses_m3 for d in self.dmas)
