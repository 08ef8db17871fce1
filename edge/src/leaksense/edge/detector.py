"""Local detection behind the :class:`Detector` Protocol.

The implementation is :class:`leaksense.edge.detection.engine.DetectionEngine`
(per-sensor and per-DMA models, see docs/detection.md); tests may plug in others.
"""

from __future__ import annotations

from typing import Protocol

from leaksense.core.messages import Alert, Reading


class Detector(Protocol):
    """Sees every reading in arrival order; returns new and updated alerts."""

    def observe(self, reading: Reading) -> list[Alert]: ...
