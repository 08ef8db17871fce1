"""How many false alarms make a series how much less sensitive (pure).

Each ``false_alarm`` resolution of a series' alerts in the last :data:`WINDOW_DAYS`
days raises its detection thresholds by :data:`STEP_PER_FALSE_ALARM` (10 %), up to
:data:`MAX_MULTIPLIER` (×2, reached at 10 false alarms)::

    threshold_multiplier = min(2.0, 1.0 + 0.1 × false alarms in the last 90 days)

Bounded so that feedback can never silence a sensor: a burst far above its usual flow
still trips a doubled threshold. The server stores and serves it
(``workflow/feedback.py``); the gateway scales its decision thresholds by it
(``SeriesDetector.set_threshold_multiplier``); the evaluation plays it.
"""

from __future__ import annotations

from typing import Final

WINDOW_DAYS: Final = 90
STEP_PER_FALSE_ALARM: Final = 0.1
MAX_MULTIPLIER: Final = 2.0


def multiplier(false_alarms: int) -> float:
    """The detection threshold multiplier for a count of recent false alarms (1.0..2.0)."""
    return min(MAX_MULTIPLIER, 1.0 + STEP_PER_FALSE_ALARM * max(0, false_alarms))
