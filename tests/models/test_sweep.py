"""The sweep's rule for choosing parameters: the fewest leak alerts on faulty sensors
(a constraint), then recall (to within one leak), then the fewest false alarms (to
within 0.05 per sensor-month), and the current default among what is still tied."""

from __future__ import annotations

from leaksense.edge.detection.artifact import DetectionParams
from leaksense.models.evaluation.score import CaseScore, LeakOutcome, Misfire
from leaksense.models.evaluation.sweep import Group, choose, label
from leaksense.models.evaluation.totals import Totals, burst_20

SERIES_MONTHS = 100.0


def _totals(found: int, false_alarms: int, *, on_faulty: int = 0) -> Totals:
    leaks = [
        LeakOutcome("c", "burst", 20, "dma", 0.0, 900.0, 600.0 if i < found else None, None)
        for i in range(20)
    ]
    misfire = Misfire("c", "s", "dma", "burst", 0.0, 0.0, "")
    score = CaseScore("c", "tuning", "burst-20", "town-600", "clean", "winter", leaks=leaks)
    score.false_alarms = [misfire] * false_alarms
    score.on_faulty = [misfire] * on_faulty
    score.series_months = SERIES_MONTHS
    return Totals("x", [score])


def _winner(results: dict[float, Totals]) -> float:
    settings = tuple({"burst_k": k} for k in results)
    totals = {label(s): t for s, t in zip(settings, results.values(), strict=True)}
    params, winners = choose(DetectionParams(), totals, (Group("g", settings, burst_20),))
    assert winners["g"] == {"burst_k": params.burst_k}
    return params.burst_k


def test_a_change_must_earn_its_place() -> None:
    # One more burst and 3 more false alarms in 100 sensor-months: a tie, the default stays.
    assert _winner({2.5: _totals(10, 30), 2.0: _totals(11, 33)}) == 2.5


def test_more_recall_wins_under_the_false_alarm_limit_only() -> None:
    assert _winner({2.5: _totals(10, 30), 1.5: _totals(13, 90)}) == 1.5
    assert _winner({2.5: _totals(10, 30), 1.5: _totals(13, 120)}) == 2.5  # over 1 a month


def test_no_leak_alert_on_a_faulty_sensor_beats_fewer_false_alarms() -> None:
    results = {
        2.5: _totals(10, 30, on_faulty=1),
        2.0: _totals(10, 60),
        3.0: _totals(9, 20, on_faulty=2),
    }
    assert _winner(results) == 2.0
    # More recall does not buy a leak alert on a faulty sensor.
    assert _winner({2.5: _totals(10, 30), 1.5: _totals(13, 90, on_faulty=1)}) == 2.5
    # Among clean settings tied on recall, the fewest false alarms.
    assert (
        _winner({2.5: _totals(10, 30, on_faulty=1), 2.0: _totals(10, 60), 3.0: _totals(9, 20)})
        == 3.0
    )
