"""Continuous flow at a customer's meter: water that never stops is a leak behind it.

A household's meter rests most of the time; a run of readings that never fall to
``zero_flow_m3h`` for ``continuous_flow_h`` hours (24) opens a continuous-flow
alert at the run's smallest flow (what leaks under the household's use), updated
while the run lasts and closed by the first reading at rest.
"""

from __future__ import annotations

import math

from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection import texts
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.events import EventBook

CONTINUOUS = "continuous"
CONFIDENCE = 0.8


class ContinuousFlow:
    """The current run of non-zero readings of one customer's meter."""

    __slots__ = ("_book", "_run_min", "_run_start_s")

    def __init__(self, book: EventBook) -> None:
        self._book = book
        self._run_start_s: float | None = None
        self._run_min = math.inf

    def observe(self, epoch_s: float, flow: float, params: DetectionParams) -> Alert | None:
        """Feed a healthy reading; an alert when the event opens, is re-sent or ends."""
        book = self._book
        if flow <= params.zero_flow_m3h:
            self._run_start_s, self._run_min = None, math.inf
            return book.close(CONTINUOUS, epoch_s)
        if self._run_start_s is None:
            self._run_start_s = epoch_s
        self._run_min = min(self._run_min, flow)
        hours = (epoch_s - self._run_start_s) / 3600
        if hours < params.continuous_flow_h:
            return None
        msg = texts.continuous(self._run_min, hours)
        if book.get(CONTINUOUS) is not None:
            return book.update(CONTINUOUS, epoch_s, self._run_min, CONFIDENCE, msg)
        return book.open(
            CONTINUOUS,
            AlertKind.CONTINUOUS_FLOW,
            started_s=self._run_start_s,
            now_s=epoch_s,
            flow_m3h=self._run_min,
            confidence=CONFIDENCE,
            texts=msg,
        )
