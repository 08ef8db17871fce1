"""The step test (step.py): the last readings against the readings just before them."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from flows import busy_days_series, series
from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.fit import fit_artifact
from leaksense.edge.detection.series import SeriesDetector
from leaksense.edge.detection.step import StepTest, step_differences

PARAMS = DetectionParams(burst_step_z=5.0, burst_step_n=2, burst_step_before_n=6)
DAY = 86_400


Alarm = tuple[float, float] | None


def push_all(test: StepTest, excess: list[float], z: list[float]) -> list[Alarm]:
    """Readings 5 minutes apart, the step statistic's σ being 1 m³/h."""
    pairs = enumerate(zip(excess, z, strict=True))
    return [test.push(300.0 * i, e, zz, 1.0) for i, (e, zz) in pairs]


def test_a_step_alarms_once_the_two_readings_after_the_skipped_one_are_up() -> None:
    test = StepTest(PARAMS, 300.0)
    # Six quiet readings, the one the burst started in (half up), then two full ones.
    out = push_all(test, [0.0] * 6 + [3.0, 6.0, 6.0], [0.0] * 6 + [1.5, 3.0, 3.0])
    assert out[:-1] == [None] * 8
    assert out[-1] == (1800.0, 6.0)  # starts at the skipped reading; mean of the last two


def test_a_rise_back_from_a_dip_is_no_step() -> None:
    # 2 − (−4) = 6 σ, but only the part above the expected flow counts: 2 σ.
    out = push_all(StepTest(PARAMS, 300.0), [-4.0] * 7 + [2.0, 2.0], [-2.0] * 7 + [2.0, 2.0])
    assert out == [None] * 9


def test_a_step_is_measured_from_a_reference_that_was_already_up() -> None:
    # Already 3 above the expected: a further 3 is not a 5 σ step, a further 6 is.
    small = push_all(StepTest(PARAMS, 300.0), [3.0] * 7 + [6.0, 6.0], [2.0] * 7 + [4.0, 4.0])
    large = push_all(StepTest(PARAMS, 300.0), [3.0] * 7 + [9.0, 9.0], [2.0] * 7 + [6.0, 6.0])
    assert small[-1] is None
    assert large[-1] == (1800.0, 9.0)


def test_a_gap_or_a_low_reading_or_no_sigma_makes_no_step() -> None:
    test = StepTest(PARAMS, 300.0)
    readings = [(300.0 * i, 0.0, 0.0) for i in range(6)] + [(3600.0, 6.0, 3.0)]
    readings += [(3900.0, 6.0, 3.0), (4200.0, 6.0, 3.0)]  # after a 35-minute gap
    assert [test.push(t, e, z, 1.0) for t, e, z in readings] == [None] * 9
    # Both readings must be up in plain σ too (burst_window_min_z), and σ known.
    low = push_all(StepTest(PARAMS, 300.0), [0.0] * 7 + [6.0, 6.0], [0.0] * 7 + [1.0, 3.0])
    assert low[-1] is None
    unknown = StepTest(PARAMS, 300.0)
    assert [unknown.push(300.0 * i, 6.0 * (i > 6), 3.0, None) for i in range(9)] == [None] * 9
    off = StepTest(PARAMS.model_copy(update={"burst_step_z": 0.0}), 300.0)
    assert push_all(off, [0.0] * 7 + [9.0, 9.0], [0.0] * 7 + [6.0, 6.0])[-1] is None


def test_step_differences_skip_one_reading_and_irregular_windows() -> None:
    epoch = 300.0 * np.arange(12, dtype=np.float64)
    epoch[11] += 900.0  # the last reading comes after a gap
    residual = np.arange(12, dtype=np.float64) ** 2
    d, index = step_differences(epoch, residual, 300.0, 2, 6)
    assert index.tolist() == [8, 9, 10]
    expected = [residual[i - 1 : i + 1].mean() - residual[i - 8 : i - 2].mean() for i in (8, 9, 10)]
    assert d == pytest.approx(expected)


def test_the_step_sigma_leaves_out_what_the_profile_gets_wrong_for_a_day() -> None:
    # Each day busier or quieter by a shared factor: the residual σ carries it, the
    # step from one half hour to the next does not.
    def ratio(epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64]) -> float:
        artifact = fit_artifact("s1", epoch, flow, LocalClock())
        assert artifact.step_sigma_m3h is not None
        assert len(artifact.step_sigma_m3h) == 24
        step, plain = np.asarray(artifact.step_sigma_m3h), np.asarray(artifact.sigma_m3h)
        return float(np.median(step / plain))

    busy = ratio(*busy_days_series(15)[:2])
    steady = ratio(*series(15, seed=5, noise=0.01))
    assert busy < steady - 0.1


def detect(
    epoch: npt.NDArray[np.float64], flow: npt.NDArray[np.float64], params: DetectionParams
) -> list[Alert]:
    detector = SeriesDetector(
        "s1",
        gateway_id="gw",
        clock=LocalClock(holidays=[date(2026, 4, 6)]),
        warmup_s=14 * DAY,
        params=params,
    )
    alerts: list[Alert] = []
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        alerts += detector.observe(t, y)
    return alerts


@pytest.mark.parametrize(("rise_sigma", "interval_s"), [(4.5, 300), (5.0, 300), (6.0, 900)])
def test_a_burst_starting_late_in_a_reading_is_alerted_one_reading_earlier_by_the_step_test(
    rise_sigma: float, interval_s: int
) -> None:
    # The detector is set up for 5-minute readings; a 15-minute meter's artifact says
    # its own interval, which the step test then follows. (The σ here is the probe's,
    # a little under the detector's own at 15 minutes: hence 6 σ.)
    epoch, flow = series(24, interval_s=interval_s)
    start = int(20.5 * DAY / interval_s)
    probe = fit_artifact("s1", epoch[:start], flow[:start], LocalClock())
    hour = LocalClock().locate(float(epoch[start]))[3]
    rise = rise_sigma * probe.sigma_m3h[hour]
    flow[start] += 0.2 * rise  # the burst began late in this reading's interval
    flow[start + 1 :] += rise
    began_s = float(epoch[start]) - 0.2 * interval_s

    def delay_s(params: DetectionParams) -> float:
        bursts = {a.alert_id: a for a in detect(epoch, flow, params) if a.kind == AlertKind.BURST}
        assert len(bursts) == 1
        return min(a.detected_at.timestamp() for a in bursts.values()) - began_s

    base = DetectionParams(burst_min_fraction=0.0)  # a steady meter: 4 σ is under 10 %
    with_step = delay_s(base.model_copy(update={"burst_step_z": 5.0}))
    without = delay_s(base.model_copy(update={"burst_step_z": 0.0}))
    # Two whole readings after the one it began in (at 5 minutes: within 15 minutes).
    assert with_step <= 2.2 * interval_s < without
