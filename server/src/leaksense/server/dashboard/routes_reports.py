"""Reports: the network-efficiency indicators with charts, and their exports.

The figures come from the same services as ``/api/v1/reports/*``
(``services/reports.py``, ``services/repairs.py``) and the exports are the same
renderings (``render/views.py``: CSV, printable HTML, PDF), served here behind the
dashboard session instead of a bearer token, since a browser has only its cookie.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leaksense.server.api.deps import RuntimeDep, SessionDep, StoreDep
from leaksense.server.dashboard.auth import ReportViewer
from leaksense.server.dashboard.web import PREFIX, DashboardRoute, lang_of, render
from leaksense.server.db import Dma, Sensor
from leaksense.server.render import catalogue as report_cat
from leaksense.server.render import views
from leaksense.server.render.svg import Series, line_chart
from leaksense.server.runtime import Runtime
from leaksense.server.services.repairs import compute_repairs_report
from leaksense.server.services.report_constants import ReportConstants, report_constants
from leaksense.server.services.report_data import ReportPeriod, parse_report_time, report_period
from leaksense.server.services.report_model import EfficiencyReport, ScopeReport
from leaksense.server.services.reports import compute_efficiency

router = APIRouter(prefix=f"{PREFIX}/reports", route_class=DashboardRoute, include_in_schema=False)

DEFAULT_DAYS = 30
DateText = Annotated[str, Query(max_length=40)]
Dmas = Annotated[list[str], Query(alias="dma")]
CSV = "text/csv; charset=utf-8"
HEADLINE = "rendement_pct"
"""The indicator shown large at the top of each scope: the P104.3 yield."""


def default_period(session: Session) -> tuple[date, date]:
    """The 30 whole days up to the last reading received (today if none)."""
    last = session.scalar(select(func.max(Sensor.last_seen_at)))
    end = (last or datetime.now(UTC)).astimezone(UTC).date() + timedelta(days=1)
    return end - timedelta(days=DEFAULT_DAYS), end


def _period(session: Session, start: str, end: str) -> ReportPeriod:
    first, after = default_period(session)
    return report_period(
        parse_report_time(start or first.isoformat()), parse_report_time(end or after.isoformat())
    )


def _constants(runtime: Runtime) -> ReportConstants:
    s = runtime.settings
    return report_constants(s.report_constants_file, s.water_price_eur_per_m3)


def _chart(scope: ScopeReport, lang: report_cat.Lang) -> Markup:
    labels = [d.day.strftime("%d/%m" if lang == "fr" else "%m-%d") for d in scope.daily]
    svg = line_chart(
        report_cat.label("daily_chart", lang),
        labels,
        [
            Series(report_cat.label("intake", lang),
                   [d.intake_m3 - d.exported_m3 for d in scope.daily], "#1f77b4"),
            Series(report_cat.label("authorised", lang),
                   [d.authorised_m3 for d in scope.daily], "#2ca02c"),
            Series(report_cat.label("yield", lang),
                   [d.yield_pct for d in scope.daily], "#d62728", right=True),
        ],
        left_unit="m³",
    )  # fmt: skip
    return Markup(svg)  # noqa: S704 - built by svg.py, every text escaped there


def efficiency_report(
    *, _user: ReportViewer, runtime: RuntimeDep, session: SessionDep, store: StoreDep,
    start: DateText = "", end: DateText = "", dma: Dmas = [],  # noqa: B006
) -> EfficiencyReport:  # fmt: skip
    """The efficiency report the query asks for (default: the last 30 days with data)."""
    period = _period(session, start, end)
    return compute_efficiency(session, store, dma or None, period, _constants(runtime))


Efficiency = Annotated[EfficiencyReport, Depends(efficiency_report)]
Lang = Annotated[str, Query(max_length=2)]


@router.get("")
def reports_page(
    request: Request, user: ReportViewer, session: SessionDep, report: Efficiency,
    dma: Dmas = [],  # noqa: B006
) -> Response:  # fmt: skip
    """Key indicators and daily chart per DMA and network-wide, with export links."""
    lang = lang_of(request)
    scopes = [*report.dmas, *([report.network] if report.network else [])]
    query = [("start", report.period_start.date().isoformat()),
             ("end", report.period_end.date().isoformat()), ("lang", lang)]  # fmt: skip
    query += [("dma", d) for d in dma]
    return render(
        request, "reports.html", user, report=report, scopes=scopes,
        charts={s.scope_id: _chart(s, lang) for s in scopes},
        iname=lambda key: report_cat.indicator_name(key, lang),
        unit=lambda text: report_cat.unit(text, lang),
        all_dmas=session.execute(select(Dma.dma_id, Dma.name).order_by(Dma.dma_id)).all(),
        selected=set(dma), query=urlencode(query),
        period_query=urlencode(query[:3]), headline=HEADLINE,
    )  # fmt: skip


@router.get("/efficiency.csv")
def efficiency_csv(report: Efficiency, lang: Lang = "fr") -> Response:
    return Response(
        views.efficiency_csv(report, report_cat.check_lang(lang)),
        media_type=CSV,
        headers={"Content-Disposition": 'attachment; filename="efficiency.csv"'},
    )


@router.get("/efficiency.html")
def efficiency_html(report: Efficiency, lang: Lang = "fr") -> Response:
    return HTMLResponse(views.efficiency_html(report, report_cat.check_lang(lang)))


@router.get("/efficiency.pdf")
def efficiency_pdf(report: Efficiency, lang: Lang = "fr") -> Response:
    html = views.efficiency_html(report, report_cat.check_lang(lang))
    return Response(views.html_to_pdf(html), media_type="application/pdf")


@router.get("/repairs.html")
def repairs_html(
    *, _user: ReportViewer, runtime: RuntimeDep, session: SessionDep, store: StoreDep,
    dma: str, start: DateText = "", end: DateText = "", lang: Lang = "fr",
) -> Response:  # fmt: skip
    """The before/after repairs report of one DMA (printable page)."""
    period = _period(session, start, end)
    report = compute_repairs_report(session, store, dma, period, _constants(runtime))
    return HTMLResponse(views.repairs_html(report, report_cat.check_lang(lang)))
