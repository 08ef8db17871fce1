"""A leak alert people dismissed (``false_alarm``, ``sensor_fault``) teaches the gateway:
the series closes it and takes its flow as a normal night level (``detection/accepted.py``),
so the same excess does not alarm again and a new leak on top of it is a new alert.

How the dismissals reach the gateway from a real server is in ``test_sensitivity.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from flows import night_mean, series
from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection import accepted
from leaksense.edge.detection.accepted import Acceptance, AcceptedFlow
from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.engine import DetectionEngine, EngineSettings

DAY_STEPS = 86_400 // 300
LEAKS = {AlertKind.BURST, AlertKind.BACKGROUND_LEAK}
Flows = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def with_night_excess(days: int, *starts: int) -> Flows:
    """The synthetic series with a steady 10 % of its night flow added from noon of
    each of ``starts`` (a new customer, a leak)."""
    epoch, flow = series(days)
    excess_m3h = 0.10 * night_mean(epoch, flow)
    for day in starts:
        flow[day * DAY_STEPS + DAY_STEPS // 2 :] += excess_m3h
    return epoch, flow


def replay(
    engine: DetectionEngine, epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64]
) -> list[Alert]:
    alerts: list[Alert] = []
    for t, f in zip(epoch, flow, strict=True):
        alerts += engine.observe_values("s1", float(t), float(f))
    return alerts


def replace_trained(artifact: ModelArtifact, trained_to_s: float) -> ModelArtifact:
    return artifact.model_copy(update={"trained_to": datetime.fromtimestamp(trained_to_s, UTC)})


def first_leak(alerts: list[Alert]) -> Alert:
    return next(a for a in alerts if a.kind in LEAKS and a.ended_at is None)


def leak_ids(alerts: list[Alert]) -> list[str]:
    return list(dict.fromkeys(a.alert_id for a in alerts if a.kind in LEAKS))


def dismiss_first_leak(
    engine: DetectionEngine, epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64]
) -> tuple[Alert, Alert, int]:
    """Replay until a leak alert opens and dismiss it at once; returns it, its closing
    alert and the index of the next reading."""
    alerts: list[Alert] = []
    i = 0
    while not any(a.kind in LEAKS for a in alerts):
        alerts += engine.observe_values("s1", float(epoch[i]), float(flow[i]))
        i += 1
    judged = first_leak(alerts)
    closed = engine.dismiss(judged.alert_id, judged.flow_m3h, "false_alarm")
    assert closed is not None
    return judged, closed, i


def test_a_model_trained_before_the_verdict_gets_both_night_levels() -> None:
    epoch, flow = series(16)
    engine = DetectionEngine("gw", EngineSettings())
    replay(engine, epoch, flow)
    artifact = engine.series["s1"].artifact
    assert artifact is not None
    accepted = AcceptedFlow(0.5, since_s=float(epoch[-1]), quiet_m3h=7.0)
    assert accepted.levels_for(artifact) == (7.0, 7.5)
    assert replace(accepted, since_s=float(epoch[0])).levels_for(artifact) == ()
    assert accepted.learned_by(replace_trained(artifact, float(epoch[-1]) + 86_401))
    assert not accepted.learned_by(replace_trained(artifact, float(epoch[-1]) + 3600))
    assert not accepted.learned_by(artifact)


def test_an_accepted_flow_leaves_the_history_after_two_nights_without_it() -> None:
    accepted = AcceptedFlow(1.0, since_s=0.0, quiet_m3h=5.0)
    once = accepted.after_night(5.3)  # not half of it
    assert once.unshown_nights == 1 and not once.gone
    assert once.after_night(5.2).gone
    assert not once.after_night(5.6).after_night(5.2).gone  # shown in between


def test_the_burst_watch_stops_expecting_the_flow_once_it_is_back_down() -> None:
    acceptance = Acceptance(AcceptedFlow(1.0, since_s=0.0, quiet_m3h=5.0, carried_m3h=1.0))
    assert acceptance.level_at_verdict(2.0) == acceptance.level_at_verdict(3.0) == 2.0
    # Still flowing (1 m³/h over the expectation at the verdict): it is carried on.
    assert not any(acceptance.carry(11.0, 10.0, 0.5, h=7.0) for _ in range(50))
    assert acceptance.carried_m3h == 1.0
    # Back down: each reading falls short of half the flow (0.5 m³/h) by 1 σ, and
    # the down-CUSUM stops carrying past h.
    stopped = [acceptance.carry(10.0, 10.0, 0.5, h=7.0) for _ in range(15)]
    assert stopped.index(True) == 7 and acceptance.carried_m3h == 0.0
    assert acceptance.flow is not None  # the night levels stay: only the carry ended


def watch_day(acceptance: Acceptance, hour: int, excess_m3h: float) -> int | None:
    """Twelve readings of ``excess_m3h`` at ``hour``, then the next hour's first."""
    for _ in range(12):
        assert acceptance.watch_hour(hour, excess_m3h) is None
    return acceptance.watch_hour(hour + 1, 0.0)


