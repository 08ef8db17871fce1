"""Per-sensor flow ceilings for the threshold detector, fitted from history.

A ceiling is a high quantile of the sensor's observed flow times a margin, so the
placeholder detector stays quiet on normal peaks and speaks on gross excess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import Reading

QUANTILE = 0.999
MARGIN = 1.5
MIN_READINGS = 288
"""One day of 5-minute readings: fewer gives a ceiling that means nothing."""


def fit_ceilings_m3h(
    readings: Iterable[Reading], quantile: float = QUANTILE, margin: float = MARGIN
) -> dict[str, float]:
    """``sensor_id -> ceiling (m³/h)`` for every sensor with enough history."""
    if not 0.5 <= quantile < 1 or margin < 1:
        raise InvalidInput("quantile must be in [0.5, 1) and margin >= 1")
    flows: dict[str, list[float]] = defaultdict(list)
    for reading in readings:
        flows[reading.sensor_id].append(reading.flow_m3h)
    ceilings = {}
    for sensor_id, values in sorted(flows.items()):
        if len(values) < MIN_READINGS:
            continue
        peak = float(np.quantile(np.asarray(values), quantile))
        ceilings[sensor_id] = round(max(peak, 0.0) * margin, 4) or 0.001
    return ceilings
