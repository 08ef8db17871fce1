"""The bursts' signal-to-noise ratio sees reading noise, not the demand curve."""

from __future__ import annotations

import numpy as np
import pytest

from leaksense.edge.detection.clock import LocalClock
from leaksense.models.evaluation.build import LabelledLeak
from leaksense.models.evaluation.snr import burst_snr, hour_noise_m3h

DAY = 86_400.0
STEP_S = 300.0


def _series(sigma_m3h: float, days: int = 14) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    t = 1_767_225_600.0 + np.arange(0.0, days * DAY, STEP_S)  # 2026-01-01 UTC
    curve = 20.0 + 8.0 * np.sin(2 * np.pi * (t % DAY) / DAY)  # a steep daily curve
    return t, curve + rng.normal(0.0, sigma_m3h, t.size)


def test_noise_of_one_reading_ignores_the_daily_curve() -> None:
    t, y = _series(0.5)
    sigma = hour_noise_m3h(t, y, LocalClock("UTC"), hour=9)
    assert sigma == pytest.approx(0.5, rel=0.15)


def test_an_hour_without_enough_regular_readings_has_no_noise_figure() -> None:
    t, y = _series(0.5, days=1)
    assert hour_noise_m3h(t[::2][:5], y[::2][:5], LocalClock("UTC"), hour=0) is None


def test_burst_snr_is_its_flow_over_the_noise_of_its_dma() -> None:
    t, y = _series(0.5)
    mean = float(y.mean())
    burst = LabelledLeak(
        leak_id="b1",
        kind="burst",
        size=20,
        dma_id="dma-x",
        start_s=float(t[-1] + DAY + 9 * 3600),
        end_s=float(t[-1] + 2 * DAY),
        deadline_s=float(t[-1] + DAY + 9 * 3600 + 900),
        night_flow_m3h=10.0,
        mean_flow_m3h=mean,
    )
    snr = burst_snr((burst,), {"dma-x": (t, y)}, LocalClock("UTC"), float(t[-1] + 1))
    assert snr["b1"] == pytest.approx(0.2 * mean / 0.5, rel=0.15)
    assert burst_snr((burst,), {}, LocalClock("UTC"), float(t[-1])) == {}
