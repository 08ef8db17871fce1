"""How big a burst is against the noise of the readings that must reveal it.

A burst's *signal-to-noise ratio* is its flow divided by σ, the short-term noise of
one reading of its DMA's net-inflow series at the local hour the burst starts. σ is
measured on the warm-up readings, independently of any detector: from second
differences ``x[t] − (x[t−1] + x[t+1]) / 2``, which cancel the slow demand curve
(σ = robust spread ÷ √1.5). It says which bursts any detector can find within 15
minutes at an affordable false-alarm rate (docs/detection.md, "What limits bursts").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.fit import calendar
from leaksense.edge.detection.stats import robust_sigma
from leaksense.models.evaluation.build import LabelledLeak

FloatArray = npt.NDArray[np.float64]
SECOND_DIFFERENCE_SCALE = math.sqrt(1.5)
"""σ of ``x[t] − (x[t−1] + x[t+1]) / 2`` for white noise of σ = 1."""
MIN_SAMPLES = 12


def hour_noise_m3h(t: FloatArray, y: FloatArray, clock: LocalClock, hour: int) -> float | None:
    """Short-term σ of one reading at a local hour, from consecutive readings."""
    if y.size < 3:
        return None
    d = y[1:-1] - (y[:-2] + y[2:]) / 2
    step = np.diff(t)
    regular = np.abs(step[1:] - step[:-1]) < 1.0  # three evenly spaced readings
    _, _, _, hours = calendar(clock, t[1:-1])
    d = d[regular & (hours == hour)]
    if d.size < MIN_SAMPLES:
        return None
    sigma = robust_sigma(d) / SECOND_DIFFERENCE_SCALE
    return sigma if sigma > 0 else None


def burst_snr(
    leaks: tuple[LabelledLeak, ...],
    columns: Mapping[str, tuple[FloatArray, FloatArray]],
    clock: LocalClock,
    warmup_end_s: float,
) -> dict[str, float]:
    """``leak id -> flow ÷ σ per reading`` for every burst whose σ can be measured."""
    out = {}
    for leak in leaks:
        if leak.kind != "burst" or leak.dma_id not in columns:
            continue
        t, y = columns[leak.dma_id]
        warm = t < warmup_end_s
        hour = int(calendar(clock, np.asarray([leak.start_s]))[3][0])
        sigma = hour_noise_m3h(t[warm], y[warm], clock, hour)
        if sigma is not None:
            out[leak.leak_id] = leak.flow_at(leak.start_s) / sigma
    return out
