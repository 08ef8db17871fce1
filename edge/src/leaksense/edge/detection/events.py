"""One alert per event: open once, update while it lasts, close when it ends.

An ongoing leak does not re-alert: its open event is updated (estimated flow, lost
volume, confidence) and re-sent at most once per ``update_every_s`` or when its flow
estimate moves by more than a fifth, carrying the same ``alert_id``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from leaksense.core.messages import Alert, AlertKind

UPDATE_EVERY_S = 3600.0


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass(slots=True)
class Event:
    alert_id: str
    kind: AlertKind
    fault: str | None
    started_s: float
    detected_s: float
    flow_m3h: float
    lost_volume_m3: float
    confidence: float
    explanation_en: str
    explanation_fr: str
    sent_s: float
    sent_flow_m3h: float
    opened_flow_m3h: float = 0.0
    """The flow estimate it was opened with."""


_OPEN = TypeAdapter(dict[str, Event])
_LAST = TypeAdapter(dict[str, tuple[str, int]])


class EventBook:
    """Open events of one series (a sensor, or a DMA's net inflow)."""

    def __init__(self, gateway_id: str, series_id: str, is_dma: bool) -> None:
        self._prefix = f"{gateway_id}:{series_id}"
        self._series_id = series_id
        self._is_dma = is_dma
        self._open: dict[str, Event] = {}
        self._last: dict[str, tuple[str, int]] = {}  # per key: last base id, its uses

    def get(self, key: str) -> Event | None:
        return self._open.get(key)

    def is_open(self, key: str, alert_id: str) -> bool:
        """Is ``alert_id`` the open event under ``key``?"""
        event = self._open.get(key)
        return event is not None and event.alert_id == alert_id

    def open(
        self,
        key: str,
        kind: AlertKind,
        *,
        started_s: float,
        now_s: float,
        flow_m3h: float,
        confidence: float,
        texts: tuple[str, str],
        fault: str | None = None,
    ) -> Alert:
        event = Event(
            alert_id=self._new_id(key, started_s),
            kind=kind,
            fault=fault,
            started_s=started_s,
            detected_s=now_s,
            flow_m3h=flow_m3h,
            lost_volume_m3=max(0.0, flow_m3h) * (now_s - started_s) / 3600,
            confidence=confidence,
            explanation_en=texts[0],
            explanation_fr=texts[1],
            sent_s=now_s,
            sent_flow_m3h=flow_m3h,
            opened_flow_m3h=flow_m3h,
        )
        self._open[key] = event
        return self._alert(event, now_s, ended=False)

    def snapshot(self) -> dict[str, Any]:
        """The open events (and the last id of each key), as JSON-ready data."""
        open_events = {key: {**asdict(e), "kind": e.kind.value} for key, e in self._open.items()}
        return {"open": open_events, "last": {k: list(v) for k, v in self._last.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        """Take back the events of a :meth:`snapshot` (a gateway's restart): an open
        leak goes on as the same alert, and is closed when it ends.

        Raises ``KeyError`` or ``ValueError`` (pydantic's) on data that is not one.
        """
        restored = _OPEN.validate_python(data["open"])
        last = _LAST.validate_python(data["last"])
        self._open.update(restored)
        self._last.update(last)

    def _new_id(self, key: str, started_s: float) -> str:
        """``gateway:series:key:start``; a new event with the same start as the last
        one of its key (evidence that outlived it) gets ``:r2``, ``:r3``…, or the server
        would take it for the old event, ended or resolved."""
        base = f"{self._prefix}:{key}:{int(started_s)}"
        last, uses = self._last.get(key, ("", 0))
        uses = uses + 1 if base == last else 1
        self._last[key] = (base, uses)
        return base if uses == 1 else f"{base}:r{uses}"

    def update(
        self, key: str, now_s: float, flow_m3h: float, confidence: float, texts: tuple[str, str]
    ) -> Alert | None:
        """Refresh an open event; returns an alert only when worth re-sending."""
        event = self._open[key]
        event.flow_m3h, event.confidence = flow_m3h, confidence
        event.explanation_en, event.explanation_fr = texts
        moved = abs(flow_m3h - event.sent_flow_m3h) > 0.2 * max(abs(event.sent_flow_m3h), 1e-9)
        if now_s - event.sent_s < UPDATE_EVERY_S and not moved:
            return None
        event.sent_s, event.sent_flow_m3h = now_s, flow_m3h
        return self._alert(event, now_s, ended=False)

    def rename(self, key: str, new_key: str) -> None:
        """Let another detector own an open event (same ``alert_id``, same kind)."""
        self._open[new_key] = self._open.pop(key)

    def accrue(self, key: str, dt_s: float) -> None:
        """Add the volume lost over ``dt_s`` at the current flow estimate."""
        event = self._open.get(key)
        if event is not None and event.kind is not AlertKind.SENSOR_FAULT:
            event.lost_volume_m3 += max(0.0, event.flow_m3h) * dt_s / 3600

    def accrue_all(self, dt_s: float) -> None:
        """Add the volume every open leak lost over ``dt_s`` (a gateway's downtime)."""
        for key in self._open:
            self.accrue(key, dt_s)

    def close(self, key: str, now_s: float, texts: tuple[str, str] | None = None) -> Alert | None:
        """End an open event (``texts``: a last explanation, saying why)."""
        event = self._open.pop(key, None)
        if event is None:
            return None
        if texts is not None:
            event.explanation_en, event.explanation_fr = texts
        return self._alert(event, now_s, ended=True)

    def one_shot(
        self,
        key: str,
        kind: AlertKind,
        *,
        started_s: float,
        now_s: float,
        texts: tuple[str, str],
        fault: str | None = None,
    ) -> Alert:
        """An event that starts and ends at once (a gap, a counter reset, a spike)."""
        self.open(
            key,
            kind,
            started_s=started_s,
            now_s=now_s,
            flow_m3h=0.0,
            confidence=1.0,
            texts=texts,
            fault=fault,
        )
        closed = self.close(key, now_s)
        assert closed is not None
        return closed

    def _alert(self, event: Event, now_s: float, *, ended: bool) -> Alert:
        return Alert(
            alert_id=event.alert_id,
            sensor_id=None if self._is_dma else self._series_id,
            dma_id=self._series_id if self._is_dma else None,
            kind=event.kind,
            fault=event.fault,
            started_at=_utc(event.started_s),
            detected_at=_utc(event.detected_s),
            updated_at=_utc(now_s),
            ended_at=_utc(now_s) if ended else None,
            flow_m3h=round(event.flow_m3h, 4),
            lost_volume_m3=round(event.lost_volume_m3, 3),
            confidence=round(min(1.0, max(0.0, event.confidence)), 3),
            explanation_en=event.explanation_en,
            explanation_fr=event.explanation_fr,
        )
