"""Network-efficiency report: the French indicators, the IWA balance, night flow, per DMA
and network-wide, for any whole-day period.

Volumes of a DMA, in the reference's vocabulary:

- Vimp = its inlet meters + declared ``imported``; Vexp = its outlet meters + declared
  ``exported``; Vp = declared ``produced`` (water no Leaksense meter sees);
- Vc = billed volumes prorated to the period (per DMA and per customer imports);
- Vsc = declared ``unmetered_authorised`` + ``billed_unmetered``; Vs = ``network_service``.

Network-wide, a meter that is one reported DMA's outlet and another's inlet is an
internal transfer: it leaves both Vimp and Vexp. The IWA system input is VMD (water put
into distribution, exports removed). Every volume carries where it comes from and how
complete it is; the report's notes say what makes a figure less certain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput
from leaksense.server.domain import indicators as ind
from leaksense.server.domain.before_after import DayBalance
from leaksense.server.domain.night_flow import NightFlowAnalysis, analyse_night_flow
from leaksense.server.domain.water_balance import (
    WBI_BANDS,
    WaterBalance,
    ili,
    ili_band,
    uarl_l_per_day,
    uarl_validity,
    under_registration_m3,
)
from leaksense.server.services.report_constants import ReportConstants
from leaksense.server.services.report_data import (
    DmaInputs,
    MeterDays,
    ReportPeriod,
    all_dmas,
    gather,
    net_hourly_mnf,
)
from leaksense.server.services.report_model import (
    BalanceReport,
    BillingReport,
    DailyPoint,
    EfficiencyReport,
    EstimatedDay,
    Grenelle,
    IndicatorValue,
    MeterReport,
    Note,
    ScopeReport,
    UarlReport,
    VolumeFigure,
)
from leaksense.server.stores.base import ReadingStore


@dataclass
class _Totals:
    """Additive volumes of a scope (a DMA, or several summed), totals and per day."""

    vp: float
    vimp: float
    vexp: float
    vc: float
    vsc: float
    vs: float
    billed_unmetered: float
    unauthorised: float
    under_registration: float
    intake_daily: list[float]
    exported_daily: list[float]
    authorised_daily: list[float]
    meters: list[tuple[str, MeterDays]]


def _dma_totals(inputs: DmaInputs, internal: set[str]) -> _Totals:
    d = inputs.declared
    inlets = [m for m in inputs.inlets if m.sensor_id not in internal]
    outlets = [m for m in inputs.outlets if m.sensor_id not in internal]
    n = len(inputs.billed_daily_m3)

    def daily(meters: Sequence[MeterDays], *kinds: str) -> list[float]:
        return [
            sum(m.daily_m3[i] for m in meters) + sum(d[k].daily_m3[i] for k in kinds)
            for i in range(n)
        ]

    vsc = d["unmetered_authorised"].total_m3 + d["billed_unmetered"].total_m3
    authorised_daily = [
        inputs.billed_daily_m3[i]
        + sum(
            d[k].daily_m3[i]
            for k in ("unmetered_authorised", "billed_unmetered", "network_service")
        )
        for i in range(n)
    ]
    return _Totals(
        vp=d["produced"].total_m3,
        vimp=sum(m.volume_m3 for m in inlets) + d["imported"].total_m3,
        vexp=sum(m.volume_m3 for m in outlets) + d["exported"].total_m3,
        vc=inputs.billed.volume_m3,
        vsc=vsc,
        vs=d["network_service"].total_m3,
        billed_unmetered=d["billed_unmetered"].total_m3,
        unauthorised=d["unauthorised"].total_m3,
        under_registration=under_registration_m3(
            inputs.billed.volume_m3, inputs.dma.under_registration_pct
        ),
        intake_daily=daily(inlets, "produced", "imported"),
        exported_daily=daily(outlets, "exported"),
        authorised_daily=authorised_daily,
        meters=[("inlet", m) for m in inlets] + [("outlet", m) for m in outlets],
    )


def _sum_totals(parts: Sequence[_Totals]) -> _Totals:
    def add(values: Sequence[list[float]]) -> list[float]:
        return [sum(column) for column in zip(*values, strict=True)]

    return _Totals(
        vp=sum(p.vp for p in parts),
        vimp=sum(p.vimp for p in parts),
        vexp=sum(p.vexp for p in parts),
        vc=sum(p.vc for p in parts),
        vsc=sum(p.vsc for p in parts),
        vs=sum(p.vs for p in parts),
        billed_unmetered=sum(p.billed_unmetered for p in parts),
        unauthorised=sum(p.unauthorised for p in parts),
        under_registration=sum(p.under_registration for p in parts),
        intake_daily=add([p.intake_daily for p in parts]),
        exported_daily=add([p.exported_daily for p in parts]),
        authorised_daily=add([p.authorised_daily for p in parts]),
        meters=[m for p in parts for m in p.meters],
    )


def _completeness(meters: Sequence[tuple[str, MeterDays]]) -> float:
    expected = sum(m.hours_expected for _, m in meters)
    return 100.0 * sum(m.hours_total for _, m in meters) / expected if expected else 0.0


def _meter_report(role: str, m: MeterDays, period: ReportPeriod) -> MeterReport:
    starts = period.day_starts()
    return MeterReport(
        sensor_id=m.sensor_id,
        role=role,
        volume_m3=m.volume_m3,
        hours_expected=m.hours_expected,
        hours_measured=m.hours_total,
        completeness_pct=m.completeness_pct,
        estimated_m3=m.estimated_m3,
        estimated_days=[
            EstimatedDay(starts[i], 24 - h) for i, h in enumerate(m.hours_measured) if h < 24
        ],
    )


def _volumes(t: _Totals, metered_pct: float, billing_pct: float) -> list[VolumeFigure]:
    estimated = sum(m.estimated_m3 for _, m in t.meters)
    vmd = t.vp + t.vimp - t.vexp
    vca = t.vc + t.vsc + t.vs
    return [
        VolumeFigure("vp_m3", t.vp, "declared", None),
        VolumeFigure("vimp_m3", t.vimp, "metered", metered_pct, estimated),
        VolumeFigure("vexp_m3", t.vexp, "metered", metered_pct),
        VolumeFigure("vmd_m3", vmd, "computed", metered_pct, estimated),
        VolumeFigure("vc_m3", t.vc, "billed", billing_pct),
        VolumeFigure("vsc_m3", t.vsc, "declared", None),
        VolumeFigure("vs_m3", t.vs, "declared", None),
        VolumeFigure("vca_m3", vca, "computed", billing_pct),
    ]


def _balance(t: _Totals) -> BalanceReport:
    siv = t.vp + t.vimp - t.vexp
    b = WaterBalance(
        system_input_m3=siv,
        billed_metered_m3=t.vc,
        billed_unmetered_m3=t.billed_unmetered,
        unbilled_metered_m3=0.0,
        unbilled_unmetered_m3=t.vsc - t.billed_unmetered + t.vs,
        unauthorised_m3=t.unauthorised,
        meter_under_registration_m3=t.under_registration,
    )
    return BalanceReport(
        system_input_m3=siv,
        authorised_m3=b.authorised_m3,
        billed_metered_m3=b.billed_metered_m3,
        billed_unmetered_m3=b.billed_unmetered_m3,
        unbilled_metered_m3=b.unbilled_metered_m3,
        unbilled_unmetered_m3=b.unbilled_unmetered_m3,
        revenue_water_m3=b.revenue_water_m3,
        non_revenue_water_m3=b.non_revenue_water_m3,
        nrw_pct=b.nrw_pct if siv > 0 else None,
        water_losses_m3=b.water_losses_m3,
        apparent_losses_m3=b.apparent_losses_m3,
        unauthorised_m3=b.unauthorised_m3,
        meter_under_registration_m3=b.meter_under_registration_m3,
        real_losses_m3=b.real_losses_m3,
    )


@dataclass(frozen=True, slots=True)
class _Network:
    """The description a scope's UARL and night flow need (summed network-wide)."""

    mains_km: float | None
    connections: int | None
    private_km: float
    pressure_m: float | None
    category: ind.Category | None
    zre: bool


