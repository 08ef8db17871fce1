"""The words of a notification, in French then English, and its webhook JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from leaksense.server.workflow.service import AlertView

KIND_LABELS: Final[dict[str, tuple[str, str]]] = {
    "burst": ("Casse", "Burst"),
    "background_leak": ("Fuite diffuse", "Background leak"),
    "continuous_flow": ("Débit continu", "Continuous flow"),
    "high_flow": ("Débit élevé", "High flow"),
    "sensor_fault": ("Défaut de capteur", "Sensor fault"),
}
EVENT_LABELS: Final[dict[str, tuple[str, str]]] = {
    "opened": ("Nouvelle alerte", "New alert"),
    "escalated": ("Alerte non prise en compte", "Alert not acknowledged"),
    "reopened": ("Alerte rouverte", "Alert reopened"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body_text: str
    payload: dict[str, Any]


ALERT_PAGE: Final = "/dashboard/alerts/"
"""Where the dashboard shows one alert (``dashboard/routes_alerts.py``)."""


def alert_link(base_url: str, alert_id: str) -> str:
    return f"{base_url}{ALERT_PAGE}{quote(alert_id, safe='')}"


def render(alert: AlertView, event: str, level: int, base_url: str) -> Rendered:
    """Subject, bilingual body (where, how big, since when, link) and webhook payload."""
    kind_fr, kind_en = KIND_LABELS.get(alert.kind, (alert.kind, alert.kind))
    event_fr, event_en = EVENT_LABELS[event]
    where = _where(alert)
    link = alert_link(base_url, alert.alert_id)
    since = f"{alert.started_at:%Y-%m-%d %H:%M} UTC"
    flow = f"{alert.flow_m3h:.2f} m³/h"
    lost = f"{alert.lost_volume_m3:.1f} m³"
    subject = f"[Leaksense] {kind_fr} / {kind_en} — {where} — {flow}"
    escalation_fr = f" (relance n° {level})" if event == "escalated" else ""
    escalation_en = f" (escalation {level})" if event == "escalated" else ""
    body = "\n".join(
        [
            f"{event_fr}{escalation_fr} : {kind_fr.lower()} sur {where}.",
            f"Débit estimé : {flow}, volume perdu : {lost}, depuis le {since}.",
            alert.explanation_fr,
            f"Voir et prendre en compte : {link}",
            "",
            "—",
            "",
            f"{event_en}{escalation_en}: {kind_en.lower()} at {where}.",
            f"Estimated flow: {flow}, lost volume: {lost}, since {since}.",
            alert.explanation_en,
            f"View and acknowledge: {link}",
        ]
    )
    payload = {
        "event": event,
        "escalation_level": level,
        "alert": {**alert.to_json(), "notes": []},
        "link": link,
        "text_fr": f"{event_fr}{escalation_fr} : {kind_fr} sur {where}, {flow}. {link}",
        "text_en": f"{event_en}{escalation_en}: {kind_en} at {where}, {flow}. {link}",
    }
    return Rendered(subject, body, payload)


def _where(alert: AlertView) -> str:
    if alert.sensor_id and alert.dma_id:
        return f"{alert.sensor_id} ({alert.dma_id})"
    return alert.sensor_id or alert.dma_id or alert.gateway_id
