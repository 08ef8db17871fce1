"""Local detection behind the :class:`Detector` Protocol.

The implementation is :class:`leaksense.edge.detection.engine.DetectionEngine`
(per-sensor and per-DMA models, see docs/detection.md); tests may plug in others.
"""

from __future__ import annotations

from typing import Protocol

from leaksense.core.messages import Alert


class Detector(Protocol):
    """Sees every reading in arrival order; returns new and updated alerts.

    Values, not a ``Reading``: the intake's hot path builds no object per message.
    """

    def observe_values(
        self,
        sensor_id: str,
        epoch_s: float,
        flow_m3h: float,
        index_m3: float | None = None,
        received_s: float | None = None,
    ) -> list[Alert]:
        """``received_s``: when the gateway received the reading (its clock is
        checked against the sensor's), None for replayed data."""
        ...