def _uarl(
    net: _Network, balance: BalanceReport, days: int, c: ReportConstants
) -> UarlReport | None:
    if net.mains_km is None or net.connections is None or net.pressure_m is None:
        return None
    uarl = uarl_l_per_day(
        mains_km=net.mains_km,
        service_connections=net.connections,
        private_pipes_km=net.private_km,
        pressure_m=net.pressure_m,
    )
    carl = balance.real_losses_m3 / days * 1000.0
    value = ili(carl, uarl)
    issues = uarl_validity(
        mains_km=net.mains_km, service_connections=net.connections, pressure_m=net.pressure_m
    )
    return UarlReport(
        uarl / 1000.0, carl / 1000.0, value, ili_band(value, WBI_BANDS[c.ili_bands]), list(issues),
        net.pressure_m,
    )  # fmt: skip


def _scope(
    scope_id: str,
    name: str,
    t: _Totals,
    *,
    net: _Network,
    period: ReportPeriod,
    billing: BillingReport,
    night: NightFlowAnalysis | None,
    daily_mnf: list[float | None],
    c: ReportConstants,
) -> ScopeReport:
    metered_pct = _completeness(t.meters)
    sv = ind.ServiceVolumes(t.vp, t.vimp, t.vexp, t.vc, t.vsc, t.vs, period.days, net.mains_km)
    values = ind.compute_indicators(sv)
    completeness = {"vmd_m3": metered_pct, "vca_m3": billing.coverage_pct}
    indicator_rows = [
        IndicatorValue(
            d.key, d.code, d.unit, values[d.key],
            completeness.get(d.key, min(metered_pct, billing.coverage_pct)),
        )
        for d in ind.INDICATORS
    ]  # fmt: skip
    ilc, ilp, rendement = (
        values["ilc_m3_km_day"], values["ilp_m3_km_day"], values["rendement_pct"]
    )  # fmt: skip
    category = net.category or (None if ilc is None else ind.category_by_ilc(ilc, c.indicators))
    grenelle = None
    if ilc is not None and rendement is not None:
        g = ind.grenelle_compliance(rendement, ilc, zre=net.zre, constants=c.indicators)
        grenelle = Grenelle(g.threshold_pct, g.zre, g.compliant, g.margin_points)
    balance = _balance(t)
    uarl = _uarl(net, balance, period.days, c)
    report = ScopeReport(
        scope_id=scope_id,
        name=name,
        days=period.days,
        mains_km=net.mains_km,
        volumes=_volumes(t, metered_pct, billing.coverage_pct),
        indicators=indicator_rows,
        grenelle=grenelle,
        category=category,
        category_source=None if category is None else ("declared" if net.category else "ilc"),
        ilp_class=None
        if ilp is None or category is None
        else ind.ilp_class(ilp, category, c.indicators),
        balance=balance,
        uarl=uarl,
        night_flow=night,
        billing=billing,
        metered_completeness_pct=metered_pct,
        meters=[_meter_report(role, m, period) for role, m in t.meters],
        daily=_daily(t, period, daily_mnf),
        notes=[],
    )
    report.notes.extend(_notes(report, net))
    return report


