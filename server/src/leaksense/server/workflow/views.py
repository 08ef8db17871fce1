"""What the workflow shows of an alert: plain frozen values built from the database
rows, shared by the API, the dashboard and the notifications."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from leaksense.server.db import AlertRecord
from leaksense.server.workflow.models import AlertWorkflow


@dataclass(frozen=True, slots=True)
class NoteView:
    created_at: datetime
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with its workflow; ``notes`` is filled by :func:`get_alert` only."""

    alert_id: str
    gateway_id: str
    sensor_id: str | None
    dma_id: str | None
    kind: str
    fault: str | None
    state: str
    started_at: datetime
    detected_at: datetime
    updated_at: datetime | None
    ended_at: datetime | None
    received_at: datetime
    flow_m3h: float
    lost_volume_m3: float
    confidence: float
    explanation_en: str
    explanation_fr: str
    assignee: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    repaired_flow_m3h: float | None = None
    escalation_level: int = -1
    """-1: nobody notified yet; 0: the first on-call person; n: escalated n times."""
    reopened_count: int = 0
    notes: tuple[NoteView, ...] = ()
    same_event_as: str | None = None
    """The first alert of the event this one belongs to (another series saw it first)."""
    also_seen: tuple[str, ...] = ()
    """Alerts of other series that joined this one's event (:func:`get_alert` only)."""

    @property
    def series_id(self) -> str:
        """The sensor, or the DMA, the alert is about."""
        return self.sensor_id or self.dma_id or ""

    def explanation(self, language: str) -> str:
        """The gateway's explanation in ``fr`` or ``en``."""
        return self.explanation_fr if language == "fr" else self.explanation_en

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (ISO 8601 UTC times)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif name == "also_seen":
                value = list(value)
            elif name == "notes":
                value = [
                    {"created_at": n.created_at.isoformat(), "author": n.author, "text": n.text}
                    for n in value
                ]
            out[name] = value
        return out


def alert_view(
    a: AlertRecord,
    w: AlertWorkflow | None,
    notes: tuple[NoteView, ...] = (),
    same_event_as: str | None = None,
) -> AlertView:
    """The view of an alert record and its workflow row (None: never touched)."""
    base = AlertView(
        alert_id=a.alert_id,
        gateway_id=a.gateway_id,
        sensor_id=a.sensor_id,
        dma_id=a.dma_id,
        kind=a.kind,
        fault=a.fault,
        state=a.state,
        started_at=a.started_at,
        detected_at=a.detected_at,
        updated_at=a.updated_at,
        ended_at=a.ended_at,
        received_at=a.received_at,
        flow_m3h=a.flow_m3h,
        lost_volume_m3=a.lost_volume_m3,
        confidence=a.confidence,
        explanation_en=a.explanation_en,
        explanation_fr=a.explanation_fr,
        notes=notes,
        same_event_as=same_event_as,
    )
    if w is None:
        return base
    return replace(
        base,
        assignee=w.assignee,
        acknowledged_at=w.acknowledged_at,
        acknowledged_by=w.acknowledged_by,
        resolved_at=w.resolved_at,
        resolved_by=w.resolved_by,
        resolution=w.resolution,
        repaired_flow_m3h=w.repaired_flow_m3h,
        escalation_level=w.escalation_level,
        reopened_count=w.reopened_count,
    )
