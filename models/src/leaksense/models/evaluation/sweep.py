"""Parameter choice on the tuning set, one group of thresholds at a time.

The burst CUSUM and the night watch look at different things (minutes against
nights), so their thresholds are swept separately around the current defaults, each
judged on the recall it exists for; the level tracker and the night window are swept
the same way. In each group the winner is the setting with the best in-time recall
among those that keep false alarms under the target and raise no leak alert on a
faulty sensor; recalls within one leak of the best count as tied (samples are small),
and among ties a setting with no leak alert on a faulty sensor, then the fewest false
alarms win, false-alarm rates within 0.05 per sensor-month counting as equal, in
which case the current default stays (a change must earn its place). The winners
are combined, and the combination is scored on the tuning set, then on the held-out
set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.models.evaluation.runner import Detector
from leaksense.models.evaluation.totals import LeakFilter, Totals, background_5, burst_20

FALSE_ALARM_LIMIT = 1.0
FALSE_ALARM_TIE = 0.05
"""False alarms per sensor-month closer than this are not told apart."""


def _both(leak: Any) -> bool:
    return background_5(leak) or burst_20(leak)


@dataclass(frozen=True)
class Group:
    """Settings to try for some parameters, and the recall they are judged on."""

    name: str
    settings: tuple[dict[str, float], ...]
    objective: LeakFilter


GROUPS: tuple[Group, ...] = (
    Group(
        "burst CUSUM",
        tuple(
            {"burst_k": k, "burst_h": h, "burst_z_clip": c}
            for c in (6.0, 8.0)
            for k in (1.5, 2.0, 2.5)
            for h in (5.0, 7.0, 9.0)
        ),
        burst_20,
    ),
    Group(
        "short window",
        tuple(
            {"burst_window_n": n, "burst_window_z": z}
            for n, sums in ((3, (0.0, 11.0, 11.5, 12.0)), (4, (14.0, 15.0)))
            for z in sums
        ),
        burst_20,
    ),
    Group(
        "step test",
        (
            *({"burst_step_z": z} for z in (0.0, 4.5, 5.0, 5.5, 6.0)),
            {"burst_step_z": 5.0, "burst_step_n": 3},
            {"burst_step_z": 5.0, "burst_step_before_n": 12},
        ),
        burst_20,
    ),
    Group(
        "night CUSUM",
        tuple({"night_k": k, "night_h": h} for k in (0.25, 0.5, 1.0) for h in (2.0, 3.0, 4.0)),
        background_5,
    ),
    Group(
        "level tracker",
        tuple({"level_half_life_h": v} for v in (1.5, 3.0, 6.0, 12.0, 24.0)),
        _both,
    ),
    Group(
        "night window",
        tuple(
            {"night_start_hour": a, "night_end_hour": b}
            for a, b in ((0, 4), (1, 5), (2, 5), (1, 4))
        ),
        background_5,
    ),
    Group(
        "morning",
        tuple(
            {"morning_end_hour": end, "morning_sigma_floor_fraction": floor}
            for end in (0, 8, 9)
            for floor in (0.0125, 0.015, 0.02)
            if end or floor == 0.015
        ),
        background_5,
    ),
)


def label(setting: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in setting.items())


def detectors(base: DetectionParams, groups: Sequence[Group] = GROUPS) -> list[Detector]:
    """One engine per setting of every group (the others at ``base``), without repeats."""
    out: dict[str, Detector] = {}
    for group in groups:
        for setting in group.settings:
            name = label(setting)
            out.setdefault(name, Detector(name, params=base.model_copy(update=setting)))
    return list(out.values())


def _pick(
    settings: Sequence[dict[str, float]],
    totals: dict[str, Totals],
    objective: LeakFilter,
    default: dict[str, Any],
) -> dict[str, float]:
    """Among the settings under the false-alarm limit with the fewest leak alerts on
    faulty sensors (a faulty sensor must raise none: a constraint, not a preference),
    the best recall to within one leak; then the fewest false alarms, to within
    FALSE_ALARM_TIE (then the current default wins: no change for noise)."""
    admissible = [s for s in settings if totals[label(s)].false_alarm_rate <= FALSE_ALARM_LIMIT]
    if not admissible:
        return min(settings, key=lambda s: totals[label(s)].false_alarm_rate)
    fewest = min(len(totals[label(s)].on_faulty) for s in admissible)
    admissible = [s for s in admissible if len(totals[label(s)].on_faulty) == fewest]
    found = {label(s): totals[label(s)].recall(objective)[0] for s in admissible}
    tied = [s for s in admissible if found[label(s)] >= max(found.values()) - 1]
    quietest = min(totals[label(s)].false_alarm_rate for s in tied)
    tied = [s for s in tied if totals[label(s)].false_alarm_rate <= quietest + FALSE_ALARM_TIE]
    for s in tied:
        if all(default[k] == v for k, v in s.items()):
            return s
    return min(tied, key=lambda s: totals[label(s)].false_alarm_rate)


def choose(
    base: DetectionParams,
    totals: dict[str, Totals],
    groups: Sequence[Group] = GROUPS,
) -> tuple[DetectionParams, dict[str, dict[str, float]]]:
    """The combined winners, and each group's winning setting."""
    default = base.model_dump()
    winners = {g.name: _pick(g.settings, totals, g.objective, default) for g in groups}
    update = {k: v for setting in winners.values() for k, v in setting.items()}
    return base.model_copy(update=update), winners


def sweep_tables(
    totals: dict[str, Totals],
    winners: dict[str, dict[str, float]],
    table: Callable[[Sequence[Totals], str | None], str],
    groups: Sequence[Group] = GROUPS,
) -> str:
    """One summary table per group, the winner in bold."""
    parts = []
    for group in groups:
        rows = [totals[label(s)] for s in group.settings]
        parts.append(f"#### {group.name}\n")
        parts.append(table(rows, label(winners[group.name])))
    return "\n".join(parts)