def _daily(t: _Totals, period: ReportPeriod, mnf: list[float | None]) -> list[DailyPoint]:
    out = []
    for i, day in enumerate(period.day_starts()):
        intake = t.intake_daily[i]
        measured = [m.hours_measured[i] for _, m in t.meters]
        out.append(
            DailyPoint(
                day=day,
                intake_m3=intake,
                exported_m3=t.exported_daily[i],
                authorised_m3=t.authorised_daily[i],
                yield_pct=(
                    100.0 * (t.authorised_daily[i] + t.exported_daily[i]) / intake
                    if intake > 0
                    else None
                ),
                mnf_m3h=mnf[i] if i < len(mnf) else None,
                measured_pct=100.0 * sum(measured) / (24 * len(measured)) if measured else 0.0,
            )
        )
    return out


def _notes(r: ScopeReport, net: _Network) -> list[Note]:
    notes: list[Note] = []
    if r.metered_completeness_pct < 99.995:
        hours = sum(m.hours_expected - m.hours_measured for m in r.meters)
        notes.append(
            Note("metered_incomplete", {"pct": r.metered_completeness_pct, "hours": hours})
        )
    if r.billing.coverage_pct < 99.995:
        notes.append(Note("billing_coverage", {"pct": r.billing.coverage_pct}))
    if r.billing.prorated_m3 > 0:
        notes.append(
            Note("billing_prorated", {"m3": r.billing.prorated_m3, "pct": r.billing.prorated_pct})
        )
    if net.mains_km is None:
        notes.append(Note("no_mains_length"))
    if r.grenelle is not None and not r.grenelle.compliant:
        notes.append(Note("grenelle_non_compliant", {"threshold": r.grenelle.threshold_pct}))
    if r.category_source == "ilc":
        notes.append(Note("category_by_ilc", {"category": r.category or ""}))
    if r.uarl is None:
        notes.append(Note("no_uarl"))
    elif r.uarl.validity_issues:
        notes.append(Note("uarl_validity", {"issues": ",".join(r.uarl.validity_issues)}))
    if r.night_flow is not None and r.night_flow.constant_pressure:
        notes.append(Note("constant_pressure"))
    return notes


def _billing(inputs: Sequence[DmaInputs]) -> BillingReport:
    billed = sum(i.billed.volume_m3 for i in inputs)
    prorated = sum(i.billed.prorated_m3 for i in inputs)
    coverage = min((i.billed.coverage_pct for i in inputs), default=0.0)
    return BillingReport(billed, prorated, 100.0 * prorated / billed if billed else 0.0, coverage)


