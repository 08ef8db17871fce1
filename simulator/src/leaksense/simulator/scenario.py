"""Scenarios as data: a DMA, its meters and its leaks, declared rather than coded.

A scenario says *what* happens (who consumes how much, which leak runs when);
:mod:`leaksense.simulator.generate` turns it into readings. Built-in scenarios are
plain functions of the start date listed in :data:`BUILTIN`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from leaksense.core.errors import ConfigError
from leaksense.core.messages import ID_PATTERN

SensorRole = Literal["inlet", "outlet", "customer"]
SECONDS_PER_DAY = 86_400
_ID = re.compile(ID_PATTERN)


def _check_id(what: str, value: str) -> None:
    if not _ID.match(value):
        raise ConfigError(f"{what} {value!r} does not match {ID_PATTERN}")


def _check_aware(what: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} {value.isoformat()} must be timezone-aware (UTC)")


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One flow meter of the DMA.

    The inlet's flow is derived (consumption + outlets + leaks), so only customers
    and outlets carry their own ``mean_flow_m3h``. Sensors with an ``esphome_node``
    are published the way ESPHome firmware does, the others as Leaksense JSON.
    """

    sensor_id: str
    role: SensorRole
    mean_flow_m3h: float | None = None
    esphome_node: str | None = None
    initial_index_m3: float = 0.0

    def __post_init__(self) -> None:
        _check_id("sensor_id", self.sensor_id)
        if self.esphome_node is not None:
            _check_id("esphome_node", self.esphome_node)
        if (self.role == "inlet") != (self.mean_flow_m3h is None):
            raise ConfigError(
                f"sensor {self.sensor_id}: mean_flow_m3h is derived for the inlet "
                "and required for customers and outlets"
            )
        if self.mean_flow_m3h is not None and self.mean_flow_m3h < 0:
            raise ConfigError(f"sensor {self.sensor_id}: mean_flow_m3h must be >= 0")


@dataclass(frozen=True, slots=True)
class LeakSpec:
    """A leak on the DMA's mains, running at a constant flow until repaired."""

    leak_id: str
    flow_m3h: float
    start: datetime
    repaired_at: datetime | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check_aware(f"leak {self.leak_id} start", self.start)
        if self.repaired_at is not None:
            _check_aware(f"leak {self.leak_id} repaired_at", self.repaired_at)
            if self.repaired_at <= self.start:
                raise ConfigError(f"leak {self.leak_id}: repaired_at must follow start")
        if self.flow_m3h <= 0:
            raise ConfigError(f"leak {self.leak_id}: flow_m3h must be > 0")

    def active_at(self, time: datetime) -> bool:
        """Whether the leak is running at ``time`` (start inclusive, repair exclusive)."""
        return self.start <= time and (self.repaired_at is None or time < self.repaired_at)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A DMA over a time window: one inlet meter, consumption, billing and leaks."""

    name: str
    site: str
    dma_id: str
    start: datetime
    days: int
    interval_s: int
    consumption_m3_per_day: float
    sensors: tuple[SensorSpec, ...]
    leaks: tuple[LeakSpec, ...] = ()
    billing_period_days: int = 7
    noise_fraction: float = 0.03

    def __post_init__(self) -> None:
        _check_id("site", self.site)
        _check_id("dma_id", self.dma_id)
        _check_aware("scenario start", self.start)
        if self.days < 1 or self.billing_period_days < 1:
            raise ConfigError("days and billing_period_days must be >= 1")
        if self.interval_s < 1 or SECONDS_PER_DAY % self.interval_s:
            raise ConfigError(f"interval_s {self.interval_s} must divide a day (86400 s)")
        if [s.role for s in self.sensors].count("inlet") != 1:
            raise ConfigError(f"scenario {self.name}: exactly one inlet sensor is required")
        ids = [s.sensor_id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"scenario {self.name}: duplicate sensor ids")
        if not 0 <= self.noise_fraction < 0.3:
            raise ConfigError("noise_fraction must be in [0, 0.3)")

    @property
    def end(self) -> datetime:
        """End of the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def inlet(self) -> SensorSpec:
        """The DMA's inlet meter (validated to be unique)."""
        return next(s for s in self.sensors if s.role == "inlet")

    def leak_flow_m3h(self, time: datetime) -> float:
        """Total flow of the leaks running at ``time``."""
        return sum(leak.flow_m3h for leak in self.leaks if leak.active_at(time))

    def nominal_yield(self, time: datetime) -> float:
        """Rendement (billed / distributed) implied by the leaks running at ``time``."""
        consumption_m3h = self.consumption_m3_per_day / 24
        return consumption_m3h / (consumption_m3h + self.leak_flow_m3h(time))


