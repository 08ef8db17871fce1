"""Open alerts survive a gateway's restart: the same leak stays the same alert."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows import PARIS, busy_days_series, night_mean, series
from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.engine import DetectionEngine, EngineSettings
from leaksense.edge.detection.eventfile import FORMAT, SeriesState, load_state, save_state
from leaksense.edge.detection.events import EventBook
from leaksense.edge.detection.fit import fit_artifact
from leaksense.edge.detection.history import prune_stale
from leaksense.edge.detection.night import NightEvidence, NightWatch
from leaksense.edge.detection.recent import RecentExcess, RecentState

DAY = 86_400
STEP_S = 300
LEAKS = {AlertKind.BURST, AlertKind.BACKGROUND_LEAK}


def feed(engine: DetectionEngine, epoch: np.ndarray, flow: np.ndarray) -> list[Alert]:
    alerts: list[Alert] = []
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        alerts += engine.observe_values("s1", t, y)
    return [a for a in alerts if a.kind in LEAKS]


def leak_then_repair() -> tuple[np.ndarray, np.ndarray, int]:
    """A 30 % night leak from day 17, repaired on day 25; the restart comes on day 21."""
    epoch, flow = series(30)
    flow[17 * DAY // STEP_S : 25 * DAY // STEP_S] += 0.3 * night_mean(epoch, flow)
    return epoch, flow, 21 * DAY // STEP_S


def test_a_restarted_gateway_goes_on_with_its_open_alert_and_closes_it(tmp_path: Path) -> None:
    epoch, flow, restart = leak_then_repair()
    settings = EngineSettings(history_dir=tmp_path)
    before = feed(DetectionEngine("gw", settings), epoch[:restart], flow[:restart])
    assert before and before[-1].ended_at is None
    leak_id = before[-1].alert_id
    after = feed(DetectionEngine("gw", settings), epoch[restart:], flow[restart:])
    # The same event: updated, then closed after the repair; no second alert.
    assert {a.alert_id for a in after} == {leak_id}
    assert after[-1].ended_at is not None
    assert after[-1].ended_at.timestamp() > epoch[25 * DAY // STEP_S]


def test_the_volume_a_leak_lost_while_the_gateway_was_down_is_counted(tmp_path: Path) -> None:
    epoch, flow, restart = leak_then_repair()
    down = 3 * 3600 // STEP_S  # three hours without a gateway
    settings = EngineSettings(history_dir=tmp_path)
    feed(DetectionEngine("gw", settings), epoch[:restart], flow[:restart])
    after = feed(DetectionEngine("gw", settings), epoch[restart + down :], flow[restart + down :])
    unbroken = feed(DetectionEngine("gw", EngineSettings()), epoch, flow)
    assert after[-1].alert_id == unbroken[-1].alert_id
    assert after[-1].lost_volume_m3 == pytest.approx(unbroken[-1].lost_volume_m3, rel=0.02)


def test_without_its_events_file_a_restart_opens_a_second_alert(tmp_path: Path) -> None:
    epoch, flow, restart = leak_then_repair()
    settings = EngineSettings(history_dir=tmp_path)
    before = feed(DetectionEngine("gw", settings), epoch[:restart], flow[:restart])
    for path in tmp_path.glob("*.events.json"):
        path.unlink()
    after = feed(DetectionEngine("gw", settings), epoch[restart:], flow[restart:])
    assert {a.alert_id for a in after} - {a.alert_id for a in before}


def test_a_broken_events_file_is_logged_and_left_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sensor-s1.events.json"
    book = EventBook("gw", "s1", is_dma=False)
    bad_event = {"format": FORMAT, "open": {"night": {"alert_id": 3}}, "last": {}}
    bad_night = {"format": FORMAT, "open": {}, "last": {}, "night": {"cusum": "high"}}
    texts = ["{not json", json.dumps({"format": "other/9"}), json.dumps({"format": FORMAT})]
    for text in [*texts, json.dumps(bad_event), json.dumps(bad_night)]:
        path.write_text(text)
        with caplog.at_level(logging.WARNING):
            assert load_state(path, book) == SeriesState()
        assert "ignoring the open events" in caplog.text
        caplog.clear()
        assert book.snapshot() == {"open": {}, "last": {}}
    assert load_state(tmp_path / "missing.events.json", book) == SeriesState()


def open_night(book: EventBook, started_s: float, now_s: float) -> Alert:
    return book.open(
        "night",
        AlertKind.BACKGROUND_LEAK,
        started_s=started_s,
        now_s=now_s,
        flow_m3h=0.4,
        confidence=0.6,
        texts=("en", "fr"),
    )


def test_a_saved_book_restores_its_events_and_their_ids(tmp_path: Path) -> None:
    book = EventBook("gw", "s1", is_dma=False)
    opened = open_night(book, 1000.0, 5000.0)
    path = tmp_path / "sensor-s1.events.json"
    saved = SeriesState(NightEvidence(2.5, 1000.0, 5000.0))
    save_state(path, book, saved)
    again = EventBook("gw", "s1", is_dma=False)
    assert load_state(path, again) == saved
    event = again.get("night")
    assert event is not None and event.alert_id == opened.alert_id
    assert event.kind is AlertKind.BACKGROUND_LEAK and event.flow_m3h == 0.4
    closed = again.close("night", 9000.0)
    assert closed is not None and closed.alert_id == opened.alert_id
    # The last id is kept too: a new event with the same start gets its own.
    reopened = open_night(again, 1000.0, 20_000.0)
    assert reopened.alert_id != opened.alert_id


def test_a_starting_gateway_deletes_the_files_of_long_silent_series(tmp_path: Path) -> None:
    now_s = 2_000_000_000.0
    names = ["sensor-old.hist", "sensor-old.events.json", "sensor-new.hist", "notes.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    for name in ("sensor-old.hist", "sensor-old.events.json", "notes.txt"):
        os.utime(tmp_path / name, (now_s - 61 * DAY, now_s - 61 * DAY))
    os.utime(tmp_path / "sensor-new.hist", (now_s - DAY, now_s - DAY))
    assert prune_stale(tmp_path, now_s) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "sensor-new.hist"]


def test_a_restart_keeps_the_nights_of_evidence_a_small_leak_gathered(tmp_path: Path) -> None:
    # A leak of 5 % of the night flow needs more than one night; the gateway restarts
    # at noon between two of them.
    epoch, flow = series(26)
    flow[17 * DAY // STEP_S :] += 0.05 * night_mean(epoch, flow)
    restart = int(17.5 * DAY) // STEP_S

    def first_alert(directory: Path, *, keep_file: bool = True, model: bool = False) -> Alert:
        settings = EngineSettings(history_dir=directory)
        engine = DetectionEngine("gw", settings)
        alerts = feed(engine, epoch[:restart], flow[:restart])
        if not keep_file:
            for path in directory.glob("*.events.json"):
                path.unlink()
        restarted = DetectionEngine("gw", settings)
        artifact = engine.series["s1"].artifact
        if model and artifact is not None:  # the server's model, installed at start
            restarted.install([artifact])
        alerts += feed(restarted, epoch[restart:], flow[restart:])
        return alerts[0]

    unbroken = feed(DetectionEngine("gw", EngineSettings()), epoch, flow)[0]
    assert unbroken.started_at.timestamp() < epoch[restart]  # evidence from before it
    for i, model in enumerate((False, True)):
        resumed = first_alert(tmp_path / f"kept-{i}", model=model)
        assert resumed.detected_at == unbroken.detected_at
        assert resumed.started_at == unbroken.started_at
    forgot = first_alert(tmp_path / "lost", keep_file=False)
    assert forgot.detected_at > unbroken.detected_at


def test_a_restart_in_the_night_keeps_the_hours_it_had_watched(tmp_path: Path) -> None:
    # A 10 % leak alarms when its first night closes. The gateway restarts at 03:30
    # local that night: the 1.5 h left are too few to judge the night on its own.
    epoch, flow = series(22)
    flow[17 * DAY // STEP_S :] += 0.1 * night_mean(epoch, flow)
    restart = (17 * DAY + int(2.5 * 3600)) // STEP_S  # 02:30 UTC, 03:30 in Paris in March

    def first_alert(directory: Path, *, keep_file: bool) -> Alert:
        settings = EngineSettings(history_dir=directory)
        alerts = feed(DetectionEngine("gw", settings), epoch[:restart], flow[:restart])
        saved = json.loads((directory / "sensor-s1.events.json").read_text())
        assert saved["night"]["night"]["count"] >= 2 * 3600 // STEP_S  # 01:00 to 03:00
        if not keep_file:
            (directory / "sensor-s1.events.json").unlink()
        alerts += feed(DetectionEngine("gw", settings), epoch[restart:], flow[restart:])
        return alerts[0]

    unbroken = feed(DetectionEngine("gw", EngineSettings()), epoch, flow)[0]
    assert unbroken.detected_at.timestamp() < epoch[restart] + 3 * 3600  # that night
    resumed = first_alert(tmp_path / "kept", keep_file=True)
    assert (resumed.detected_at, resumed.started_at) == (unbroken.detected_at, unbroken.started_at)
    forgot = first_alert(tmp_path / "lost", keep_file=False)
    assert forgot.detected_at.timestamp() - unbroken.detected_at.timestamp() == DAY


def test_a_night_waiting_for_its_morning_is_judged_after_a_restart(tmp_path: Path) -> None:
    # A series whose nights are judged with their morning, at 09:00; a restart at 07:00.
    epoch, flow, hour = busy_days_series(23)
    train = epoch < epoch[0] + 21 * DAY
    artifact = fit_artifact("s1", epoch[train], flow[train], LocalClock())
    assert artifact.morning_slope_m3h > 0
    test_epoch, test_flow = epoch[~train], flow[~train] * 1.08
    cut = int(np.argmax((hour[~train] == 7) & (test_epoch > test_epoch[0] + 3 * 3600)))
    params, clock = artifact.params, LocalClock()

    def watch(start: NightWatch | None, lo: int, hi: int) -> tuple[NightWatch, list[Any]]:
        night = start or NightWatch(artifact, 48, params)
        verdicts = []
        for t, y in zip(test_epoch[lo:hi].tolist(), test_flow[lo:hi].tolist(), strict=True):
            day, day_type, _, h = clock.locate(t)
            if (verdict := night.observe(t, day, day_type, h, y)) is not None:
                verdicts.append((h, verdict))
        return night, verdicts

    _, unbroken = watch(None, 0, len(test_epoch))
    assert unbroken and unbroken[0][0] == params.morning_end_hour
    before, early = watch(None, 0, cut)
    assert not early
    path, book = tmp_path / "s1.events.json", EventBook("gw", "s1", is_dma=False)
    save_state(path, book, SeriesState(before.evidence(test_epoch[cut - 1])))
    evidence = load_state(path, book).night
    assert evidence is not None and evidence.pending is not None
    restarted = NightWatch(artifact, 48, params)
    restarted.resume(evidence)
    _, after = watch(restarted, cut, len(test_epoch))
    assert after == unbroken
    _, forgot = watch(None, cut, len(test_epoch))
    assert forgot[:1] != unbroken[:1]


def test_an_events_file_from_before_the_windows_were_kept_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s1.events.json"
    night = {"cusum": 1.5, "evidence_start_s": 100.0, "judged_s": 200.0}
    path.write_text(json.dumps({"format": FORMAT, "open": {}, "last": {}, "night": night}))
    saved = load_state(path, EventBook("gw", "s1", is_dma=False))
    assert saved == SeriesState(NightEvidence(1.5, 100.0, 200.0))


def test_a_restart_remembers_the_watering_evenings_of_the_last_days(tmp_path: Path) -> None:
    # From day 16 the flow rises by half its mean every evening at 20:00 (gardens):
    # a burst the first evening, expected from the second on. Restart on day 17 at noon.
    epoch, flow = series(20)
    hours = np.array([datetime.fromtimestamp(float(t), PARIS).hour for t in epoch])
    flow[(hours == 20) & (epoch >= epoch[0] + 16 * DAY)] += 0.5 * flow.mean()
    restart = int(17.5 * DAY) // STEP_S

    def days(alerts: list[Alert]) -> list[int]:
        opened = {a.alert_id: a for a in alerts if a.kind is AlertKind.BURST}
        return sorted(int((a.detected_at.timestamp() - epoch[0]) // DAY) for a in opened.values())

    def restarted(directory: Path, *, keep_file: bool) -> list[int]:
        settings = EngineSettings(history_dir=directory)
        alerts = feed(DetectionEngine("gw", settings), epoch[:restart], flow[:restart])
        if not keep_file:
            (directory / "sensor-s1.events.json").unlink()
        return days(alerts + feed(DetectionEngine("gw", settings), epoch[restart:], flow[restart:]))

    assert days(feed(DetectionEngine("gw", EngineSettings()), epoch, flow)) == [16]
    assert restarted(tmp_path / "kept", keep_file=True) == [16]
    assert restarted(tmp_path / "lost", keep_file=False) == [16, 17]


def test_a_memory_of_another_shape_is_left_aside() -> None:
    memory = RecentExcess(3, 2.0)
    memory.restore(RecentState([[1.0] * 95], None, [0.0] * 96, [0] * 96))
    assert memory.state() == RecentState([], None, [0.0] * 96, [0] * 96)
    memory.restore(RecentState([[1.0] * 96] * 5, None, [0.0] * 96, [0] * 96))
    assert len(memory.state().days) == 3  # the last days it keeps
    assert memory.allowance_m3h == [1.0] * 96
