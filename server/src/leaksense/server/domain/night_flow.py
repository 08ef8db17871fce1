"""Minimum night flow analysis (water-loss-indicators.md §4).

At night legitimate use is lowest and pressure highest, so the minimum night flow
(MNF) into a DMA is mostly leakage: net night flow NNF = MNF − household night use −
non-household night use − exceptional users. Leakage varies with pressure (FAVAD:
L1/L0 = (P1/P0)^N1), and pressure is lower by day, so a day's leakage is not NNF × 24
but NNF × NDF, the night-day factor NDF = Σ over 24 hours of (AZP_h / AZP_night)^N1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leaksense.core.errors import InvalidInput

HOUSEHOLD_NIGHT_USE_L_H = 1.6
"""Household night use per property, L/h: the middle of the reference's 1.5–1.7 range."""
HOURS_PER_DAY = 24


def net_night_flow_m3h(
    *,
    mnf_m3h: float,
    households: int,
    household_night_use_l_h: float = HOUSEHOLD_NIGHT_USE_L_H,
    non_household_night_use_m3h: float = 0.0,
    exceptional_night_use_m3h: float = 0.0,
) -> float:
    """NNF = MNF − households × night use − non-household − exceptional night use (m³/h)."""
    household_m3h = households * household_night_use_l_h / 1000.0
    return mnf_m3h - household_m3h - non_household_night_use_m3h - exceptional_night_use_m3h


def favad_ratio(*, p1_m: float, p0_m: float, n1: float) -> float:
    """L1 / L0 = (P1 / P0)^N1: how leakage scales when pressure goes from P0 to P1."""
    if p0_m <= 0 or p1_m < 0:
        raise InvalidInput(f"FAVAD needs P0 > 0 and P1 >= 0 (got {p0_m}, {p1_m} m)")
    ratio: float = (p1_m / p0_m) ** n1
    return ratio


def night_day_factor_h(
    hourly_pressure_m: Sequence[float], *, night_pressure_m: float, n1: float
) -> float:
    """NDF (h/day) = Σ_h (AZP_h / AZP_night)^N1 over the 24 hours; 24 at constant pressure."""
    if len(hourly_pressure_m) != HOURS_PER_DAY:
        raise InvalidInput(f"NDF needs 24 hourly pressures (got {len(hourly_pressure_m)})")
    return sum(favad_ratio(p1_m=p, p0_m=night_pressure_m, n1=n1) for p in hourly_pressure_m)


def daily_leakage_m3(*, nnf_m3h: float, ndf_h: float) -> float:
    """Daily leakage (m³/day) = NNF × NDF."""
    return nnf_m3h * ndf_h


def trend_per_day(values: Sequence[float]) -> float | None:
    """Least-squares slope of a daily series, units per day (None under 2 points).

    Applied to daily MNF it shows a leak growing (positive) or repairs paying off.
    """
    n = len(values)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    return sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values)) / sxx


@dataclass(frozen=True, slots=True)
class NightFlowAnalysis:
    """MNF analysis of a DMA over a period (m³/h unless stated)."""

    days_analysed: int
    mnf_m3h: float
    """Mean of the daily minimum hourly flows."""
    household_night_use_m3h: float
    non_household_night_use_m3h: float
    exceptional_night_use_m3h: float
    nnf_m3h: float
    ndf_h: float
    n1: float
    daily_leakage_m3: float
    mnf_trend_m3h_per_day: float | None
    constant_pressure: bool
    """No pressure profile: NDF = 24 h assumed."""


def analyse_night_flow(
    daily_mnf_m3h: Sequence[float],
    *,
    households: int,
    household_night_use_l_h: float = HOUSEHOLD_NIGHT_USE_L_H,
    non_household_night_use_m3h: float = 0.0,
    exceptional_night_use_m3h: float = 0.0,
    hourly_pressure_m: Sequence[float] | None = None,
    n1: float = 1.0,
) -> NightFlowAnalysis:
    """MNF, NNF, NDF, daily leakage and MNF trend from a series of daily MNFs.

    AZP_night is the highest hourly pressure of the profile (pressure peaks when demand
    is lowest, at the MNF hour); without a profile pressure is taken as constant.
    """
    if not daily_mnf_m3h:
        raise InvalidInput("night flow analysis needs at least one day of inlet data")
    mnf = sum(daily_mnf_m3h) / len(daily_mnf_m3h)
    nnf = net_night_flow_m3h(
        mnf_m3h=mnf,
        households=households,
        household_night_use_l_h=household_night_use_l_h,
        non_household_night_use_m3h=non_household_night_use_m3h,
        exceptional_night_use_m3h=exceptional_night_use_m3h,
    )
    if hourly_pressure_m is None:
        ndf = float(HOURS_PER_DAY)
    else:
        ndf = night_day_factor_h(hourly_pressure_m, night_pressure_m=max(hourly_pressure_m), n1=n1)
    return NightFlowAnalysis(
        days_analysed=len(daily_mnf_m3h),
        mnf_m3h=mnf,
        household_night_use_m3h=households * household_night_use_l_h / 1000.0,
        non_household_night_use_m3h=non_household_night_use_m3h,
        exceptional_night_use_m3h=exceptional_night_use_m3h,
        nnf_m3h=nnf,
        ndf_h=ndf,
        n1=n1,
        daily_leakage_m3=daily_leakage_m3(nnf_m3h=nnf, ndf_h=ndf),
        mnf_trend_m3h_per_day=trend_per_day(daily_mnf_m3h),
        constant_pressure=hourly_pressure_m is None,
    )
