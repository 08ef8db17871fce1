"""``leaksense models evaluate`` as functions: which detectors, which cases, which tables.

The report's columns: the gateway's engine with the current defaults (warming up on
its own data, as a new gateway does), the same engine pre-trained by the server's
scikit-learn trainer when it is installed, and the plain MNF rule. ``parts`` adds
the engine with only one of its leak detectors switched on (a threshold no CUSUM
can reach switches the others off), so each learned part is scored against the rule.
Generated Markdown goes between ``<!-- evaluation:KEY:begin/end -->`` markers of the
output file, so that the prose around the tables stays hand-written.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.models.evaluation import report, sweep
from leaksense.models.evaluation.runner import MNF, Detector, run_cases
from leaksense.models.evaluation.scenarios import Case, Which, cases
from leaksense.models.evaluation.score import CaseScore
from leaksense.models.evaluation.totals import Totals

ENGINE = "Leaksense"
SKLEARN = "Leaksense, scikit-learn trainer"
VERDICTS = "Leaksense, false alarms dismissed after 24 h"
NEVER = 1e9
"""A CUSUM threshold (or a duration in hours) that is never reached."""
Progress = Callable[[Case], None]


def sklearn_available() -> bool:
    """Whether the server's trainer (and scikit-learn) can be imported here."""
    try:
        return all(
            importlib.util.find_spec(m) is not None for m in ("sklearn", "leaksense.models.train")
        )
    except ModuleNotFoundError:
        return False


def part_detectors(params: DetectionParams) -> list[Detector]:
    """The engine with a single leak detector on (sensor health stays on)."""
    only = {
        "burst tests only": ("burst_h", "burst_window_z", "burst_step_z"),
        "night CUSUM only": ("night_h",),
        "continuous flow only": ("continuous_flow_h",),
    }
    off = {key: NEVER for keys in only.values() for key in keys}
    return [
        Detector(name, params=params.model_copy(update=off | {k: getattr(params, k) for k in keys}))
        for name, keys in only.items()
    ]


def detectors(
    params: DetectionParams, *, sklearn: bool = False, parts: bool = False
) -> list[Detector]:
    out = [Detector(ENGINE, params=params)]
    if sklearn:
        out.append(Detector(SKLEARN, params=params, trainer="sklearn"))
    out.append(MNF)
    if parts:
        out += [*part_detectors(params), Detector(VERDICTS, params=params, verdict_after_h=24)]
    return out


def totals_of(scores: dict[str, list[CaseScore]]) -> list[Totals]:
    return [Totals(name, s) for name, s in scores.items()]


def evaluate(
    which: Which,
    *,
    quick: bool = False,
    jobs: int = 1,
    params: DetectionParams | None = None,
    sklearn: bool = False,
    parts: bool = False,
    progress: Progress | None = None,
) -> dict[str, list[Totals]]:
    """Totals per set (``tuning``, ``heldout``) of every detector."""
    params = params or DetectionParams()
    chosen = cases(which, quick=quick)
    found = detectors(params, sklearn=sklearn, parts=parts)
    scores = run_cases(chosen, found, jobs=jobs, progress=progress)
    out = {}
    for name in ("tuning", "heldout"):
        subset = {d: [s for s in v if s.set == name] for d, v in scores.items()}
        if any(subset.values()):
            out[name] = totals_of(subset)
    return out


def sections(results: dict[str, list[Totals]], *, parts: bool = False) -> dict[str, str]:
    """Markdown per set: the main report, and the parts table when asked (keys:
    ``tuning``, ``heldout``, with ``-sklearn`` when the trainer column is there)."""
    titles = {"tuning": "Tuning set", "heldout": "Held-out set"}
    out = {}
    for name, totals in results.items():
        key = name + ("-sklearn" if any(t.detector == SKLEARN for t in totals) else "")
        main = [t for t in totals if t.detector in (ENGINE, SKLEARN, MNF.name)]
        text = report.report(main, titles[name])
        if parts:
            text += "\n#### Each part against the MNF rule\n\n" + report.summary_table(
                [t for t in totals if t.detector not in (SKLEARN, VERDICTS)], ENGINE
            )
            text += report.verdicts_table([t for t in totals if t.detector in (ENGINE, VERDICTS)])
        out[key] = text
    return out


def run_sweep(
    *, jobs: int = 1, quick: bool = False, progress: Progress | None = None
) -> tuple[str, DetectionParams]:
    """The sweep on the tuning set: its tables and the chosen parameters."""
    base = DetectionParams()
    found = sweep.detectors(base)
    scores = run_cases(cases("tuning", quick=quick), found, jobs=jobs, progress=progress)
    totals = {t.detector: t for t in totals_of(scores)}
    chosen, winners = sweep.choose(base, totals)
    text = sweep.sweep_tables(totals, winners, report.summary_table)
    changed = {k: v for k, v in chosen.model_dump().items() if v != base.model_dump()[k]}
    text += "\nChosen: " + (sweep.label(changed) if changed else "the current defaults") + "\n"
    return text, chosen


def write_sections(path: Path, texts: dict[str, str]) -> None:
    """Replace each ``<!-- evaluation:KEY:begin -->…end`` block, or append it."""
    current = path.read_text("utf-8") if path.exists() else ""
    for key, text in texts.items():
        begin, end = f"<!-- evaluation:{key}:begin -->", f"<!-- evaluation:{key}:end -->"
        block = f"{begin}\n{text.rstrip()}\n{end}"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
        found = pattern.search(current)
        if found:
            current = current[: found.start()] + block + current[found.end() :]
        else:
            current = current.rstrip() + ("\n\n" if current else "") + block + "\n"
    path.write_text(current, "utf-8")


def joined(texts: Sequence[str]) -> str:
    return "\n".join(t.rstrip() + "\n" for t in texts)
