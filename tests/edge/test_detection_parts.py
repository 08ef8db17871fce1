"""Detection parts: local calendar, DMA net inflow, artifacts, config, `leaksense detect`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows import PARIS, series
from leaksense.core.cli import build_app
from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.edge.config import parse_config, parse_dma
from leaksense.edge.detection.artifact import (
    MAX_ARTIFACT_BYTES,
    DetectionParams,
    parse_signed,
    unsigned,
)
from leaksense.edge.detection.burst import BurstWatch
from leaksense.edge.detection.clock import SATURDAY, SUNDAY, WEEKDAY, LocalClock
from leaksense.edge.detection.dma import DmaAggregator
from leaksense.edge.detection.fit import fit_artifact
from leaksense.edge.detection.series import SeriesDetector
from leaksense.edge.detection.window import ShortWindow


def test_local_calendar_follows_dst_and_holidays() -> None:
    clock = LocalClock("Europe/Paris", holidays=[date(2026, 4, 6)])
    winter = datetime(2026, 3, 28, 1, 30, tzinfo=UTC).timestamp()  # 02:30 CET, Saturday
    summer = datetime(2026, 3, 30, 1, 30, tzinfo=UTC).timestamp()  # 03:30 CEST, Monday
    assert clock.locate(winter) == (date(2026, 3, 28), SATURDAY, 10, 2)
    assert clock.locate(summer) == (date(2026, 3, 30), WEEKDAY, 14, 3)
    assert clock.day_type(date(2026, 4, 6)) == SUNDAY  # Easter Monday
    late = datetime(2026, 3, 28, 23, 30, tzinfo=UTC).timestamp()  # 00:30 local, Sunday
    assert clock.locate(late)[:2] == (date(2026, 3, 29), SUNDAY)


def test_dma_net_inflow_waits_for_every_meter() -> None:
    dma = DmaAggregator("d", inlets=["in-a", "in-b"], outlets=["out"], interval_s=300)
    assert dma.add("in-a", 1000.0, 10.0) == []
    assert dma.add("out", 1010.0, 3.0) == []
    assert dma.add("in-b", 1050.0, 5.0) == [(900.0, 12.0)]
    for t in (1300.0, 1600.0, 1900.0, 2200.0, 2500.0):
        dma.add("in-a", t, 1.0)
    assert dma.dropped_buckets >= 1


def test_dma_spec_on_the_command_line() -> None:
    meters = parse_dma("north=in1+in2-out1")
    assert (meters.dma_id, meters.inlets, meters.outlets) == ("north", ("in1", "in2"), ("out1",))
    with pytest.raises(ConfigError, match="ID=IN1"):
        parse_dma("north")


def test_artifact_is_small_checksummed_and_tamper_evident() -> None:
    epoch, flow = series(14)
    artifact = fit_artifact("s1", epoch, flow, LocalClock())
    text = unsigned(artifact).model_dump_json()
    assert len(text) <= MAX_ARTIFACT_BYTES
    assert parse_signed(text, None) == artifact
    assert artifact.night_day_factors[SUNDAY] > artifact.night_day_factors[WEEKDAY]
    data = json.loads(text)
    data["artifact"]["night_baseline_m3h"] *= 2
    with pytest.raises(InvalidInput, match="checksum"):
        parse_signed(json.dumps(data), None)
    with pytest.raises(InvalidInput, match="at least 3 days"):
        fit_artifact("s1", epoch[:100], flow[:100], LocalClock())


def test_detection_config_is_validated() -> None:
    base = {"gateway_id": "gw", "site": "s"}
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse_config(base | {"detection": {"timezone": "Mars/Olympus"}})
    with pytest.raises(ConfigError, match="unknown detection parameter"):
        parse_config(base | {"detection": {"params": {"burst_hh": 3}}})
    config = parse_config(
        base
        | {
            "detection": {"params": {"burst_h": 9}, "customer_meters": ["c1"]},
            "dmas": [{"dma_id": "d", "inlets": ["i"], "outlets": ["o"], "large_users": ["farm"]}],
        }
    )
    settings = config.engine_settings()
    assert settings.params.burst_h == 9
    assert settings.customer_meters == frozenset({"c1"})
    assert settings.dmas[0].outlets == ("o", "farm")  # a large user is subtracted


def test_a_large_users_flow_is_not_the_dmas_night_flow() -> None:
    """A farm irrigating at night behind its own meter leaves the net inflow unchanged."""
    meters = (
        parse_config(
            {
                "gateway_id": "gw",
                "site": "s",
                "dmas": [{"dma_id": "d", "inlets": ["in"], "large_users": ["farm"]}],
            }
        )
        .engine_settings()
        .dmas[0]
    )
    dma = DmaAggregator("d", meters.inlets, meters.outlets, interval_s=300)
    assert dma.add("in", 0.0, 3.0) == []
    ((start_s, net_m3h),) = dma.add("farm", 10.0, 1.7)
    assert start_s == 0.0
    assert net_m3h == pytest.approx(1.3)
    assert dma.add("in", 300.0, 1.3) == []
    assert dma.add("farm", 301.0, 0.0) == [(300.0, 1.3)]


def test_detect_command_replays_a_csv_causally(tmp_path: Path) -> None:
    epoch, flow = series(24)
    start = int(20.5 * 86_400 / 300)
    flow[start:] += 0.3 * flow.mean()
    csv_path = tmp_path / "readings.csv"
    rows = ["time,sensor_id,flow_m3h"]
    rows += [
        f"{datetime.fromtimestamp(float(t), UTC).isoformat()},ss-inlet,{f:.4f}"
        for t, f in zip(epoch, flow, strict=True)
    ]
    rows.insert(5, "2026-03-02T00:20:00,ss-inlet,1.0")  # no time zone
    rows.insert(6, "2026-03-02T00:25:00Z,ss-inlet,lots")
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(build_app(), ["detect", str(csv_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped 2 bad row(s)" in result.output
    assert "line 6: time has no timezone" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["kind"] for a in lines] == ["burst"]
    alert = lines[0]
    for field in (
        "sensor_id",
        "kind",
        "started_at",
        "detected_at",
        "flow_m3h",
        "lost_volume_m3",
        "confidence",
        "explanation_en",
        "explanation_fr",
    ):
        assert field in alert
    detected = datetime.fromisoformat(alert["detected_at"]).timestamp()
    assert epoch[start] <= detected <= epoch[start] + 15 * 60


def test_gateway_overrides_win_over_an_installed_artifact() -> None:
    epoch, flow = series(14)
    artifact = fit_artifact("s1", epoch, flow, LocalClock())
    detector = SeriesDetector(
        "s1", gateway_id="gw", clock=LocalClock(), params=DetectionParams(burst_h=11.0)
    )
    detector.install(artifact)
    assert detector.params.burst_h == 11.0
    assert detector.params.max_flow_m3h == artifact.params.max_flow_m3h


def test_an_hour_missing_from_the_history_borrows_sigma_instead_of_the_floor() -> None:
    epoch, flow = series(15, noise=0.05)
    hours = np.array([datetime.fromtimestamp(float(t), PARIS).hour for t in epoch])
    keep = hours != 20  # an alert was open at 20:00 every day: nothing remembered
    artifact = fit_artifact("s1", epoch[keep], flow[keep], LocalClock())
    others = np.median([s for h, s in enumerate(artifact.sigma_m3h) if h != 20])
    assert artifact.sigma_m3h[20] >= 0.9 * others


def test_short_window_needs_every_reading_up_and_clips_a_lone_extreme() -> None:
    params = DetectionParams(burst_window_n=3, burst_window_z=11.5, burst_window_min_z=1.5)
    window = ShortWindow(params)
    assert window.push(0.0, 1.0, 4.0) is None  # not yet three readings
    assert window.push(300.0, 1.2, 4.0) is None
    alarm = window.push(600.0, 1.4, 4.0)
    assert alarm is not None
    assert alarm[0] == 0.0  # the window's first reading
    assert alarm[1] == pytest.approx(1.2)  # mean excess, m³/h
    window.clear()
    # One huge reading counts as burst_z_clip (8): 8 + 1.6 + 1.6 is under 11.5.
    assert [window.push(t, 1.0, z) for t, z in [(0, 50.0), (300, 1.6), (600, 1.6)]] == [None] * 3
    window.clear()
    # Sum reached, but one reading is under the minimum: a ramp or a lone jump.
    assert [window.push(t, 1.0, z) for t, z in [(0, 1.0), (300, 6.0), (600, 6.0)]] == [None] * 3
    off = ShortWindow(params.model_copy(update={"burst_window_z": 0.0}))
    assert [off.push(t, 1.0, 8.0) for t in (0.0, 300.0, 600.0)] == [None] * 3


def test_burst_watch_adds_up_a_rise_and_says_when_the_flow_came_back() -> None:
    params = DetectionParams(burst_k=2.5, burst_h=7.0, burst_window_z=0.0)  # the CUSUM alone
    rise = BurstWatch(params)
    # 5 σ a reading adds 2.5 to the CUSUM: over 7 at the third reading of the rise.
    alarms = [rise.alarms(rise.push(300.0 * i, 0.5, z)) for i, z in enumerate([0.5, 5, 5, 5])]
    assert alarms == [False, False, False, True]
    assert rise.start_s == 300.0  # the first reading above the allowance
    assert rise.excess_m3h == pytest.approx(0.5)
    assert rise.confidence == pytest.approx(7.5 / 14)
    # Open, then back to normal: the second CUSUM adds 0.5 − z a reading.
    assert [rise.came_back(z) for z in (3.0, 0.0, -3.0, -3.0)] == [False, False, False, True]
    rise.reset()
    assert (rise.cusum, rise.start_s) == (0.0, 0.0)


def test_burst_watch_takes_the_start_and_size_of_a_short_window_that_alarms_first() -> None:
    rise = BurstWatch(DetectionParams(burst_window_n=3, burst_window_z=11.5))
    readings = [(0.0, 1.0, 4.0), (300.0, 1.2, 4.0), (600.0, 1.4, 4.0)]
    alarms = [rise.alarms(rise.push(*r)) for r in readings]
    assert alarms == [False, False, True]  # the CUSUM is at 4.5, under 7
    assert rise.start_s == 0.0
    assert rise.excess_m3h == pytest.approx(1.2)
