"""What an efficiency report holds: volumes with their sources, indicators, the IWA
balance, night flow, per DMA and network-wide. Plain frozen values, computed by
``reports.py`` and rendered by the API, the dashboard and the PDF/CSV exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from leaksense.server.domain import indicators as ind
from leaksense.server.domain.night_flow import NightFlowAnalysis
from leaksense.server.services.report_constants import ReportConstants

Source = Literal["metered", "billed", "declared", "computed"]


@dataclass(frozen=True, slots=True)
class Note:
    """Something a reader must know about a figure; worded by the report catalogue."""

    code: str
    params: dict[str, str | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VolumeFigure:
    """One volume of §1 with where it comes from and how much of it was measured."""

    key: str
    value_m3: float
    source: Source
    completeness_pct: float | None
    """Metered: share of meter-hours measured; billed: share of the period covered."""
    estimated_m3: float = 0.0


@dataclass(frozen=True, slots=True)
class IndicatorValue:
    key: str
    code: str
    unit: str
    value: float | None
    completeness_pct: float | None


@dataclass(frozen=True, slots=True)
class EstimatedDay:
    day: datetime
    hours_estimated: int


@dataclass(frozen=True, slots=True)
class MeterReport:
    sensor_id: str
    role: str
    volume_m3: float
    hours_expected: int
    hours_measured: int
    completeness_pct: float
    estimated_m3: float
    estimated_days: list[EstimatedDay]


@dataclass(frozen=True, slots=True)
class Grenelle:
    threshold_pct: float
    zre: bool
    compliant: bool
    margin_points: float


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """The IWA balance (m³) with its derived terms."""

    system_input_m3: float
    authorised_m3: float
    billed_metered_m3: float
    billed_unmetered_m3: float
    unbilled_metered_m3: float
    unbilled_unmetered_m3: float
    revenue_water_m3: float
    non_revenue_water_m3: float
    nrw_pct: float | None
    water_losses_m3: float
    apparent_losses_m3: float
    unauthorised_m3: float
    meter_under_registration_m3: float
    real_losses_m3: float


@dataclass(frozen=True, slots=True)
class UarlReport:
    uarl_m3_per_day: float
    carl_m3_per_day: float
    ili: float
    band: str
    validity_issues: list[str]
    pressure_m: float


@dataclass(frozen=True, slots=True)
class BillingReport:
    billed_m3: float
    prorated_m3: float
    prorated_pct: float
    coverage_pct: float


@dataclass(frozen=True, slots=True)
class DailyPoint:
    day: datetime
    intake_m3: float
    exported_m3: float
    authorised_m3: float
    yield_pct: float | None
    mnf_m3h: float | None
    measured_pct: float


@dataclass(frozen=True, slots=True)
class ScopeReport:
    """The report of one DMA, or of the network (``scope_id`` ``network``)."""

    scope_id: str
    name: str
    days: int
    mains_km: float | None
    volumes: list[VolumeFigure]
    indicators: list[IndicatorValue]
    grenelle: Grenelle | None
    category: ind.Category | None
    category_source: Literal["declared", "ilc"] | None
    ilp_class: ind.IlpClass | None
    balance: BalanceReport
    uarl: UarlReport | None
    night_flow: NightFlowAnalysis | None
    billing: BillingReport
    metered_completeness_pct: float
    meters: list[MeterReport]
    daily: list[DailyPoint]
    notes: list[Note]


@dataclass(frozen=True, slots=True)
class EfficiencyReport:
    period_start: datetime
    period_end: datetime
    period_kind: str
    days: int
    generated_at: datetime
    dmas: list[ScopeReport]
    network: ScopeReport | None
    """All the reported DMAs together (when there are several)."""
    constants: ReportConstants
