"""Who uses water when: consumer types as a table, and their demand on the time grid.

A consumer's flow is ``night_use + (mean − night_use) × shape(local hour) × day factor
× season × noise + irrigation``, so that an average day delivers ``m3_per_day`` and
the legitimate night use (water-loss-indicators.md §4) is always there, even at 3 am.
A group of ``count`` identical consumers is simulated as one flow whose random noise
shrinks as 1/√count (independent households), while day-to-day variation (weather)
is shared by the whole group.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from leaksense.simulator.spec import ScenarioSpec
from leaksense.simulator.timegrid import FloatArray, TimeGrid

NOISE_STEP_S = 300
"""The step over which ``noise_fraction`` is a consumer's coefficient of variation."""
_PEAK_DAY_OF_YEAR = 196  # mid-July: summer demand peak in the northern hemisphere
_HOURS = np.arange(24.0)
T = TypeVar("T", bound=np.generic)


@dataclass(frozen=True, slots=True)
class ConsumerType:
    """How one kind of consumer uses water; every factor is relative (means are 1)."""

    name: str
    hourly_profile: tuple[float, ...]
    """Relative demand at hh:00 local time, 24 values, interpolated between hours."""
    weekday_factors: tuple[float, ...] = (1.0,) * 7
    """Relative daily demand Monday..Sunday (normalised to a mean of 1)."""
    holiday_factor: float = 1.0
    """Replaces the weekday factor on public holidays (0 = closed)."""
    school_holiday_factor: float = 1.0
    """Multiplies demand during school holidays."""
    seasonal_amplitude: float = 0.0
    """Demand swings ±this fraction over the year, peaking in mid-July."""
    irrigation_m3_per_day: float = 0.0
    """Extra volume on irrigation days, spread over ``irrigation_hours``."""
    irrigation_months: tuple[int, ...] = (6, 7, 8)
    irrigation_hours: tuple[int, ...] = (21, 22, 23, 5, 6)
    irrigation_probability: float = 0.8
    """Share of days on which the consumer irrigates (the others: rain)."""
    night_use_l_h: float = 0.0
    """Legitimate use present at every hour, night included (L/h per consumer)."""
    noise_fraction: float = 0.3
    """Coefficient of variation of one consumer's mean flow over 5 minutes (over a
    simulation step of another length it scales as 1/√step, so that the flow a meter
    reports does not depend on the steps of the other meters)."""
    daily_noise_fraction: float = 0.0
    """Day-to-day variation shared by a whole group (weather, events)."""


_HOUSEHOLD_HOURS = (
    0.25,
    0.15,
    0.10,
    0.10,
    0.15,
    0.45,
    1.10,
    1.75,
    1.70,
    1.35,
    1.15,
    1.10,
    1.25,
    1.15,
    0.95,
    0.90,
    0.95,
    1.15,
    1.45,
    1.60,
    1.45,
    1.15,
    0.80,
    0.45,
)
_HOUSEHOLD_WEEK = (0.97, 0.97, 0.98, 0.97, 1.0, 1.05, 1.06)

CONSUMER_TYPES: dict[str, ConsumerType] = {
    t.name: t
    for t in (
        ConsumerType(
            "household",
            hourly_profile=_HOUSEHOLD_HOURS,
            weekday_factors=_HOUSEHOLD_WEEK,
            holiday_factor=1.06,
            seasonal_amplitude=0.10,
            night_use_l_h=1.6,
            noise_fraction=1.0,
            daily_noise_fraction=0.04,
        ),
        ConsumerType(
            "garden-household",  # a household that waters its garden on summer evenings
            hourly_profile=_HOUSEHOLD_HOURS,
            weekday_factors=_HOUSEHOLD_WEEK,
            holiday_factor=1.06,
            seasonal_amplitude=0.10,
            irrigation_m3_per_day=0.15,
            irrigation_months=(5, 6, 7, 8, 9),
            irrigation_hours=(19, 20, 21),
            irrigation_probability=0.6,
            night_use_l_h=1.6,
            noise_fraction=1.0,
            daily_noise_fraction=0.04,
        ),
        ConsumerType(
            "business",
            hourly_profile=(0.05, 0.05, 0.05, 0.05, 0.05, 0.10, 0.40, 1.20, 1.90, 2.10, 2.10, 2.00,
                            1.70, 1.90, 2.10, 2.10, 1.90, 1.60, 1.00, 0.40, 0.15, 0.10, 0.05, 0.05),
            weekday_factors=(1.15, 1.15, 1.15, 1.15, 1.15, 0.85, 0.40),
            holiday_factor=0.2,
            seasonal_amplitude=0.05,
            night_use_l_h=0.5,
            noise_fraction=0.8,
            daily_noise_fraction=0.05,
        ),
        ConsumerType(
            "school",  # closed at weekends, on public and school holidays; Wednesday half-day
            hourly_profile=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.10, 0.60, 2.60, 2.40, 2.80, 3.00,
                            3.20, 2.40, 2.20, 2.20, 1.60, 0.60, 0.20, 0.10, 0.0, 0.0, 0.0, 0.0),
            weekday_factors=(1.0, 1.0, 0.5, 1.0, 1.0, 0.02, 0.02),
            holiday_factor=0.02,
            school_holiday_factor=0.02,
            noise_fraction=0.6,
        ),
        ConsumerType(
            "farm",  # milking at dawn and dusk, troughs all day, irrigation on summer nights
            hourly_profile=(0.30, 0.30, 0.30, 0.30, 0.60, 2.00, 2.20, 1.60, 1.10, 1.00, 1.00, 1.00,
                            1.00, 1.00, 1.00, 1.00, 1.20, 2.00, 2.20, 1.40, 0.80, 0.50, 0.40, 0.30),
            seasonal_amplitude=0.15,
            irrigation_m3_per_day=6.0,
            irrigation_months=(6, 7, 8),
            irrigation_hours=(22, 23, 0, 1, 2, 3, 4),
            irrigation_probability=0.75,
            night_use_l_h=12.0,
            noise_fraction=0.5,
            daily_noise_fraction=0.05,
        ),
        ConsumerType(
            "public",  # town hall, sports hall: office hours, closed on holidays
            hourly_profile=(0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.30, 1.50, 2.20, 2.00, 2.00, 1.80,
                            1.50, 1.80, 2.00, 2.00, 1.80, 1.20, 0.60, 0.40, 0.30, 0.10, 0.05, 0.05),
            weekday_factors=(1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.3),
            holiday_factor=0.3,
            noise_fraction=0.7,
        ),
        ConsumerType("flat", hourly_profile=(1.0,) * 24, noise_fraction=0.05),
    )
}  # fmt: skip
"""Built-in consumer types; a scenario's ``consumer_types`` adds or changes entries."""


