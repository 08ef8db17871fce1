"""P104.3 network yield of a DMA over a period, from metered flows and billed volumes.

A DMA is treated as a distribution service of its own: water entering through its
inlet meters is Vimp, water leaving through outlet meters is Vexp, and the billed
volume is VCA (unbilled authorised use is not modelled yet), so
yield = (billed + outlet) / inlet (water-loss-indicators.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput
from leaksense.server.domain.indicators import rendement_pct
from leaksense.server.domain.volumes import (
    MeteredVolume,
    check_hour_aligned,
    integrate_hourly,
    prorate_billing,
)
from leaksense.server.services.billing import billing_periods
from leaksense.server.services.entities import dma_meters
from leaksense.server.stores.base import ReadingStore


@dataclass(frozen=True, slots=True)
class MeterVolume:
    sensor_id: str
    role: str
    volume_m3: float
    completeness_pct: float
    hours_estimated: int


@dataclass(frozen=True, slots=True)
class YieldReport:
    """Everything behind one yield figure, so a reader can check it."""

    dma_id: str
    start: datetime
    end: datetime
    days: float
    inlet_m3: float
    outlet_m3: float
    distributed_m3: float
    billed_m3: float
    billed_prorated_m3: float
    billing_coverage_pct: float
    losses_m3: float
    losses_m3_per_day: float
    yield_pct: float
    completeness_pct: float
    meters: list[MeterVolume]
    warnings: list[str]
    """Bilingual sentences on what makes the figure less certain (empty when none)."""


def _meter(store: ReadingStore, sensor_id: str, start: datetime, end: datetime) -> MeteredVolume:
    return integrate_hourly(store.hourly_flow(sensor_id, start, end), start, end)


def compute_yield(
    session: Session, store: ReadingStore, dma_id: str, start: datetime, end: datetime
) -> YieldReport:
    """Yield of ``dma_id`` over ``[start, end)`` (whole UTC hours)."""
    hours = check_hour_aligned(start, end)
    inlets, outlets = dma_meters(session, dma_id)
    if not inlets:
        raise InvalidInput(f"DMA {dma_id!r} has no inlet meter: declare one in the network file")
    meters = [(s, "inlet", _meter(store, s, start, end)) for s in inlets]
    meters += [(s, "outlet", _meter(store, s, start, end)) for s in outlets]
    if all(v.hours_measured == 0 for s, role, v in meters if role == "inlet"):
        raise InvalidInput(f"no inlet readings for DMA {dma_id!r} in the requested period")
    inlet_m3 = sum(v.volume_m3 for _, role, v in meters if role == "inlet")
    outlet_m3 = sum(v.volume_m3 for _, role, v in meters if role == "outlet")
    billed = prorate_billing(billing_periods(session, dma_id, start, end), start, end)
    days = hours / 24
    losses_m3 = inlet_m3 - outlet_m3 - billed.volume_m3
    measured = sum(v.hours_measured for _, _, v in meters)
    completeness_pct = 100.0 * measured / (hours * len(meters))
    return YieldReport(
        dma_id=dma_id,
        start=start,
        end=end,
        days=days,
        inlet_m3=inlet_m3,
        outlet_m3=outlet_m3,
        distributed_m3=inlet_m3 - outlet_m3,
        billed_m3=billed.volume_m3,
        billed_prorated_m3=billed.prorated_m3,
        billing_coverage_pct=billed.coverage_pct,
        losses_m3=losses_m3,
        losses_m3_per_day=losses_m3 / days,
        yield_pct=rendement_pct(
            vp_m3=0.0, vimp_m3=inlet_m3, vexp_m3=outlet_m3, vca_m3=billed.volume_m3
        ),
        completeness_pct=completeness_pct,
        meters=[
            MeterVolume(s, role, v.volume_m3, v.completeness_pct, v.hours_estimated)
            for s, role, v in meters
        ],
        warnings=_warnings(billed.coverage_pct, completeness_pct, meters),
    )


def _warnings(
    billing_coverage_pct: float,
    completeness_pct: float,
    meters: list[tuple[str, str, MeteredVolume]],
) -> list[str]:
    out = []
    if billing_coverage_pct < 99.99:
        out.append(
            f"billed volumes cover only {billing_coverage_pct:.0f} % of the period: the yield is"
            " understated / les volumes facturés ne couvrent que"
            f" {billing_coverage_pct:.0f} % de la période : le rendement est sous-estimé"
        )
    if completeness_pct < 99.99:
        gaps = ", ".join(f"{s} {v.hours_estimated} h" for s, _, v in meters if v.hours_estimated)
        out.append(
            f"meter data {completeness_pct:.1f} % complete, hours estimated: {gaps} /"
            f" données de comptage complètes à {completeness_pct:.1f} %, heures estimées : {gaps}"
        )
    return out
