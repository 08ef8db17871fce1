"""Alert events as the evaluation sees them: one record per event, whoever raised it.

The engine re-sends an open event with fresher figures under the same ``alert_id``;
scoring needs only when it was first raised, on which series, of what kind, and
when it ended. The MNF baseline produces the same records, so both are scored by
the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from leaksense.core.messages import LEAK_KINDS, Alert


@dataclass(slots=True)
class AlertEvent:
    """One alert event (times in Unix seconds; ``ended_s`` None: still open)."""

    alert_id: str
    series_id: str
    kind: str
    fault: str | None
    started_s: float
    detected_s: float
    ended_s: float | None
    flow_m3h: float = 0.0
    """The detector's first estimate of the leak flow (excess, or continuous minimum)."""
    explanation: str = ""

    @property
    def is_leak(self) -> bool:
        return self.kind in LEAK_KINDS


class EventLog:
    """Collects the engine's alerts into events (first sighting, then the end)."""

    def __init__(self) -> None:
        self.events: dict[str, AlertEvent] = {}

    def add(self, alert: Alert, known_s: float | None = None) -> None:
        """Record an alert; ``known_s``: when the gateway had it, the arrival of the
        reading that raised it (its stamp is the start of the interval it measured)."""
        event = self.events.get(alert.alert_id)
        if event is None:
            event = self.events[alert.alert_id] = AlertEvent(
                alert_id=alert.alert_id,
                series_id=alert.dma_id or alert.sensor_id or "",
                kind=alert.kind.value,
                fault=None if alert.fault is None else alert.fault.value,
                started_s=alert.started_at.timestamp(),
                detected_s=alert.detected_at.timestamp() if known_s is None else known_s,
                ended_s=None,
                flow_m3h=alert.flow_m3h,
                explanation=alert.explanation_en,
            )
        if alert.ended_at is not None:
            event.ended_s = alert.ended_at.timestamp()
