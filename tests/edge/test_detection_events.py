"""Events of different kinds on one series do not block or echo each other
(regressions found by the evaluation, docs/detection.md)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from flows import PARIS, night_mean, series
from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.engine import DetectionEngine, DmaMeters, EngineSettings
from leaksense.edge.detection.series import SeriesDetector

DAY = 86_400
STEP_S = 300
LEAK_KINDS = {AlertKind.BURST, AlertKind.BACKGROUND_LEAK, AlertKind.CONTINUOUS_FLOW}


def run(epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64]) -> list[Alert]:
    detector = SeriesDetector(
        "s1", gateway_id="gw", clock=LocalClock(holidays=[date(2026, 4, 6)]), warmup_s=14 * DAY
    )
    alerts: list[Alert] = []
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        alerts += detector.observe(t, y)
    return alerts


def first(alerts: list[Alert]) -> list[Alert]:
    seen: dict[str, Alert] = {}
    for alert in alerts:
        if alert.kind in LEAK_KINDS:
            seen.setdefault(alert.alert_id, alert)
    return list(seen.values())


def test_an_open_lasting_leak_does_not_block_a_burst() -> None:
    epoch, flow = series(32)
    flow[17 * DAY // STEP_S :] += 0.3 * night_mean(epoch, flow)  # a leak from day 17
    burst_at = int(27.5 * DAY // STEP_S)  # day 27, midday
    flow[burst_at:] += 0.2 * flow.mean()
    events = first(run(epoch, flow))
    assert len(events) == 2
    assert events[0].detected_at.timestamp() < epoch[burst_at]
    assert events[1].kind is AlertKind.BURST
    delay_s = events[1].detected_at.timestamp() - epoch[burst_at]
    assert 0 <= delay_s <= 15 * 60


def test_a_repaired_night_burst_leaves_no_background_leak_behind() -> None:
    epoch, flow = series(24)
    start = 18 * DAY // STEP_S + 12  # day 18, about 01:00 local
    flow[start : start + 8 * 12] += 0.5 * flow.mean()  # 8 h, repaired at dawn
    events = first(run(epoch, flow))
    assert [a.kind for a in events] == [AlertKind.BURST]


def test_a_burst_never_repaired_stays_one_event() -> None:
    epoch, flow = series(26)
    start = int(16.5 * DAY // STEP_S)
    flow[start:] += 0.3 * flow.mean()
    alerts = run(epoch, flow)
    events = first(alerts)
    assert [a.kind for a in events] == [AlertKind.BURST]
    updates = [a for a in alerts if a.alert_id == events[0].alert_id]
    assert updates[-1].ended_at is None
    assert updates[-1].lost_volume_m3 > updates[0].lost_volume_m3


def run_dma(inlet: npt.NDArray[np.float64], outlet: npt.NDArray[np.float64]) -> list[Alert]:
    epoch, _ = series(1)
    epoch = epoch[0] + STEP_S * np.arange(inlet.size, dtype=np.float64)
    settings = EngineSettings(warmup_days=14, dmas=(DmaMeters("d", ("i",), ("o",)),))
    engine = DetectionEngine("gw", settings)
    alerts: list[Alert] = []
    for t, a, b in zip(epoch.tolist(), inlet.tolist(), outlet.tolist(), strict=True):
        alerts += engine.observe_values("i", t, a)
        alerts += engine.observe_values("o", t, b)
    return alerts


def test_inlet_spikes_in_the_night_raise_no_leak_alert_on_its_dma() -> None:
    _, inlet = series(20)
    _, outlet = series(20, base_m3h=8.0, seed=2)
    for day in (16, 17, 18):
        inlet[day * DAY // STEP_S + 2 * 12] = 6 * inlet.max()  # about 03:00 local
    alerts = run_dma(inlet, outlet)
    assert first(alerts) == []
    assert any(a.fault == "spike" for a in alerts)


def test_a_stuck_inlet_raises_no_leak_alert_on_its_dma() -> None:
    epoch, inlet = series(20)
    _, outlet = series(20, base_m3h=8.0, seed=2)
    stuck_at = 16 * DAY // STEP_S + 20 * 12  # day 16, about 21:00 local: evening peak
    inlet[stuck_at : stuck_at + 8 * 12] = inlet[stuck_at]  # frozen for 8 h
    settings = EngineSettings(warmup_days=14, dmas=(DmaMeters("d", ("i",), ("o",)),))
    engine = DetectionEngine("gw", settings)
    alerts: list[Alert] = []
    for t, a, b in zip(epoch.tolist(), inlet.tolist(), outlet.tolist(), strict=True):
        alerts += engine.observe_values("i", t, a)
        alerts += engine.observe_values("o", t, b)
    assert first(alerts) == []
    faults = {(a.sensor_id, a.fault) for a in alerts if a.kind is AlertKind.SENSOR_FAULT}
    assert ("i", "flatline") in faults


def test_a_dma_fed_by_one_meter_alerts_once_under_its_own_name() -> None:
    epoch, flow = series(20)
    burst_at = int(17.5 * DAY // STEP_S)  # day 17, midday
    flow[burst_at:] += 0.3 * flow.mean()
    flow[int(18.5 * DAY // STEP_S)] = -1.0  # and an impossible value a day later
    engine = DetectionEngine("gw", EngineSettings(dmas=(DmaMeters("d", ("i",)),)))
    alerts: list[Alert] = []
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        alerts += engine.observe_values("i", t, y)
    # The DMA's net inflow is the meter's flow: the burst is one event, the DMA's.
    assert [(a.dma_id, a.sensor_id, a.kind) for a in first(alerts)] == [
        ("d", None, AlertKind.BURST)
    ]
    # The meter's own health is still the meter's.
    faults = {(a.sensor_id, a.fault) for a in alerts if a.kind is AlertKind.SENSOR_FAULT}
    assert ("i", "impossible_value") in faults
    burst = first(alerts)[0]
    assert 0 <= burst.detected_at.timestamp() - epoch[burst_at] <= 15 * 60


def local_hours(epoch: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.array([datetime.fromtimestamp(float(t), PARIS).hour for t in epoch])


def test_a_watering_pattern_that_opened_a_burst_is_expected_on_the_next_evenings() -> None:
    epoch, flow = series(24)
    hours = local_hours(epoch)
    evenings = (epoch >= epoch[0] + 17 * DAY) & (hours >= 20) & (hours < 23)
    flow[evenings] += 0.5 * flow.mean()  # gardens watered every evening from day 17
    bursts = [a for a in first(run(epoch, flow)) if a.kind is AlertKind.BURST]
    # The first evening may alarm; the pattern is learnt during that alert, so the
    # following six evenings do not.
    assert len(bursts) <= 1


def test_a_burst_left_open_beside_a_lasting_leak_hands_its_flow_over() -> None:
    epoch, flow = series(31)
    leak_m3h = 0.3 * night_mean(epoch, flow)
    flow[17 * DAY // STEP_S :] += leak_m3h  # a leak from day 17 (a burst, then lasting)
    burst_at = int(27.5 * DAY // STEP_S)
    burst_m3h = 0.2 * flow.mean()
    flow[burst_at:] += burst_m3h  # never repaired
    alerts = run(epoch, flow)
    events = first(alerts)
    assert [a.kind for a in events] == [AlertKind.BURST, AlertKind.BURST]
    leak, burst = events
    burst_end = [a for a in alerts if a.alert_id == burst.alert_id][-1]
    assert burst_end.ended_at is not None  # closed after burst_max_h, CUSUM freed
    assert burst_end.ended_at.timestamp() - epoch[burst_at] <= 26 * 3600
    leak_now = [a for a in alerts if a.alert_id == leak.alert_id][-1]
    assert leak_now.ended_at is None
    assert leak_now.flow_m3h >= leak_m3h + 0.5 * burst_m3h  # it took the burst's flow


def test_a_second_leak_beside_an_open_one_is_a_new_alert_when_asked() -> None:
    epoch, flow = series(28)
    night_m3h = night_mean(epoch, flow)
    flow[17 * DAY // STEP_S :] += 0.3 * night_m3h  # a leak from day 17
    flow[24 * DAY // STEP_S :] += 0.15 * night_m3h  # and another from day 24

    def leaks(params: DetectionParams) -> list[Alert]:
        detector = SeriesDetector("s1", gateway_id="gw", clock=LocalClock(), params=params)
        alerts: list[Alert] = []
        for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
            alerts += detector.observe(t, y)
        return first(alerts)

    assert len(leaks(DetectionParams())) == 1  # by default the open alert is updated
    second = leaks(DetectionParams(night_jump_z=4.0))
    assert len(second) == 2
    assert second[1].detected_at.timestamp() > epoch[24 * DAY // STEP_S]


def test_a_closed_night_leak_leaves_no_evidence_to_a_new_one() -> None:
    epoch, flow = series(32)
    night_m3h = night_mean(epoch, flow)
    flow[17 * DAY // STEP_S : 20 * DAY // STEP_S] += 0.3 * night_m3h  # repaired on day 20
    flow[23 * DAY // STEP_S :] += 0.04 * night_m3h  # a small leak from day 23
    alerts = run(epoch, flow)
    events = first(alerts)
    assert len(events) == 2
    ended = [a for a in alerts if a.alert_id == events[0].alert_id and a.ended_at is not None]
    assert ended and ended[0].ended_at is not None
    assert ended[0].ended_at.timestamp() < epoch[23 * DAY // STEP_S]
    # The new leak is its own event: its evidence starts with it, not with the old one.
    assert events[1].alert_id != events[0].alert_id
    assert events[1].started_at.timestamp() >= epoch[23 * DAY // STEP_S]
