"""A gateway's restart changes nothing its series knew: the model each one trained
and its recent level are kept (``detection/modelfile.py``, ``detection/level.py``).

Before, a restart refitted every series at whatever hour it came back and started
its level from one reading: a restart in the night raised false alerts the next
morning, or at the night's verdict.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from flows import PARIS, series
from leaksense.core.messages import AlertKind
from leaksense.edge.detection.engine import DetectionEngine, EngineSettings
from leaksense.edge.detection.level import RecentLevel
from leaksense.edge.detection.modelfile import load_model, save_model

LEAKS = {AlertKind.BURST, AlertKind.BACKGROUND_LEAK}
DAY_STEPS = 288
Flows = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def night_noisy(days: int) -> Flows:
    """The synthetic series with a noise of 0.7 m³/h whatever the hour: 10 % of the
    night flow, 2 % of the peaks (a household's use is a larger share at night)."""
    epoch, flow = series(days, noise=0.0)
    return epoch, flow + 0.7 * np.random.default_rng(3).standard_normal(flow.size)


def leak_alerts(tmp_path: Path, flows: Flows, restart_hour: int | None) -> list[str]:
    """Replay with a gateway restarted every day at ``restart_hour`` (local) once
    the warm-up is over; the leak alerts' explanations."""
    settings = EngineSettings(history_dir=tmp_path)
    engine = DetectionEngine("gw", settings)
    seen: dict[str, str] = {}
    for k, (t, y) in enumerate(zip(*flows, strict=True)):
        local = datetime.fromtimestamp(float(t), PARIS)
        if k > 15 * DAY_STEPS and (local.hour, local.minute) == (restart_hour, 0):
            engine.close()
            engine = DetectionEngine("gw", settings)
        for alert in engine.observe_values("s1", float(t), float(y)):
            if alert.kind in LEAKS:
                seen.setdefault(alert.alert_id, alert.explanation_en)
    engine.close()
    return list(seen.values())


@pytest.mark.parametrize("hour", [2, 4])
def test_a_gateway_restarted_every_night_alerts_no_more_than_one_left_running(
    tmp_path: Path, hour: int
) -> None:
    flows = night_noisy(26)
    steady = leak_alerts(tmp_path / "steady", flows, None)
    restarted = leak_alerts(tmp_path / "restarted", flows, hour)
    assert restarted == steady == [], restarted


def test_a_restarted_series_takes_back_its_model_and_level(tmp_path: Path) -> None:
    epoch, flow = night_noisy(20)
    settings = EngineSettings(history_dir=tmp_path)
    engine = DetectionEngine("gw", settings)
    end = 18 * DAY_STEPS + 30  # 02:30 local: the night is half gathered
    for t, y in zip(epoch[:end].tolist(), flow[:end].tolist(), strict=True):
        engine.observe_values("s1", t, y)
    before = engine.series["s1"]
    assert before.artifact is not None
    model, level = before.artifact, before._level.level
    engine.close()
    (saved,) = tmp_path.glob("*.model.json")
    assert load_model(saved, "s1") == model
    restarted = DetectionEngine("gw", settings)
    restarted.observe_values("s1", float(epoch[end]), float(flow[end]))
    after = restarted.series["s1"]
    assert after.artifact == model  # not refitted on a part of a night
    assert after._level.level == pytest.approx(level, rel=0.01)


def test_a_saved_model_that_is_unreadable_or_another_series_is_left_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    epoch, flow = night_noisy(16)
    engine = DetectionEngine("gw", EngineSettings())
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        engine.observe_values("s1", t, y)
    model = engine.series["s1"].artifact
    assert model is not None
    path = tmp_path / "sensor-s2.model.json"
    save_model(path, model)
    garbage = tmp_path / "sensor-s3.model.json"
    garbage.write_text('{"version": ', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert load_model(path, "s2") is None
        assert load_model(garbage, "s3") is None
        assert load_model(tmp_path / "none.model.json", "s4") is None
    assert "it is 's1'" in caplog.text and "sensor-s3.model.json" in caplog.text


def test_the_level_starts_from_one_reading_and_survives_a_restart() -> None:
    level = RecentLevel(half_life_h=1.0)
    assert not level.started and level.level == 1.0
    level.start(5.0, 0.0)  # a profile of zero is no level yet
    assert not level.started and level.level == 1.0
    level.start(9.0, 10.0)
    assert level.started and level.level == pytest.approx(0.9)
    copy = RecentLevel(half_life_h=1.0)
    copy.restore(level.state())
    for tracker in (level, copy):
        for _ in range(12):  # an hour: the first reading weighs half
            tracker.add(13.0, 10.0, 300.0)
    assert level.level == copy.level == pytest.approx(1.1)


def test_after_a_reset_the_readings_weigh_alike_at_first() -> None:
    level = RecentLevel(half_life_h=6.0)
    level.start(20.0, 10.0)
    level.reset()
    for flow_m3h in (9.0, 12.0, 9.0):
        level.add(flow_m3h, 10.0, 300.0)
    assert level.level == pytest.approx(1.0, abs=0.01)  # not 2.0, nor 0.9 alone


def test_the_level_after_each_night_is_kept_to_judge_a_night_alert_by() -> None:
    level = RecentLevel(half_life_h=1.0)
    level.night_judged(0.0)  # not started: nothing to keep
    level.start(10.0, 10.0)
    level.night_judged(86_400.0)
    for _ in range(24):
        level.add(12.0, 10.0, 300.0)
    level.night_judged(2 * 86_400.0)
    assert level.before(86_400.0) == 0.0  # no night judged before that one
    assert level.before(2 * 86_400.0) == pytest.approx(1.0)
    assert level.before(3 * 86_400.0) == pytest.approx(1.15, abs=0.01)
    copy = RecentLevel(half_life_h=1.0)
    copy.restore(level.state())  # kept across a restart
    assert copy.before(2 * 86_400.0) == pytest.approx(1.0)
