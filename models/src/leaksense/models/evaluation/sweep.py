"""Parameter choice on the tuning set, one group of thresholds at a time.

The burst CUSUM and the night watch look at different things (minutes against
nights), so their thresholds are swept separately around the current defaults, each
judged on the recall it exists for; the level tracker and the night window are swept
the same way. In each group the winner is the setting with the best in-time recall
among those that keep false alarms under the target and raise no leak alert on a
faulty sensor (ties: fewer false alarms, then the current default). The winners are
combined, and the combination is scored on the tuning set, then on the held-out set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.models.evaluation.runner import Detector
from leaksense.models.evaluation.totals import LeakFilter, Totals, background_5, burst_20

FALSE_ALARM_LIMIT = 1.0


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
        tuple({"burst_k": k, "burst_h": h} for k in (1.0, 1.5, 2.0) for h in (4.0, 5.0, 7.0, 9.0)),
        burst_20,
    ),
    Group(
        "night CUSUM",
        tuple({"night_k": k, "night_h": h} for k in (0.25, 0.5, 1.0) for h in (2.0, 3.0, 4.0)),
        background_5,
    ),
    Group(
        "level tracker",
        tuple({"level_half_life_h": v} for v in (1.5, 3.0, 6.0)),
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


def _rank(total: Totals, objective: LeakFilter, is_default: bool) -> tuple[float, ...]:
    found, n = total.recall(objective)
    return (found / n if n else 0.0, -total.false_alarm_rate, float(is_default))


def choose(
    base: DetectionParams,
    totals: dict[str, Totals],
    groups: Sequence[Group] = GROUPS,
) -> tuple[DetectionParams, dict[str, dict[str, float]]]:
    """The combined winners, and each group's winning setting."""
    winners: dict[str, dict[str, float]] = {}
    current = base.model_dump()
    for group in groups:
        scored: list[tuple[tuple[float, ...], dict[str, float]]] = []
        for setting in group.settings:
            total = totals[label(setting)]
            admissible = total.false_alarm_rate <= FALSE_ALARM_LIMIT and not total.on_faulty
            is_default = all(current[k] == v for k, v in setting.items())
            rank = _rank(total, group.objective, is_default)
            scored.append(((float(admissible), *rank), setting))
        winners[group.name] = max(scored, key=lambda s: s[0])[1]
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