def test_an_hour_shows_the_flow_on_its_mean_over_every_day_since_the_verdict() -> None:
    flow = AcceptedFlow(1.0, since_s=0.0, quiet_m3h=5.0, carried_m3h=1.0, hours=(1, 2))
    acceptance = Acceptance(flow)
    assert watch_day(acceptance, 10, 0.2) is None  # a quiet 10:00
    # 0.6 at 10:00 the next day: one hour alone would show the flow; the two days
    # together (0.4 m³/h) do not.
    assert watch_day(acceptance, 10, 0.6) is None
    restarted = Acceptance(acceptance.state())  # the evidence survives a restart
    assert watch_day(restarted, 10, 1.0) == 10  # three days: 0.6 m³/h, half the flow
    assert restarted.flow is not None and restarted.flow.hours == (1, 2, 10)
    assert watch_day(restarted, 10, 1.0) is None  # known now


def test_the_series_takes_back_a_flow_its_nights_stopped_showing() -> None:
    acceptance = Acceptance(AcceptedFlow(1.0, since_s=0.0, quiet_m3h=5.0))
    assert acceptance.after_night(5.3) is None
    gone = acceptance.after_night(5.2)
    assert gone is not None and gone.flow_m3h == 1.0
    assert acceptance.flow is None and acceptance.carried_m3h == 0.0
    assert acceptance.after_night(9.0) is None  # nothing left to take back


