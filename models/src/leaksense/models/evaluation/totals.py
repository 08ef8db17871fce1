"""Totals of one detector over many cases: recall, delays, false alarms, precision.

Kept apart from the Markdown so that tests, the sweep and the report read the same
numbers. Targets are the issue's, stated once in :data:`TARGETS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from leaksense.models.evaluation.score import CaseScore, LeakOutcome, Misfire

LeakFilter = Callable[[LeakOutcome], bool]


@dataclass(frozen=True, slots=True)
class Target:
    """A requirement: a recall over some leaks, or a ceiling on a rate."""

    name: str
    leaks: LeakFilter | None
    minimum: float | None = None
    maximum: float | None = None


def background_5(leak: LeakOutcome) -> bool:
    return leak.kind == "background" and leak.size >= 5


def burst_20(leak: LeakOutcome) -> bool:
    return leak.kind == "burst" and leak.size >= 20


TARGETS: tuple[Target, ...] = (
    Target("recall, background leaks ≥ 5 % of night flow, within 48 h", background_5, 0.95),
    Target("recall, bursts ≥ 20 % of mean flow, within 15 min", burst_20, 0.95),
    Target("false alarms per sensor-month", None, maximum=1.0),
    Target("leak alerts on faulty sensors", None, maximum=0.0),
)


@dataclass
class Totals:
    """One detector's scores over a set of cases."""

    detector: str
    scores: list[CaseScore]

    @property
    def leaks(self) -> list[LeakOutcome]:
        return [leak for s in self.scores for leak in s.leaks]

    @property
    def false_alarms(self) -> list[Misfire]:
        return [m for s in self.scores for m in s.false_alarms]

    @property
    def on_faulty(self) -> list[Misfire]:
        return [m for s in self.scores for m in s.on_faulty]

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(case, error) of every case the detector crashed on."""
        return [(s.case, s.error) for s in self.scores if s.error is not None]

    @property
    def series_months(self) -> float:
        return sum(s.series_months for s in self.scores)

    @property
    def false_alarm_rate(self) -> float:
        """False alarms per sensor-month (every series of the test windows)."""
        return len(self.false_alarms) / max(self.series_months, 1e-9)

    @property
    def notified_false_alarm_rate(self) -> float:
        """False alarms per sensor-month that reach a person: those the server does
        not put in an earlier alert's event (``domain/same_water.py``)."""
        grouped = sum(s.grouped_false for s in self.scores)
        return (len(self.false_alarms) - grouped) / max(self.series_months, 1e-9)

    @property
    def true_under_false(self) -> int:
        """True leak alerts put in the event of a false alarm (never notified alone)."""
        return sum(s.true_under_false for s in self.scores)

    @property
    def precision(self) -> float:
        true = sum(s.true_alerts for s in self.scores)
        alerts = true + len(self.false_alarms) + len(self.on_faulty)
        return true / alerts if alerts else float("nan")

    def recall(self, keep: LeakFilter, *, in_time: bool = True) -> tuple[int, int]:
        """(found, total) among the leaks ``keep`` selects."""
        chosen = [leak for leak in self.leaks if keep(leak)]
        found = [leak for leak in chosen if (leak.in_time if in_time else leak.detected_s)]
        return len(found), len(chosen)

    def delays_h(self, keep: LeakFilter) -> list[float]:
        return [
            leak.delay_s / 3600 for leak in self.leaks if keep(leak) and leak.delay_s is not None
        ]

    @property
    def spurious_fault_rate(self) -> float:
        """Sensor-fault alerts without an injected fault, per sensor-month."""
        spurious = sum(s.spurious_fault_alerts for s in self.scores)
        return spurious / max(self.series_months, 1e-9)

    def faults(self) -> dict[str, tuple[int, int]]:
        """Fault kind → (reported, injected)."""
        injected: Counter[str] = Counter()
        reported: Counter[str] = Counter()
        for s in self.scores:
            for f in s.faults:
                injected[f.kind] += 1
                reported[f.kind] += f.reported
        return {k: (reported[k], injected[k]) for k in sorted(injected)}

    def target_value(self, target: Target) -> float:
        if target.leaks is not None:
            found, total = self.recall(target.leaks)
            return found / total if total else float("nan")
        if target.maximum == 0.0:
            return float(len(self.on_faulty))
        return self.false_alarm_rate

    def meets(self, target: Target) -> bool:
        value = self.target_value(target)
        if target.minimum is not None and not value >= target.minimum:
            return False
        return target.maximum is None or value <= target.maximum


def percentiles(
    values: Iterable[float], at: tuple[float, float, float] = (50, 90, 100)
) -> tuple[float, float, float] | None:
    """The percentiles ``at`` (default p50, p90, max), or None when there is nothing
    to describe."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return None
    low, mid, high = np.percentile(array, at)
    return float(low), float(mid), float(high)


def false_alarm_rate_by(totals: Totals, attribute: str) -> dict[str, tuple[int, float]]:
    """Condition (season, network, noise) → (false alarms, per sensor-month).

    The exposure of a condition is the series-months of the cases held in it.
    """
    exposure: dict[str, float] = {}
    alarms: Counter[str] = Counter()
    for score in totals.scores:
        value = str(getattr(score, attribute))
        exposure[value] = exposure.get(value, 0.0) + score.series_months
        alarms[value] += len(score.false_alarms)
    return {k: (alarms[k], alarms[k] / exposure[k]) for k in sorted(exposure)}
