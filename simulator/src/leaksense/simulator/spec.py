"""The scenario file format (``leaksense.scenario/1``) as pydantic models.

These models check each field on its own (types, units, ranges); references between
fields (a leak's DMA, a fault's sensor, a consumer type) are checked by
:func:`reference_errors`, which returns the same ``(location, message)`` pairs so
that :mod:`leaksense.simulator.yamlfile` can name the line of either kind of mistake.
Every field is documented, with its unit, in ``docs/scenario-format.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from leaksense.core.messages import MAX_FLOW_M3H, Identifier

FORMAT = "leaksense.scenario/1"
SECONDS_PER_DAY = 86_400
_OFFSET = re.compile(r"^\+(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?$")
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class When:
    """A moment: ``absolute`` (naive means local time) or ``offset_s`` after the start."""

    absolute: datetime | None = None
    offset_s: float | None = None


def _when(value: Any) -> When:
    """Accept a YAML date/datetime, an ISO 8601 string or ``+7d10h30m`` (from start)."""
    if isinstance(value, datetime):
        return When(absolute=value)
    if isinstance(value, date):
        return When(absolute=datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        match = _OFFSET.match(value.strip())
        if match and any(match.groups()):
            days, hours, minutes = (float(g or 0) for g in match.groups())
            return When(offset_s=days * SECONDS_PER_DAY + hours * 3600 + minutes * 60)
        try:
            return When(absolute=datetime.fromisoformat(value))
        except ValueError:
            pass
    raise ValueError("expected an ISO 8601 date or datetime, or an offset like +7d10h30m")


WhenField = Annotated[When, PlainValidator(_when)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
IntervalS = Annotated[int, Field(ge=1, le=SECONDS_PER_DAY)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsumerTypeSpec(_Spec):
    """A new consumer type, or changes to one (``base``); unset fields are inherited."""

    base: str | None = None
    hourly_profile: (
        Annotated[tuple[NonNegative, ...], Field(min_length=24, max_length=24)] | None
    ) = None
    weekday_factors: (
        Annotated[tuple[NonNegative, ...], Field(min_length=7, max_length=7)] | None
    ) = None
    holiday_factor: NonNegative | None = None
    school_holiday_factor: NonNegative | None = None
    seasonal_amplitude: Annotated[float, Field(ge=0, lt=1)] | None = None
    irrigation_m3_per_day: NonNegative | None = None
    irrigation_months: tuple[Annotated[int, Field(ge=1, le=12)], ...] | None = None
    irrigation_hours: tuple[Annotated[int, Field(ge=0, le=23)], ...] | None = None
    irrigation_probability: Annotated[float, Field(ge=0, le=1)] | None = None
    night_use_l_h: NonNegative | None = None
    noise_fraction: Annotated[float, Field(ge=0, le=3)] | None = None
    daily_noise_fraction: Annotated[float, Field(ge=0, lt=0.5)] | None = None


class MeterModelSpec(_Spec):
    """A new meter model, or changes to one (``base``); unset fields are inherited."""

    base: str | None = None
    pulse_l: NonNegative | None = None
    decimals: Annotated[int, Field(ge=0, le=9)] | None = None
    index_decimals: Annotated[int, Field(ge=0, le=9)] | None = None
    noise_fraction: Annotated[float, Field(ge=0, lt=0.5)] | None = None
    noise_m3h: NonNegative | None = None
    under_registration: Annotated[float, Field(ge=0, lt=0.5)] | None = None
    starting_flow_l_h: NonNegative | None = None
    reports_index: bool | None = None


class InletSpec(_Spec):
    sensor_id: Identifier
    meter: str = "bulk-em"
    interval_s: IntervalS | None = None
    initial_index_m3: NonNegative = 0.0
    from_dma: Identifier | None = None
    esphome_node: Identifier | None = None


class ConsumerGroupSpec(_Spec):
    type: str
    count: Annotated[int, Field(ge=1)] = 1
    m3_per_day: NonNegative
    meter: str = "customer-mechanical"
    night_use_l_h: NonNegative | None = None


class CustomerMeterSpec(_Spec):
    sensor_id: Identifier
    count: Annotated[int, Field(ge=1, le=9999)] = 1
    type: str
    m3_per_day: NonNegative
    meter: str = "customer-pulse"
    interval_s: IntervalS | None = None
    initial_index_m3: NonNegative = 0.0
    esphome_node: Identifier | None = None

    @model_validator(mode="after")
    def _one_node_one_meter(self) -> CustomerMeterSpec:
        if self.esphome_node is not None and self.count > 1:
            raise ValueError("esphome_node needs count 1 (one node per meter)")
        return self

    def sensor_ids(self) -> list[str]:
        """``sensor_id`` itself, or ``sensor_id001`` … when ``count`` > 1."""
        if self.count == 1:
            return [self.sensor_id]
        return [f"{self.sensor_id}{k:03d}" for k in range(1, self.count + 1)]


class UnbilledSpec(_Spec):
    event_id: Identifier
    kind: Literal["flushing", "fire_fighting", "street_cleaning", "other"]
    start: WhenField
    duration_h: Positive
    volume_m3: Positive


class DmaSpec(_Spec):
    dma_id: Identifier
    name: str = ""
    mains_km: Positive
    service_connections: Annotated[int, Field(ge=0)]
    private_pipes_km: NonNegative = 0.0
    avg_pressure_m: Positive
    headloss_m: NonNegative = 5.0
    inlet: InletSpec
    consumers: tuple[ConsumerGroupSpec, ...] = ()
    customer_meters: tuple[CustomerMeterSpec, ...] = ()
    unbilled: tuple[UnbilledSpec, ...] = ()

    @model_validator(mode="after")
    def _pressure_stays_positive(self) -> DmaSpec:
        if self.headloss_m >= self.avg_pressure_m:
            raise ValueError("headloss_m must be smaller than avg_pressure_m")
        return self


LeakKind = Literal["burst", "background", "incipient"]
DEFAULT_N1: dict[str, float] = {"burst": 0.5, "background": 1.5, "incipient": 1.0}


class LeakSpec(_Spec):
    leak_id: Identifier
    dma: Identifier
    kind: LeakKind
    flow_m3h: Positive
    start: WhenField | None = None
    repaired_at: WhenField | None = None
    n1: Annotated[float, Field(ge=0, le=3)] | None = None
    growth: Literal["linear", "exponential"] = "linear"
    growth_m3h_per_day: NonNegative = 0.0
    growth_per_day: NonNegative = 0.0
    max_flow_m3h: Positive | None = None
    customer_meter: Identifier | None = None
    description: str = ""

    @model_validator(mode="after")
    def _growth_for_incipient_only(self) -> LeakSpec:
        grows = self.growth_m3h_per_day > 0 or self.growth_per_day > 0
        if self.kind == "incipient" and not grows:
            raise ValueError("an incipient leak needs growth_m3h_per_day or growth_per_day > 0")
        if self.kind != "incipient" and (grows or self.max_flow_m3h is not None):
            raise ValueError("growth fields and max_flow_m3h apply to incipient leaks only")
        return self

    @property
    def n1_exponent(self) -> float:
        """FAVAD exponent: the leak's own, or the kind's default."""
        return DEFAULT_N1[self.kind] if self.n1 is None else self.n1


FaultKind = Literal["dropout", "flatline", "spikes", "counter_reset", "clock_drift"]


class FaultSpec(_Spec):
    sensor_id: Identifier
    kind: FaultKind
    start: WhenField
    end: WhenField | None = None
    count: Annotated[int, Field(ge=1)] = 3
    spike_flow_m3h: Annotated[float, Field(gt=0, le=MAX_FLOW_M3H)] = 9_999.0
    drift_s_per_day: Annotated[float, Field(allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _kind_needs(self) -> FaultSpec:
        if self.kind in ("dropout", "flatline", "spikes") and self.end is None:
            raise ValueError(f"a {self.kind} fault needs an end")
        if self.kind == "clock_drift" and self.drift_s_per_day == 0:
            raise ValueError("a clock_drift fault needs a non-zero drift_s_per_day")
        return self


class BillingSpec(_Spec):
    cycle_days: Annotated[int, Field(ge=1, le=400)] = 30
    first_read: WhenField | None = None
    rounds: Annotated[int, Field(ge=1, le=60)] = 1


class DateRange(_Spec):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("end must not precede start")
        return self


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class ScenarioSpec(_Spec):
    """The whole file. Times without an offset are local times in ``timezone``."""

    format: Literal["leaksense.scenario/1"]
    name: Identifier
    description: str = ""
    site: Identifier
    timezone: Annotated[str, PlainValidator(_zone)] = "Europe/Paris"
    start: WhenField | None = None
    days: Annotated[int, Field(ge=1, le=400)] = 14
    interval_s: IntervalS = 300
    public_holidays: Literal["FR", "none"] = "FR"
    holidays: tuple[date, ...] = ()
    school_holidays: tuple[DateRange, ...] = ()
    consumer_types: dict[str, ConsumerTypeSpec] = {}
    meter_models: dict[str, MeterModelSpec] = {}
    billing: BillingSpec = BillingSpec()
    dmas: Annotated[tuple[DmaSpec, ...], Field(min_length=1)]
    leaks: tuple[LeakSpec, ...] = ()
    faults: tuple[FaultSpec, ...] = ()


def iter_sensors(spec: ScenarioSpec) -> Iterator[tuple[str, Loc, str, int | None]]:
    """``(sensor_id, location, meter model, interval_s)`` of every meter in the file."""
    for d, dma in enumerate(spec.dmas):
        inlet = dma.inlet
        yield inlet.sensor_id, ("dmas", d, "inlet", "sensor_id"), inlet.meter, inlet.interval_s
        for c, group in enumerate(dma.customer_meters):
            for sensor_id in group.sensor_ids():
                loc: Loc = ("dmas", d, "customer_meters", c, "sensor_id")
                yield sensor_id, loc, group.meter, group.interval_s