def _night(
    inputs: DmaInputs, mnf: list[float | None], c: ReportConstants
) -> tuple[NightFlowAnalysis | None, list[Note]]:
    values = [v for v in mnf if v is not None]
    if not values:
        return None, [Note("no_night_flow")]
    dma = inputs.dma
    notes = [] if dma.households is not None else [Note("no_households")]
    return (
        analyse_night_flow(
            values,
            households=dma.households or 0,
            household_night_use_l_h=c.household_night_use_l_h,
            non_household_night_use_m3h=dma.non_household_night_use_m3h,
            exceptional_night_use_m3h=dma.exceptional_night_use_m3h,
            hourly_pressure_m=inputs.pressure_profile_m,
            n1=dma.n1,
        ),
        notes,
    )


def _dma_network(i: DmaInputs) -> _Network:
    d = i.dma
    category: ind.Category | None = d.category if d.category in ind.CATEGORIES else None
    return _Network(
        d.mains_km, d.service_connections, d.private_pipes_km, d.avg_pressure_m, category, d.zre
    )


def _whole_network(inputs: Sequence[DmaInputs]) -> _Network:
    nets = [_dma_network(i) for i in inputs]
    known = all(n.mains_km is not None for n in nets)
    mains = sum(n.mains_km or 0.0 for n in nets) if known else None
    conns = (
        sum(n.connections or 0 for n in nets)
        if all(n.connections is not None for n in nets)
        else None
    )
    pressures = [(n.pressure_m, n.mains_km or 1.0) for n in nets if n.pressure_m is not None]
    pressure = (
        sum(p * w for p, w in pressures) / sum(w for _, w in pressures)
        if len(pressures) == len(nets)
        else None
    )
    return _Network(
        mains, conns, sum(n.private_km for n in nets), pressure, None, any(n.zre for n in nets)
    )


def compute_efficiency(
    session: Session,
    store: ReadingStore,
    dma_ids: Sequence[str] | None,
    period: ReportPeriod,
    constants: ReportConstants,
) -> EfficiencyReport:
    """The report for ``dma_ids`` (every DMA when None or empty) over ``period``."""
    ids = list(dict.fromkeys(dma_ids)) if dma_ids else all_dmas(session)
    if not ids:
        raise InvalidInput("no DMA to report on: load a network file first")
    inputs = gather(session, store, ids, period)
    inlet_of = {m.sensor_id for i in inputs for m in i.inlets}
    outlet_of = {m.sensor_id for i in inputs for m in i.outlets}
    internal = inlet_of & outlet_of
    dmas, totals = [], []
    for i in inputs:
        t_alone = _dma_totals(i, set())
        if not i.inlets and t_alone.vp + t_alone.vimp <= 0:
            raise InvalidInput(f"DMA {i.dma.dma_id!r} has no inlet meter nor declared input")
        mnf = net_hourly_mnf(store, i, period) if i.inlets else []
        night, night_notes = _night(i, mnf, constants)
        scope = _scope(
            i.dma.dma_id, i.dma.name, t_alone, net=_dma_network(i), period=period,
            billing=_billing([i]), night=night, daily_mnf=mnf, c=constants,
        )  # fmt: skip
        scope.notes.extend(night_notes)
        dmas.append(scope)
        totals.append(_dma_totals(i, internal))
    network = None
    if len(inputs) > 1:
        network = _scope(
            "network", "", _sum_totals(totals), net=_whole_network(inputs), period=period,
            billing=_billing(inputs), night=None, daily_mnf=[], c=constants,
        )  # fmt: skip
        if internal:
            network.notes.append(Note("internal_meters", {"meters": ", ".join(sorted(internal))}))
    return EfficiencyReport(
        period_start=period.start,
        period_end=period.end,
        period_kind=period.kind,
        days=period.days,
        generated_at=datetime.now(UTC),
        dmas=dmas,
        network=network,
        constants=constants,
    )


def daily_balance(inputs: DmaInputs, period: ReportPeriod) -> list[DayBalance]:
    """A DMA's days as the before/after comparison takes them."""
    t = _dma_totals(inputs, set())
    return [
        DayBalance(day, t.intake_daily[i], t.exported_daily[i], t.authorised_daily[i])
        for i, day in enumerate(period.day_starts())
    ]


def metered_completeness_pct(inputs: DmaInputs) -> float:
    """Share of the DMA's boundary meter-hours that were measured."""
    meters = [("inlet", m) for m in inputs.inlets] + [("outlet", m) for m in inputs.outlets]
    return _completeness(meters)
