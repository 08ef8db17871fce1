"""``leaksense report efficiency|repairs``: the reports from the command line, to a file.

The same services and views as the HTTP API (``api/routes/reports.py``), run against
the server's databases as configured by ``LEAKSENSE_SERVER_*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from leaksense.core.errors import InvalidInput
from leaksense.server.domain.periods import PeriodKind

if TYPE_CHECKING:
    from leaksense.server.services.repairs import RepairsReport
    from leaksense.server.services.report_data import ReportPeriod
    from leaksense.server.services.report_model import EfficiencyReport

report_app = typer.Typer(help="Network-efficiency and repair reports.", no_args_is_help=True)
Format = Literal["json", "csv", "html", "pdf"]
StartOpt = Annotated[str, typer.Option(help="First day (2025-01-01) or midnight UTC datetime.")]
EndOpt = Annotated[str | None, typer.Option(help="Day after the last one (or --period).")]
PeriodOpt = Annotated[PeriodKind | None, typer.Option("--period", help="day/week/month/year.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="json, csv, html or pdf.")]
LangOpt = Annotated[str, typer.Option(help="fr or en.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output file (default: stdout).")]


def _period(start: str, end: str | None, kind: PeriodKind | None) -> ReportPeriod:
    from leaksense.server.services.report_data import parse_report_time, report_period

    return report_period(
        parse_report_time(start), None if end is None else parse_report_time(end), kind
    )


def _emit(content: str | bytes, out: Path | None) -> None:
    if out is None:
        if isinstance(content, bytes):
            raise InvalidInput("a PDF goes to a file: give --out report.pdf")
        typer.echo(content)
        return
    try:
        if isinstance(content, bytes):
            out.write_bytes(content)
        else:
            out.write_text(content, "utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc}") from exc
    typer.echo(f"wrote {out}", err=True)


def _render(
    report: EfficiencyReport | RepairsReport,
    fmt: Format,
    lang: str,
    formats: dict[str, Callable[..., Any]],
) -> str | bytes:
    from leaksense.server.render import views
    from leaksense.server.render.catalogue import check_lang

    checked = check_lang(lang)
    if fmt == "json":
        data = formats["json"](report, checked)
        return json.dumps(data, default=str, ensure_ascii=False, indent=1)
    if fmt == "pdf":
        return views.html_to_pdf(formats["html"](report, checked))
    text: str = formats[fmt](report, checked)
    return text


@report_app.command("efficiency")
def efficiency(
    dmas: Annotated[list[str] | None, typer.Argument(help="DMA ids; none: every DMA.")] = None,
    *,
    start: StartOpt,
    end: EndOpt = None,
    period: PeriodOpt = None,
    fmt: FormatOpt = "html",
    lang: LangOpt = "fr",
    out: OutOpt = None,
) -> None:
    """Indicators, water balance, night flow and completeness, per DMA and network-wide."""
    from leaksense.server.render import views
    from leaksense.server.runtime import build_runtime
    from leaksense.server.services.report_constants import report_constants
    from leaksense.server.services.reports import compute_efficiency
    from leaksense.server.settings import load_settings

    settings = load_settings()
    runtime = build_runtime(settings)
    constants = report_constants(settings.report_constants_file, settings.water_price_eur_per_m3)
    try:
        with runtime.sessions() as session:
            report = compute_efficiency(
                session, runtime.store, dmas or [], _period(start, end, period), constants
            )
    finally:
        runtime.close()
    formats = {
        "json": views.efficiency_json,
        "csv": views.efficiency_csv,
        "html": views.efficiency_html,
    }
    _emit(_render(report, fmt, lang, formats), out)


@report_app.command("repairs")
def repairs(
    dma: Annotated[str, typer.Argument(help="DMA id.")],
    *,
    start: StartOpt,
    end: EndOpt = None,
    period: PeriodOpt = None,
    fmt: FormatOpt = "html",
    lang: LangOpt = "fr",
    out: OutOpt = None,
    price: Annotated[float | None, typer.Option(help="Water price, €/m³.")] = None,
) -> None:
    """Before/after report of the repairs of a DMA: yields, volume and money saved."""
    from leaksense.server.render import views
    from leaksense.server.runtime import build_runtime
    from leaksense.server.services.repairs import compute_repairs_report
    from leaksense.server.services.report_constants import report_constants
    from leaksense.server.settings import load_settings

    settings = load_settings()
    runtime = build_runtime(settings)
    constants = report_constants(
        settings.report_constants_file,
        settings.water_price_eur_per_m3 if price is None else price,
    )
    try:
        with runtime.sessions() as session:
            report = compute_repairs_report(
                session, runtime.store, dma, _period(start, end, period), constants
            )
    finally:
        runtime.close()
    formats = {"json": views.repairs_json, "csv": views.repairs_csv, "html": views.repairs_html}
    _emit(_render(report, fmt, lang, formats), out)
