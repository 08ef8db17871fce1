"""IWA/AWWA standard water balance, UARL and ILI (water-loss-indicators.md §3).

The balance splits the system input volume (SIV) into authorised consumption and
water losses, losses into apparent (unauthorised use, customer-meter
under-registration) and real losses (CARL) — real losses being what is left. Lambert's
UARL formula is published for Nc > 5 000, more than 20 connections per km and
pressures of 25–100 m: outside that range the ILI is still given, with warnings.
P104.3 counts unbilled authorised use as consumed, so rendement ≠ 1 − NRW %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from leaksense.core.errors import InvalidInput

UARL_L_PER_KM_MAINS_PER_M = 18.0
UARL_L_PER_CONNECTION_PER_M = 0.8
UARL_L_PER_KM_PRIVATE_PER_M = 25.0
"""Lambert's UARL coefficients, litres per day per metre of pressure."""

ValidityIssue = Literal["few_connections", "low_density", "pressure_out_of_range"]


@dataclass(frozen=True, slots=True)
class WaterBalance:
    """The IWA water balance over a period, m³."""

    system_input_m3: float
    billed_metered_m3: float
    billed_unmetered_m3: float
    unbilled_metered_m3: float
    unbilled_unmetered_m3: float
    unauthorised_m3: float
    meter_under_registration_m3: float

    @property
    def authorised_m3(self) -> float:
        return (
            self.billed_metered_m3
            + self.billed_unmetered_m3
            + self.unbilled_metered_m3
            + self.unbilled_unmetered_m3
        )

    @property
    def revenue_water_m3(self) -> float:
        return self.billed_metered_m3 + self.billed_unmetered_m3

    @property
    def non_revenue_water_m3(self) -> float:
        return self.system_input_m3 - self.revenue_water_m3

    @property
    def nrw_pct(self) -> float:
        if self.system_input_m3 <= 0:
            raise InvalidInput("NRW % is undefined without system input volume")
        return 100.0 * self.non_revenue_water_m3 / self.system_input_m3

    @property
    def water_losses_m3(self) -> float:
        return self.system_input_m3 - self.authorised_m3

    @property
    def apparent_losses_m3(self) -> float:
        return self.unauthorised_m3 + self.meter_under_registration_m3

    @property
    def real_losses_m3(self) -> float:
        """CARL over the period: losses that are not apparent."""
        return self.water_losses_m3 - self.apparent_losses_m3


def under_registration_m3(billed_metered_m3: float, under_registration_pct: float) -> float:
    """Water that passed customer meters unregistered: a meter missing u % registers
    (1 − u) of what passes, so the missed volume is billed × u / (1 − u)."""
    if not 0 <= under_registration_pct < 100:
        raise InvalidInput(
            f"under-registration must be in [0, 100) % (got {under_registration_pct})"
        )
    share = under_registration_pct / 100.0
    return billed_metered_m3 * share / (1.0 - share)


def uarl_l_per_day(
    *, mains_km: float, service_connections: int, private_pipes_km: float, pressure_m: float
) -> float:
    """UARL (litres/day) = (18 × Lm + 0.8 × Nc + 25 × Lp) × P."""
    if min(mains_km, service_connections, private_pipes_km) < 0 or pressure_m <= 0:
        raise InvalidInput("UARL needs non-negative lengths and connections and a pressure > 0")
    return (
        UARL_L_PER_KM_MAINS_PER_M * mains_km
        + UARL_L_PER_CONNECTION_PER_M * service_connections
        + UARL_L_PER_KM_PRIVATE_PER_M * private_pipes_km
    ) * pressure_m


def uarl_validity(
    *, mains_km: float, service_connections: int, pressure_m: float
) -> list[ValidityIssue]:
    """Why the UARL formula may not apply here (empty when inside its published range)."""
    issues: list[ValidityIssue] = []
    if service_connections <= 5_000:
        issues.append("few_connections")
    if mains_km > 0 and service_connections / mains_km <= 20:
        issues.append("low_density")
    if not 25 <= pressure_m <= 100:
        issues.append("pressure_out_of_range")
    return issues


def ili(carl_l_per_day: float, uarl_l_per_day_: float) -> float:
    """ILI = CARL / UARL (same units)."""
    if uarl_l_per_day_ <= 0:
        raise InvalidInput("ILI is undefined when UARL is 0")
    return carl_l_per_day / uarl_l_per_day_


@dataclass(frozen=True, slots=True)
class IliBands:
    """World Bank Institute bands: upper bounds of A, B and C (unverified, configurable)."""

    a_below: float
    b_below: float
    c_below: float


WBI_BANDS = {"developed": IliBands(2.0, 4.0, 8.0), "developing": IliBands(4.0, 8.0, 16.0)}


def ili_band(value: float, bands: IliBands = WBI_BANDS["developed"]) -> str:
    """``A`` to ``D`` in the World Bank Institute banding."""
    for band, upper in (("A", bands.a_below), ("B", bands.b_below), ("C", bands.c_below)):
        if value < upper:
            return band
    return "D"
