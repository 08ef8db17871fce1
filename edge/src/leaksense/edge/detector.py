"""Local detection behind the :class:`Detector` Protocol.

:class:`ThresholdDetector` is the placeholder: it opens one event when a sensor's
flow rises above its ceiling and closes it when the flow falls back, so an ongoing
excess raises one alert, not one per reading. The learned models replace it.
"""

from __future__ import annotations

from typing import Protocol

from leaksense.core.messages import Alert, AlertKind, Reading
from leaksense.edge.config import DetectorConfig


class Detector(Protocol):
    """Sees every reading in arrival order; returns the alerts it raises."""

    def observe(self, reading: Reading) -> list[Alert]: ...


class ThresholdDetector:
    """Alerts when flow exceeds a per-sensor ceiling (m³/h)."""

    def __init__(self, gateway_id: str, config: DetectorConfig) -> None:
        self._gateway_id = gateway_id
        self._config = config
        self._open: set[str] = set()

    def observe(self, reading: Reading) -> list[Alert]:
        ceiling_m3h = self._config.max_flow_m3h.get(
            reading.sensor_id, self._config.default_max_flow_m3h
        )
        sensor = reading.sensor_id
        if reading.flow_m3h <= ceiling_m3h:
            self._open.discard(sensor)
            return []
        if sensor in self._open:
            return []
        self._open.add(sensor)
        excess_m3h = reading.flow_m3h - ceiling_m3h
        return [
            Alert(
                alert_id=f"{self._gateway_id}:{sensor}:{int(reading.time.timestamp())}",
                sensor_id=sensor,
                kind=AlertKind.HIGH_FLOW,
                started_at=reading.time,
                detected_at=reading.time,
                flow_m3h=excess_m3h,
                explanation_en=(
                    f"flow {reading.flow_m3h:.2f} m³/h above the {ceiling_m3h:.2f} m³/h ceiling"
                ),
                explanation_fr=(
                    f"débit de {reading.flow_m3h:.2f} m³/h au-dessus du plafond de"
                    f" {ceiling_m3h:.2f} m³/h"
                ),
            )
        ]