def pattern(ctype: ConsumerType, grid: TimeGrid) -> FloatArray:
    """Shape × day factor × season per step, for a consumer of this type.

    Computed once per type and shared by every consumer of it.
    """
    profile = np.asarray(ctype.hourly_profile, dtype=np.float64)
    profile = profile / profile.mean() if profile.mean() > 0 else profile
    shape: FloatArray = np.interp(grid.local_hour, _HOURS, profile, period=24)
    weekly = np.asarray(ctype.weekday_factors, dtype=np.float64)
    weekly = weekly / weekly.mean() if weekly.mean() > 0 else weekly
    day = np.where(grid.public_holiday, ctype.holiday_factor, weekly[grid.weekday])
    day = np.where(grid.school_holiday, day * ctype.school_holiday_factor, day)
    season = 1 + ctype.seasonal_amplitude * np.cos(
        2 * np.pi * (grid.day_of_year - _PEAK_DAY_OF_YEAR) / 365.25
    )
    out: FloatArray = shape * day * season
    return out


def _per_day(grid: TimeGrid, values: npt.NDArray[T]) -> npt.NDArray[T]:
    """Spread one value per local day of the window onto the steps."""
    out: npt.NDArray[T] = values[grid.local_day - grid.local_day[0]]
    return out


def irrigation_m3h(
    ctype: ConsumerType, count: float, grid: TimeGrid, rng: np.random.Generator
) -> FloatArray:
    """Irrigation flow: on a random share of days in season, during the watering hours."""
    days = int(grid.local_day[-1] - grid.local_day[0]) + 1
    if ctype.irrigation_m3_per_day <= 0 or not ctype.irrigation_hours:
        return np.zeros(grid.n)
    watering_day = rng.random(days) < ctype.irrigation_probability
    in_season = np.isin(grid.month, ctype.irrigation_months) & _per_day(grid, watering_day)
    in_hours = np.isin(grid.local_hour.astype(np.int64), ctype.irrigation_hours)
    rate_m3h = count * ctype.irrigation_m3_per_day / len(ctype.irrigation_hours)
    return np.where(in_season & in_hours, rate_m3h, 0.0)


def group_flow_m3h(
    ctype: ConsumerType,
    shared_pattern: FloatArray,
    grid: TimeGrid,
    *,
    count: int,
    m3_per_day: float,
    night_use_l_h: float,
    rng: np.random.Generator,
) -> FloatArray:
    """True flow of ``count`` consumers of ``m3_per_day`` each (``shared_pattern``:
    :func:`pattern` of ``ctype``)."""
    mean_m3h = count * m3_per_day / 24
    night_m3h = min(mean_m3h, count * night_use_l_h / 1000)
    days = int(grid.local_day[-1] - grid.local_day[0]) + 1
    daily = 1 + ctype.daily_noise_fraction * rng.standard_normal(days)
    cv = ctype.noise_fraction / np.sqrt(count) * np.sqrt(NOISE_STEP_S / grid.step_s)
    if cv > 0:
        k = 1 / cv**2  # gamma noise: positive, mean 1, coefficient of variation cv
        noise = rng.gamma(k, 1 / k, grid.n)
    else:
        noise = np.ones(grid.n)
    variable = (mean_m3h - night_m3h) * shared_pattern * np.clip(_per_day(grid, daily), 0, None)
    flow: FloatArray = night_m3h + variable * noise + irrigation_m3h(ctype, count, grid, rng)
    return flow


def consumer_types(spec: ScenarioSpec) -> dict[str, ConsumerType]:
    """Built-in consumer types plus the scenario's own (each derived from its ``base``)."""
    types = dict(CONSUMER_TYPES)
    for name, custom in spec.consumer_types.items():
        flat = ConsumerType(name, hourly_profile=(1.0,) * 24)
        base = CONSUMER_TYPES.get(custom.base or name, flat)  # a built-in's name: change it
        changes = custom.model_dump(exclude={"base"}, exclude_none=True)
        types[name] = dataclasses.replace(base, name=name, **changes)
    return types
