"""The reports as JSON (worded in one language), CSV, HTML (Jinja2) and PDF (WeasyPrint).

JSON is the report dataclasses with, added, the names of volumes and indicators and
the text of every note in the requested language. CSV is long-format (one figure a
line, with its unit, source and completeness); in French it uses ``;`` and decimal
commas, as French spreadsheets expect. HTML is a printable page with inline SVG charts;
PDF is that page through WeasyPrint (``leaksense-server[pdf]``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from leaksense.core.errors import ConfigError
from leaksense.server.render import catalogue as cat
from leaksense.server.render.catalogue import Lang
from leaksense.server.render.svg import Series, line_chart
from leaksense.server.services.repairs import RepairsReport
from leaksense.server.services.report_model import EfficiencyReport, ScopeReport


def _scope_json(scope: ScopeReport, lang: Lang) -> dict[str, Any]:
    data = dataclasses.asdict(scope)
    for v in data["volumes"]:
        v["name"] = cat.VOLUME_NAMES[v["key"]][lang]
    for i in data["indicators"]:
        i["name"] = cat.indicator_name(i["key"], lang)
        i["unit"] = cat.unit(i["unit"], lang)
    data["notes"] = [
        {"code": n.code, "params": n.params, "text": cat.note_text(n.code, n.params, lang)}
        for n in scope.notes
    ]
    return data


def efficiency_json(report: EfficiencyReport, lang: Lang) -> dict[str, Any]:
    """The report as JSON-ready data, worded in ``lang``."""
    data = dataclasses.asdict(report)
    data["lang"] = lang
    data["dmas"] = [_scope_json(s, lang) for s in report.dmas]
    data["network"] = None if report.network is None else _scope_json(report.network, lang)
    return data


def repairs_json(report: RepairsReport, lang: Lang) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    c = report.comparison
    data["lang"] = lang
    data["comparison"] |= {
        "saved_eur_per_day": c.saved_eur_per_day,
        "saved_eur_per_year": c.saved_eur_per_year,
        "period_saved_eur": c.period_saved_eur,
    }
    data["explanation"] = explanation(report, lang)
    data["notes"] = [
        {"code": n.code, "text": cat.note_text(n.code, n.params, lang)} for n in report.notes
    ]
    return data


def explanation(report: RepairsReport, lang: Lang) -> str | None:
    """Why the daily and period figures differ, with this report's numbers."""
    c = report.comparison
    if c.before is None or c.after is None:
        return None
    return cat.EXPLANATION[lang].format(
        before_in=_num(c.before.intake_m3_per_day - c.before.exported_m3_per_day, 0, lang),
        before_auth=_num(c.before.authorised_m3_per_day, 0, lang),
        before=_num(c.before.yield_pct, 1, lang),
        after_in=_num(c.after.intake_m3_per_day - c.after.exported_m3_per_day, 0, lang),
        after=_num(c.after.yield_pct, 1, lang),
        period=_num(c.period.yield_pct, 1, lang),
    )


def _num(value: float | None, digits: int = 1, lang: Lang = "en") -> str:
    if value is None:
        return ""
    text = f"{value:,.{digits}f}"
    return text.replace(",", " ").replace(".", ",") if lang == "fr" else text


def _rows(report: EfficiencyReport, lang: Lang) -> Iterator[list[str]]:
    for scope in [*report.dmas, *([report.network] if report.network else [])]:
        for v in scope.volumes:
            yield [
                scope.scope_id, "volume", v.key, cat.VOLUME_NAMES[v.key][lang],
                _num(v.value_m3, 3, lang), "m³", cat.label(v.source, lang),
                _num(v.completeness_pct, 2, lang), _num(v.estimated_m3, 3, lang),
            ]  # fmt: skip
        for i in scope.indicators:
            yield [
                scope.scope_id, "indicator", i.key, cat.indicator_name(i.key, lang),
                _num(i.value, 4, lang), cat.unit(i.unit, lang), cat.label("computed", lang),
                _num(i.completeness_pct, 2, lang), "",
            ]  # fmt: skip
        if scope.grenelle is not None:
            yield [
                scope.scope_id, "indicator", "grenelle_threshold_pct", cat.label("grenelle", lang),
                _num(scope.grenelle.threshold_pct, 4, lang), "%",
                cat.label("compliant" if scope.grenelle.compliant else "non_compliant", lang),
                "", "",
            ]  # fmt: skip
        for m in scope.meters:
            yield [
                scope.scope_id, "meter", m.sensor_id, cat.label(m.role, lang),
                _num(m.volume_m3, 3, lang), "m³", cat.label("metered", lang),
                _num(m.completeness_pct, 2, lang), _num(m.estimated_m3, 3, lang),
            ]  # fmt: skip


CSV_HEADER = [
    "scope", "section", "key", "name", "value", "unit", "source", "completeness_pct",
    "estimated_m3",
]  # fmt: skip