def test_a_dismissed_night_alert_closes_and_a_new_leak_on_top_is_a_new_alert() -> None:
    epoch, flow = with_night_excess(40, 20, 30)
    engine = DetectionEngine("gw", EngineSettings())
    judged, closed, i = dismiss_first_leak(engine, epoch, flow)
    assert judged.kind is AlertKind.BACKGROUND_LEAK
    assert closed.alert_id == judged.alert_id and closed.ended_at is not None
    assert "judged false alarm" in closed.explanation_en
    assert "fausse alerte" in closed.explanation_fr
    assert engine.dismiss(judged.alert_id, judged.flow_m3h, "false_alarm") is None  # once
    later = replay(engine, epoch[i:], flow[i:])
    new = [a for a in later if a.kind in LEAKS and a.ended_at is None]
    assert new, "the second leak, on top of the dismissed flow, must be alerted"
    second_start_s = float(epoch[30 * DAY_STEPS + DAY_STEPS // 2])
    # nothing between the dismissal and the new leak (a weekly refit came in between)
    assert new[0].detected_at.timestamp() > second_start_s
    assert new[0].detected_at.timestamp() - second_start_s <= 48 * 3600
    assert new[0].flow_m3h == pytest.approx(judged.flow_m3h, rel=0.5)  # the new leak alone
    # Without the verdict, the gateway folds the second leak into the first alert.
    kept = DetectionEngine("gw", EngineSettings())
    assert leak_ids(replay(kept, epoch, flow)) == [judged.alert_id]


def test_accepting_a_large_flow_does_not_hide_a_small_leak_on_quiet_nights() -> None:
    """A large excess from noon on day 20 to midnight on day 22 (a reservoir filled),
    dismissed; a leak of 10 % of the night flow from day 26 is then found in time."""
    epoch, flow = series(34)
    flow[20 * DAY_STEPS + DAY_STEPS // 2 : 22 * DAY_STEPS] += 0.3 * flow.mean()
    leak_m3h = 0.10 * night_mean(epoch, flow)
    flow[26 * DAY_STEPS + DAY_STEPS // 2 :] += leak_m3h
    engine = DetectionEngine("gw", EngineSettings())
    judged, closed, i = dismiss_first_leak(engine, epoch, flow)
    assert judged.kind is AlertKind.BURST and closed.ended_at is not None
    later = replay(engine, epoch[i:], flow[i:])
    new = [a for a in later if a.kind in LEAKS and a.ended_at is None]
    assert new and new[0].kind is AlertKind.BACKGROUND_LEAK, [a.explanation_en for a in new]
    leak_start_s = float(epoch[26 * DAY_STEPS + DAY_STEPS // 2])
    assert 0 < new[0].detected_at.timestamp() - leak_start_s <= 48 * 3600


def test_a_use_on_some_nights_only_is_not_alerted_again_once_dismissed() -> None:
    """From day 20, a farm fills a trough (10 % of the night flow, 01:00 to 05:00) every
    other night."""
    epoch, flow = series(36)
    excess_m3h = 0.10 * night_mean(epoch, flow)
    for day in range(20, 36, 2):
        flow[day * DAY_STEPS : day * DAY_STEPS + DAY_STEPS // 6] += excess_m3h
    engine = DetectionEngine("gw", EngineSettings())
    judged, _, i = dismiss_first_leak(engine, epoch, flow)
    assert judged.kind is AlertKind.BACKGROUND_LEAK
    later = replay(engine, epoch[i:], flow[i:])
    assert leak_ids(later) == [], [a.explanation_en for a in later]


@pytest.mark.parametrize("spread", [accepted.ACCEPTED_SPREAD, 0.0])
def test_an_accepted_use_that_varies_from_night_to_night_is_not_alerted_again(
    spread: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A farm irrigates every night from day 20 (60 % of the night flow), dismissed;
    from then on it uses a fifth more and a fifth less than the flow it was
    accepted at on alternate nights (the weather). Judged with the quiet nights' σ,
    the first larger night alarms; with the accepted level's own σ, none does."""
    monkeypatch.setattr(accepted, "ACCEPTED_SPREAD", spread)
    epoch, flow = series(40)
    step = np.arange(flow.size)
    irrigated = (step % DAY_STEPS < DAY_STEPS // 5) & (step >= 20 * DAY_STEPS)
    use_m3h = 0.60 * night_mean(epoch, flow)
    flow[irrigated] += use_m3h
    engine = DetectionEngine("gw", EngineSettings())
    judged, _, i = dismiss_first_leak(engine, epoch, flow)
    varied = judged.flow_m3h * (1 + 0.2 * (-1.0) ** (step // DAY_STEPS))
    after = irrigated & (step >= i)
    flow[after] += varied[after] - use_m3h
    later = replay(engine, epoch[i:], flow[i:])
    nights = [a for a in later if a.kind is AlertKind.BACKGROUND_LEAK]
    if spread > 0:
        assert nights == [], [a.explanation_en for a in nights]
    else:
        assert nights, "judged with the quiet nights' σ, the same use alarms again"


def test_a_nightly_use_dismissed_at_once_is_added_to_the_history_at_night_only() -> None:
    """A farm irrigates every night from day 20, 00:00 to 04:45 UTC (30 % of the night
    flow); its first burst is dismissed at once, while the irrigation runs. The
    history before the verdict gets the flow at the hours it then shows, not in the
    daytime: a refit that learned it by day expected it there, and the day's flow,
    lower, turned the level down until the day's peaks alarmed (five bursts in two
    weeks)."""
    epoch, flow = series(40)
    step = np.arange(flow.size)
    irrigated = (step % DAY_STEPS < DAY_STEPS // 5) & (step >= 20 * DAY_STEPS)
    flow[irrigated] += 0.30 * night_mean(epoch, flow)
    engine = DetectionEngine("gw", EngineSettings())
    judged, _, i = dismiss_first_leak(engine, epoch, flow)
    assert judged.kind is AlertKind.BURST
    later = replay(engine, epoch[i : 24 * DAY_STEPS], flow[i : 24 * DAY_STEPS])
    assert leak_ids(later) == [], [a.explanation_en for a in later]
    kept_t, kept_y = engine.series["s1"].history.read()
    before = kept_t < float(epoch[i - 1])
    original = dict(zip(epoch.tolist(), flow.tolist(), strict=True))
    added = kept_y[before] - np.array([original[t] for t in kept_t[before].tolist()])
    hour_utc = ((kept_t[before] - epoch[0]) // 3600) % 24  # the shift goes by whole hours
    assert np.all(np.abs(added[hour_utc >= 6]) < 1e-3)  # nothing by day
    assert np.all(np.abs(added[hour_utc < 4] - judged.flow_m3h) < 1e-3)
    # and the next two weeks stay quiet
    assert leak_ids(replay(engine, epoch[24 * DAY_STEPS :], flow[24 * DAY_STEPS :])) == []


def test_a_steady_flow_dismissed_as_a_night_alert_is_learned_at_every_hour() -> None:
    """A new customer's 5 % of the mean flow, day and night from noon, alerted by
    the next night and dismissed at once. The level had taken in a third of it by
    then: judged against that level, the evening's excess looked under half of the
    flow, the watch ended at 17:00, and the history learned 13 hours of 24."""
    epoch, flow = with_night_excess(26, 20)
    engine = DetectionEngine("gw", EngineSettings())
    judged, _, i = dismiss_first_leak(engine, epoch, flow)
    assert judged.kind is AlertKind.BACKGROUND_LEAK
    later = replay(engine, epoch[i:], flow[i:])
    assert leak_ids(later) == [], [a.explanation_en for a in later]
    series = engine.series["s1"]
    assert series._accepted.flow is not None and series._accepted.flow.hours == ()
    kept_t, kept_y = series.history.read()
    original = dict(zip(epoch.tolist(), flow.tolist(), strict=True))
    before = kept_t < 20 * DAY_STEPS * 300 + float(epoch[0])  # before the flow began
    added = kept_y[before] - np.array([original[t] for t in kept_t[before].tolist()])
    assert added == pytest.approx(judged.flow_m3h, abs=1e-3)


def test_the_accepted_flow_survives_a_restart(tmp_path: Path) -> None:
    epoch, flow = with_night_excess(32, 20)
    settings = EngineSettings(history_dir=tmp_path)
    engine = DetectionEngine("gw", settings)
    judged, _, i = dismiss_first_leak(engine, epoch, flow)
    engine.close()
    (events,) = tmp_path.glob("*.events.json")
    kept = json.loads(events.read_text(encoding="utf-8"))["accepted"]
    assert kept["flow_m3h"] == pytest.approx(judged.flow_m3h)
    restarted = DetectionEngine("gw", settings)
    after = replay(restarted, epoch[i:], flow[i:])
    assert leak_ids(after) == [], [a.explanation_en for a in after]
    # the readings remembered from before the verdict carry the flow at the hours it
    # was seen (its refits learn it there), the night window at least, and only there
    series = restarted.series["s1"]
    kept = json.loads(events.read_text(encoding="utf-8"))["accepted"]
    assert set(range(1, 5)) <= set(kept["hours"] or range(24))
    kept_t, kept_y = series.history.read()
    before = kept_t < float(epoch[i - 1])
    original = dict(zip(epoch.tolist(), flow.tolist(), strict=True))
    added = kept_y[before] - np.array([original[t] for t in kept_t[before].tolist()])
    at_hours = series.clock.at_hours(tuple(kept["hours"]))
    seen = np.ones(added.size, bool) if at_hours is None else at_hours(kept_t[before])
    assert added[seen] == pytest.approx(kept["flow_m3h"], abs=1e-3)
    assert np.all(np.abs(added[~seen]) < 1e-3)
