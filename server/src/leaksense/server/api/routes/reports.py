"""Report endpoints: network efficiency and repairs before/after as JSON, CSV, HTML, PDF.

Reading needs a ``reader`` (or ``admin``) token; entering a repair needs an ``admin``
token, because repairs change what the before/after report tells a utility's board,
which a dashboard's read-only token must not be able to do.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from leaksense.server.api.deps import AdminToken, ReportToken, RuntimeDep, SessionDep, StoreDep
from leaksense.server.domain.periods import PeriodKind
from leaksense.server.render import views
from leaksense.server.render.catalogue import check_lang
from leaksense.server.runtime import Runtime
from leaksense.server.services.repairs import (
    RepairSpec,
    RepairsReport,
    RepairView,
    add_repair,
    compute_repairs_report,
    repairs_in,
)
from leaksense.server.services.report_constants import ReportConstants, report_constants
from leaksense.server.services.report_data import ReportPeriod, parse_report_time, report_period
from leaksense.server.services.report_model import EfficiencyReport
from leaksense.server.services.reports import compute_efficiency

router = APIRouter(prefix="/api/v1", tags=["reports"])

Dmas = Annotated[list[str], Query(alias="dma", description="DMA ids; none: every DMA")]
Start = Annotated[str, Query(description="first day (2025-01-01) or midnight UTC datetime")]
End = Annotated[str | None, Query(description="day after the last one; or give period")]
Kind = Annotated[PeriodKind | None, Query(alias="period")]
Lang = Annotated[str, Query(description="fr or en")]
Price = Annotated[float | None, Query(ge=0, description="water price, €/m³")]
CSV = "text/csv; charset=utf-8"
PDF = "application/pdf"


def _constants(runtime: Runtime, price: float | None) -> ReportConstants:
    s = runtime.settings
    return report_constants(
        s.report_constants_file, s.water_price_eur_per_m3 if price is None else price
    )


def _period(start: str, end: str | None, kind: PeriodKind | None) -> ReportPeriod:
    return report_period(
        parse_report_time(start), None if end is None else parse_report_time(end), kind
    )


def efficiency_report(
    *, _t: ReportToken, runtime: RuntimeDep, session: SessionDep, store: StoreDep, start: Start,
    dma: Dmas = [], end: End = None, period: Kind = None,  # noqa: B006
) -> EfficiencyReport:  # fmt: skip
    """The efficiency report the query asks for (the routes below only format it)."""
    constants = _constants(runtime, None)
    return compute_efficiency(session, store, dma, _period(start, end, period), constants)


def repairs_report(
    *, _t: ReportToken, runtime: RuntimeDep, session: SessionDep, store: StoreDep, dma: str,
    start: Start, end: End = None, period: Kind = None, price: Price = None,
) -> RepairsReport:  # fmt: skip
    """The before/after report the query asks for."""
    constants = _constants(runtime, price)
    return compute_repairs_report(session, store, dma, _period(start, end, period), constants)


Efficiency = Annotated[EfficiencyReport, Depends(efficiency_report)]
Repairs = Annotated[RepairsReport, Depends(repairs_report)]


@router.get("/reports/efficiency")
def efficiency(report: Efficiency, lang: Lang = "fr") -> dict[str, Any]:
    """Indicators, water balance, night flow and completeness per DMA and network-wide."""
    return views.efficiency_json(report, check_lang(lang))


@router.get("/reports/efficiency.csv")
def efficiency_csv(report: Efficiency, lang: Lang = "fr") -> Response:
    return Response(views.efficiency_csv(report, check_lang(lang)), media_type=CSV)


@router.get("/reports/efficiency.html", response_class=HTMLResponse)
def efficiency_html(report: Efficiency, lang: Lang = "fr") -> HTMLResponse:
    return HTMLResponse(views.efficiency_html(report, check_lang(lang)))


@router.get("/reports/efficiency.pdf")
def efficiency_pdf(report: Efficiency, lang: Lang = "fr") -> Response:
    html = views.efficiency_html(report, check_lang(lang))
    return Response(views.html_to_pdf(html), media_type=PDF)


@router.get("/reports/repairs")
def repairs(report: Repairs, lang: Lang = "fr") -> dict[str, Any]:
    """Yield before the first repair and after the last, the period's, the savings."""
    return views.repairs_json(report, check_lang(lang))


@router.get("/reports/repairs.csv")
def repairs_csv(report: Repairs, lang: Lang = "fr") -> Response:
    return Response(views.repairs_csv(report, check_lang(lang)), media_type=CSV)


@router.get("/reports/repairs.html", response_class=HTMLResponse)
def repairs_html(report: Repairs, lang: Lang = "fr") -> HTMLResponse:
    return HTMLResponse(views.repairs_html(report, check_lang(lang)))


@router.get("/reports/repairs.pdf")
def repairs_pdf(report: Repairs, lang: Lang = "fr") -> Response:
    html = views.repairs_html(report, check_lang(lang))
    return Response(views.html_to_pdf(html), media_type=PDF)


@router.post("/repairs", status_code=201)
def post_repair(spec: RepairSpec, _t: AdminToken, session: SessionDep) -> RepairView:
    """Enter (or correct, by ``repair_id``) a repaired leak."""
    return add_repair(session, spec)


@router.get("/repairs")
def list_repairs(
    _t: ReportToken, session: SessionDep, dma: str, start: Start, end: Annotated[str, Query()]
) -> list[RepairView]:
    """Repairs of a DMA in ``[start, end)``, by hand and from resolved alerts."""
    return repairs_in(session, dma, parse_report_time(start), parse_report_time(end))