# Saint-Savin (water-loss-indicators.md §6): 800 m³/day in, 600 billed, five leaks
# worth 150 m³/day found and repaired within a week, so 650 m³/day in afterwards;
# the other 50 m³/day of losses are diffuse background leakage that nobody finds.
_SS_LEAKS_M3H = (
    ("ss-leak-1", 2.5, "service pipe, rue de l'Abbaye"),
    ("ss-leak-2", 1.5, "main joint under the bridge"),
    ("ss-leak-3", 1.0, "hydrant valve, place de la Libération"),
    ("ss-leak-4", 0.75, "service connection, route de Poitiers"),
    ("ss-leak-5", 0.5, "air valve, chemin des Vignes"),
)
_SS_BACKGROUND_M3_PER_DAY = 50.0
_SS_CUSTOMERS_M3_PER_DAY = (("ss-school", 8.0), ("ss-farm", 25.0), ("ss-townhall", 3.0))
_SS_FIRST_REPAIR_DAY = 7
_SS_REPAIR_HOUR = 10
_SS_AFTER_DAY = 12


def saint_savin(start: datetime, days: int = 14) -> Scenario:
    """The seed report's commune: five leaks repaired one a day on days 7–11 at 10:00 UTC.

    ``start`` should be a UTC midnight so that "day N" is a calendar day.
    """
    _check_aware("start", start)
    customers = tuple(
        SensorSpec(sensor_id, "customer", m3_per_day / 24, esphome_node=sensor_id)
        for sensor_id, m3_per_day in _SS_CUSTOMERS_M3_PER_DAY
    )
    leaks = tuple(
        LeakSpec(
            leak_id,
            flow_m3h,
            start,
            start + timedelta(days=_SS_FIRST_REPAIR_DAY + i, hours=_SS_REPAIR_HOUR),
            description,
        )
        for i, (leak_id, flow_m3h, description) in enumerate(_SS_LEAKS_M3H)
    )
    background = LeakSpec(
        "ss-background", _SS_BACKGROUND_M3_PER_DAY / 24, start, None, "diffuse, not located"
    )
    return Scenario(
        name="saint-savin",
        site="saint-savin",
        dma_id="ss-dma",
        start=start,
        days=days,
        interval_s=300,
        consumption_m3_per_day=600.0,
        sensors=(SensorSpec("ss-inlet", "inlet", initial_index_m3=125_000.0), *customers),
        leaks=(*leaks, background),
    )


def saint_savin_periods(scenario: Scenario) -> tuple[datetime, datetime, datetime, datetime]:
    """``(before_start, before_end, after_start, after_end)``: whole days without repairs."""
    if scenario.days <= _SS_AFTER_DAY:
        raise ConfigError(f"Saint-Savin needs more than {_SS_AFTER_DAY} days for an after period")
    start = scenario.start
    return (
        start,
        start + timedelta(days=_SS_FIRST_REPAIR_DAY),
        start + timedelta(days=_SS_AFTER_DAY),
        scenario.end,
    )


BUILTIN: dict[str, Callable[[datetime, int], Scenario]] = {"saint-savin": saint_savin}
"""Built-in scenarios by name, each a function of ``(start, days)``."""
