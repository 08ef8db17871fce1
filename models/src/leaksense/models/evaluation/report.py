"""Markdown tables of an evaluation: ours and the MNF rule side by side.

Every table has one column per detector, so that each learned part is read against
the plain rule it has to beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from leaksense.models.evaluation.scenarios import SIZE_UNITS, EventKind
from leaksense.models.evaluation.score import LeakOutcome
from leaksense.models.evaluation.totals import (
    TARGETS,
    LeakFilter,
    Totals,
    burst_20,
    false_alarm_rate_by,
    percentiles,
)

LEAK_KINDS: tuple[EventKind, ...] = ("background", "incipient", "burst", "customer")
DEADLINES = {
    "background": "within 48 h",
    "incipient": "before reaching 10 % of night flow",
    "burst": "within 15 min",
    "customer": "within 48 h",
}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _pct(found: int, total: int) -> str:
    return f"{100 * found / total:.0f} % ({found}/{total})" if total else "—"


def _hours(value: float) -> str:
    if value < 1:
        return f"{value * 60:.0f} min"
    return f"{value:.1f} h"


def targets_table(totals: Sequence[Totals]) -> str:
    rows = []
    for target in TARGETS:
        row = [target.name + (f" (≥ {target.minimum:.0%})" if target.minimum else "")]
        for t in totals:
            value = t.target_value(target)
            mark = "✅" if t.meets(target) else "❌"
            if target.leaks is not None:
                found, total = t.recall(target.leaks)
                row.append(f"{_pct(found, total)} {mark}")
            elif target.maximum == 0.0:
                row.append(f"{value:.0f} {mark}")
            else:
                row.append(f"{value:.2f} {mark}")
        rows.append(row)
    rows.append(["precision (true leak alerts / all leak alerts)"] + [
        "—" if math.isnan(t.precision) else f"{t.precision:.0%}" for t in totals
    ])  # fmt: skip
    rows.append(["cases the detector crashed on"] + [str(len(t.errors)) for t in totals])
    rows.append(["false alarms / sensor-months"] + [
        f"{len(t.false_alarms)} / {t.series_months:.0f}" for t in totals
    ])  # fmt: skip
    rows.append(["false alarms notified per sensor-month (one leak, one event: server)"] + [
        f"{t.notified_false_alarm_rate:.2f}" for t in totals
    ])  # fmt: skip
    rows.append(["true leak alerts held in a false alarm's event"] + [
        str(t.true_under_false) for t in totals
    ])  # fmt: skip
    return _table(["target", *(t.detector for t in totals)], rows)


def _size_filter(kind: str, size: float) -> LeakFilter:
    return lambda leak: leak.kind == kind and leak.size == size


def recall_table(totals: Sequence[Totals]) -> str:
    """Recall by kind and size: within the deadline, and at all (before the leak ends)."""
    order: list[str] = list(LEAK_KINDS)
    sizes = sorted(
        {(leak.kind, leak.size) for t in totals for leak in t.leaks},
        key=lambda ks: (order.index(ks[0]), ks[1]),
    )
    rows = []
    for kind, size in sizes:
        keep = _size_filter(kind, size)
        label = f"{kind} {size:g} {SIZE_UNITS[kind]}"  # type: ignore[index]
        row = [label, DEADLINES[kind]]
        for t in totals:
            row.append(_pct(*t.recall(keep)))
            row.append(_pct(*t.recall(keep, in_time=False)))
        rows.append(row)
    header = ["leak", "deadline"]
    for t in totals:
        header += [f"{t.detector}: in time", f"{t.detector}: at all"]
    return _table(header, rows)


SNR_BANDS: tuple[tuple[float, float], ...] = ((0, 2), (2, 3), (3, 4), (4, 6), (6, math.inf))


def snr_table(totals: Sequence[Totals]) -> str:
    """Bursts ≥ 20 % found within 15 min, by their size in σ of one reading (snr.py)."""
    rows = []
    for lo, hi in SNR_BANDS:
        label = f"≥ {lo:g} σ" if math.isinf(hi) else f"{lo:g}–{hi:g} σ"

        def keep(leak: LeakOutcome, lo: float = lo, hi: float = hi) -> bool:
            return burst_20(leak) and leak.snr is not None and lo <= leak.snr < hi

        rows.append([label] + [_pct(*t.recall(keep)) for t in totals])
    unknown = [_pct(*t.recall(lambda x: burst_20(x) and x.snr is None)) for t in totals]
    if any(u != "—" for u in unknown):
        rows.append(["σ not measurable", *unknown])
    return _table(["burst ÷ σ per reading", *(f"{t.detector}: in time" for t in totals)], rows)


RAMP_BANDS: tuple[tuple[float, float], ...] = ((0, 5), (5, 8), (8, math.inf))


def ramp_table(totals: Sequence[Totals]) -> str:
    """Ramps found before 10 %, by their size on the last whole night before that
    (ramps.py)."""
    rows = []
    for lo, hi in RAMP_BANDS:
        label = f"≥ {lo:g} %" if math.isinf(hi) else f"{lo:g}–{hi:g} %"

        def keep(leak: LeakOutcome, lo: float = lo, hi: float = hi) -> bool:
            pct = leak.night_pct
            return leak.kind == "incipient" and pct is not None and lo <= pct < hi

        rows.append([label] + [_pct(*t.recall(keep)) for t in totals])
    rows.append(
        ["no whole night"]
        + [_pct(*t.recall(lambda x: x.kind == "incipient" and x.night_pct is None)) for t in totals]
    )
    header = ["ramp on its last night before 10 %", *(f"{t.detector}: in time" for t in totals)]
    return _table(header, rows)


def delay_table(totals: Sequence[Totals]) -> str:
    """Delay from leak start to first alert, for found leaks: p50 / p90 / max."""
    rows = []
    for kind in LEAK_KINDS:
        for size in sorted({leak.size for t in totals for leak in t.leaks if leak.kind == kind}):
            row = [f"{kind} {size:g} {SIZE_UNITS[kind]}"]
            for t in totals:
                p = percentiles(t.delays_h(_size_filter(kind, size)))
                row.append("—" if p is None else " / ".join(_hours(v) for v in p))
            rows.append(row)
    return _table(["leak", *(f"{t.detector}: p50 / p90 / max" for t in totals)], rows)


def start_table(totals: Sequence[Totals]) -> str:
    """The found leaks' estimated start against the true one: p10 / p50 / p90 of the
    signed error (− the alert says it began earlier, + later)."""
    rows = []
    for kind in LEAK_KINDS:
        row: list[str] = [kind]
        for t in totals:
            errors = [
                leak.start_error_s / 3600
                for leak in t.leaks
                if leak.kind == kind and leak.start_error_s is not None
            ]
            p = percentiles(errors, (10, 50, 90))
            row.append("—" if p is None else " / ".join(_signed_hours(v) for v in p))
        rows.append(row)
    return _table(["leak", *(f"{t.detector}: p10 / p50 / p90" for t in totals)], rows)


def _signed_hours(value: float) -> str:
    return ("−" if value < 0 else "+") + _hours(abs(value))


def false_alarm_table(totals: Sequence[Totals], attribute: str) -> str:
    """False alarms per sensor-month by season, network or noise."""
    by = [false_alarm_rate_by(t, attribute) for t in totals]
    rows = []
    for key in sorted(by[0]):
        rows.append([key] + [f"{b[key][1]:.2f} ({b[key][0]})" for b in by])
    return _table([attribute, *(f"{t.detector}: per sensor-month (count)" for t in totals)], rows)


def role_table(totals: Sequence[Totals]) -> str:
    """False alarms by series role and alert kind."""
    keys = sorted({(m.role, m.kind) for t in totals for m in t.false_alarms})
    rows = [
        [f"{role}: {kind}"]
        + [str(sum(1 for m in t.false_alarms if (m.role, m.kind) == (role, kind))) for t in totals]
        for role, kind in keys
    ]
    return _table(["series: alert kind", *(t.detector for t in totals)], rows) if rows else ""


def fault_table(totals: Sequence[Totals]) -> str:
    by = [t.faults() for t in totals]
    rows = [[kind] + [_pct(*b.get(kind, (0, 0))) for b in by] for kind in sorted(by[0])]
    rows.append(["leak alerts on a faulty sensor"] + [str(len(t.on_faulty)) for t in totals])
    rows.append(
        ["sensor-fault alerts with no fault injected, per sensor-month"]
        + [f"{t.spurious_fault_rate:.2f}" for t in totals]
    )
    return _table(["injected fault", *(f"{t.detector}: fault reported" for t in totals)], rows)


def misfire_list(totals: Totals, limit: int = 40) -> str:
    """The false alarms and faulty-sensor leak alerts themselves, for diagnosis."""
    rows = []
    for m in sorted(totals.false_alarms + totals.on_faulty, key=lambda m: (m.case, m.detected_s)):
        when = datetime.fromtimestamp(m.detected_s, UTC).strftime("%Y-%m-%d %H:%M")
        faulty = " (faulty sensor)" if m in totals.on_faulty else ""
        rows.append([m.case, f"{m.series_id} ({m.role})", m.kind + faulty, when, m.explanation])
    if not rows:
        return "None.\n"
    more = f"\n… and {len(rows) - limit} more.\n" if len(rows) > limit else ""
    return _table(["case", "series", "alert", "detected (UTC)", "explanation"], rows[:limit]) + more


def error_list(totals: Sequence[Totals]) -> list[str]:
    """The crashes, if any: a detector that raises is a failure of its own."""
    lines = [f"- {t.detector}, {case}: `{error}`" for t in totals for case, error in t.errors]
    return ["#### Crashes\n", "\n".join(lines[:20]) + "\n"] if lines else []


def report(totals: Sequence[Totals], title: str) -> str:
    """The whole evaluation as Markdown."""
    cases = len(totals[0].scores)
    parts = [
        f"### {title}: {cases} cases, {len(totals[0].leaks)} test leaks\n",
        "#### Targets\n", targets_table(totals),
        "#### Recall by leak size\n", recall_table(totals),
        "#### Bursts ≥ 20 % by signal-to-noise ratio\n", snr_table(totals),
        "#### Ramps by the night they have before their deadline\n", ramp_table(totals),
        "#### Detection delay (found leaks)\n", delay_table(totals),
        "#### Estimated start (found leaks: the alert's start − the true start)\n",
        start_table(totals),
        "#### False alarms by season\n", false_alarm_table(totals, "season"),
        "#### False alarms by network\n", false_alarm_table(totals, "network"),
        "#### False alarms by noise level\n", false_alarm_table(totals, "noise"),
        "#### False alarms by series and alert kind\n", role_table(totals),
        "#### Sensor faults\n", fault_table(totals),
        *error_list(totals),
    ]  # fmt: skip
    return "\n".join(parts)


SUMMARY_COLUMNS: tuple[tuple[str, LeakFilter], ...] = (
    ("background ≥ 5 %, 48 h", lambda leak: leak.kind == "background" and leak.size >= 5),
    ("background 2 %, 48 h", lambda leak: leak.kind == "background" and leak.size < 5),
    ("incipient, before 10 %", lambda leak: leak.kind == "incipient"),
    ("burst ≥ 20 %, 15 min", lambda leak: leak.kind == "burst" and leak.size >= 20),
    ("burst 10 %, 15 min", lambda leak: leak.kind == "burst" and leak.size < 20),
    ("customer leak, 48 h", lambda leak: leak.kind == "customer"),
)


def summary_table(totals: Sequence[Totals], chosen: str | None = None) -> str:
    """One row per detector: in-time recall per leak family, false alarms, precision."""
    rows = []
    for t in totals:
        name = f"**{t.detector}** (chosen)" if t.detector == chosen else t.detector
        row = [name]
        for _, keep in SUMMARY_COLUMNS:
            found, total = t.recall(keep)
            row.append(f"{100 * found / total:.0f} %" if total else "—")
        precision = "—" if math.isnan(t.precision) else f"{t.precision:.0%}"
        row += [f"{t.false_alarm_rate:.2f}", precision, str(len(t.on_faulty))]
        rows.append(row)
    header = ["detector", *(c for c, _ in SUMMARY_COLUMNS)]
    header += ["false alarms / sensor-month", "precision", "leak alerts on faulty sensors"]
    return _table(header, rows)


def verdicts_table(totals: Sequence[Totals]) -> str:
    """The engine with and without technicians' verdicts: what dismissals change."""
    if len(totals) < 2:
        return ""
    every: LeakFilter = lambda leak: True  # noqa: E731 - a filter like the columns'
    header = ["detector", "leaks found (any delay)", *(c for c, _ in SUMMARY_COLUMNS)]
    header += ["false alarms / sensor-month", "notified / sensor-month"]
    header += ["series-days under an open false alarm", "longest open (days)"]
    rows = []
    for t in totals:
        open_days = [m.open_days for m in t.false_alarms]
        found, total = t.recall(every, in_time=False)
        row = [t.detector, f"{found}/{total}"]
        for _, keep in SUMMARY_COLUMNS:
            hit, n = t.recall(keep)
            row.append(f"{hit}/{n}" if n else "—")
        n_false = len(t.false_alarms)
        row += [f"{t.false_alarm_rate:.2f} ({n_false})", f"{t.notified_false_alarm_rate:.2f}"]
        row += [f"{sum(open_days):.0f}", f"{max(open_days, default=0.0):.1f}"]
        rows.append(row)
    return "\n#### With technicians' verdicts\n\n" + _table(header, rows)
