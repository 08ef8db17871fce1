"""A sensor's clock checked against the gateway's (skew.py, series.py, gateway.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from leaksense.core.messages import AlertKind, FaultKind
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.series import SeriesDetector
from leaksense.edge.detection.skew import SkewWatch

MIN = 60.0


def test_a_reading_from_the_future_is_judged_at_once() -> None:
    watch = SkewWatch(300.0, 300.0)
    assert watch.observe(1000.0, 1000.0 + 2.0) is None
    assert watch.observe(1300.0 + 3600.0, 1300.0) == 3600.0  # stamped an hour ahead


def test_a_backlog_with_fresh_readings_is_no_clock_fault() -> None:
    watch = SkewWatch(300.0, 300.0)
    verdicts = []
    for i in range(24):  # every 5 min for 2 h: a 6-hour-old backlog, then live readings
        received = 300.0 * i
        stamped = received - (6 * 3600.0 if i % 2 else 1.0)
        verdicts.append(watch.observe(stamped, received))
    assert verdicts == [None] * 24


def test_a_clock_late_on_every_reading_for_an_hour_is_a_fault_until_it_is_set() -> None:
    watch = SkewWatch(300.0, 300.0)
    late = [watch.observe(300.0 * i - 15 * MIN, 300.0 * i) for i in range(13)]
    assert late[:12] == [None] * 12  # judged once a whole hour has been seen
    assert late[12] == -15 * MIN
    fixed = [watch.observe(300.0 * i, 300.0 * i) for i in range(13, 26)]
    assert fixed[-2] == -15 * MIN and fixed[-1] is None


def test_a_drifting_sensor_clock_raises_one_sensor_fault_and_no_leak() -> None:
    series = SeriesDetector("m1", gateway_id="gw", clock=LocalClock(), warmup_s=3 * 86_400)
    start = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    alerts = []
    for i in range(20 * 288):  # 20 days every 5 min; the clock loses 60 s a day from day 5
        received = start + 300.0 * i
        drift_s = max(0.0, (received - start) / 86_400 - 5) * 60
        alerts += series.observe(received - drift_s, 10.0 + (i % 7) * 0.1, None, received)
    faults = {a.alert_id: a for a in alerts if a.kind is AlertKind.SENSOR_FAULT}
    assert [a.fault for a in faults.values()] == [FaultKind.CLOCK]
    first = next(a for a in alerts if a.kind is AlertKind.SENSOR_FAULT)
    assert "behind the gateway" in first.explanation_en
    assert 15 <= (first.detected_at.timestamp() - start) / 86_400 <= 16.1  # 10 min late
    assert [a for a in alerts if a.kind is not AlertKind.SENSOR_FAULT] == []