def efficiency_csv(report: EfficiencyReport, lang: Lang) -> str:
    """One figure per line; French: ``;`` separated with decimal commas."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if lang == "fr" else ",", lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(_rows(report, lang))
    return out.getvalue()


def repairs_csv(report: RepairsReport, lang: Lang) -> str:
    """The daily balance with the repairs of each day."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if lang == "fr" else ",", lineterminator="\n")
    writer.writerow(["day", "intake_m3", "exported_m3", "authorised_m3", "losses_m3", "repairs"])
    for d in report.daily:
        fixed = [r.repair_id for r in report.repairs if r.repaired_at.date() == d.day_start.date()]
        writer.writerow(
            [
                d.day_start.date().isoformat(), _num(d.intake_m3, 3, lang),
                _num(d.exported_m3, 3, lang), _num(d.authorised_m3, 3, lang),
                _num(d.losses_m3, 3, lang), " ".join(fixed),
            ]
        )  # fmt: skip
    return out.getvalue()


def _environment(lang: Lang) -> Environment:
    env = Environment(
        loader=PackageLoader("leaksense.server", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals |= {
        "L": lambda key: cat.label(key, lang),
        "num": partial(_num, lang=lang),
        "vname": lambda key: cat.VOLUME_NAMES[key][lang],
        "bname": lambda key: cat.BALANCE_NAMES[key][lang],
        "iname": lambda key: cat.indicator_name(key, lang),
        "unit": lambda text: cat.unit(text, lang),
        "word": lambda key: cat.CATEGORIES[key][lang],
        "note": lambda n: cat.note_text(n.code, n.params, lang),
        "day": lambda moment: _day(moment, lang),
        "lang": lang,
    }
    return env


def _day(moment: datetime, lang: Lang) -> str:
    return moment.strftime("%d/%m/%Y" if lang == "fr" else "%Y-%m-%d")


def _daily_series(
    intake: list[float], authorised: list[float], yields: list[float | None], lang: Lang
) -> list[Series]:
    return [
        Series(cat.label("intake", lang), intake, "#1f77b4"),
        Series(cat.label("authorised", lang), authorised, "#2ca02c"),
        Series(cat.label("yield", lang), yields, "#d62728", right=True),
    ]


def _scope_chart(scope: ScopeReport, lang: Lang) -> Markup:
    labels = [_day(d.day, lang) for d in scope.daily]
    chart = line_chart(
        cat.label("daily_chart", lang),
        labels,
        _daily_series(
            [d.intake_m3 - d.exported_m3 for d in scope.daily],
            [d.authorised_m3 for d in scope.daily],
            [d.yield_pct for d in scope.daily],
            lang,
        ),
        left_unit="m³",
    )
    if any(d.mnf_m3h is not None for d in scope.daily):
        chart += line_chart(
            cat.label("mnf_chart", lang),
            labels,
            [Series("MNF", [d.mnf_m3h for d in scope.daily], "#9467bd")],
            left_unit="m³/h",
        )
    return Markup(chart)  # noqa: S704 - built by svg.py, every text escaped there


def efficiency_html(report: EfficiencyReport, lang: Lang) -> str:
    """The printable report (HTML with inline SVG charts)."""
    scopes = [*report.dmas, *([report.network] if report.network else [])]
    charts = {s.scope_id: _scope_chart(s, lang) for s in scopes}
    template = _environment(lang).get_template("efficiency.html")
    return template.render(report=report, scopes=scopes, charts=charts)


def repairs_html(report: RepairsReport, lang: Lang) -> str:
    labels = [_day(d.day_start, lang) for d in report.daily]
    first = report.daily[0].day_start if report.daily else None
    markers = [] if first is None else [(r.repaired_at - first).days for r in report.repairs]
    chart = line_chart(
        cat.label("daily_chart", lang),
        labels,
        _daily_series(
            [d.intake_m3 - d.exported_m3 for d in report.daily],
            [d.authorised_m3 for d in report.daily],
            [
                100 * (d.authorised_m3 + d.exported_m3) / d.intake_m3 if d.intake_m3 > 0 else None
                for d in report.daily
            ],
            lang,
        ),
        left_unit="m³",
        markers=markers,
    )
    template = _environment(lang).get_template("repairs.html")
    return template.render(
        report=report,
        chart=Markup(chart),  # noqa: S704 - built by svg.py, every text escaped there
        explanation=explanation(report, lang),
    )


def html_to_pdf(html: str) -> bytes:
    """PDF of a report page (WeasyPrint, the ``pdf`` extra)."""
    try:
        with warnings.catch_warnings():  # "HarfBuzz-Subset will be required": not yet
            warnings.simplefilter("ignore", DeprecationWarning)
            from weasyprint import HTML  # noqa: PLC0415 - optional, heavy
    except (ImportError, OSError) as exc:
        raise ConfigError(
            "PDF needs WeasyPrint and Pango: pip install 'leaksense-server[pdf]' and"
            f" apt-get install libpango-1.0-0 libpangoft2-1.0-0 ({exc})"
        ) from exc
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
