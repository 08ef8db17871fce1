"""The words of a notification, in French then English, and its webhook JSON.

Texts give times in the server's ``display_timezone`` with the zone's abbreviation
(``05/01/2026 04:00 CET``): whoever reads them at 3 a.m. reads local time. The
webhook's ``alert`` object keeps UTC ISO 8601, like the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final
from urllib.parse import quote

from leaksense.server.workflow.views import AlertView

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


def local_time(moment: datetime, zone: tzinfo, lang: str) -> str:
    """``05/01/2026 04:00 CET`` (fr) or ``2026-01-05 04:00 CET`` (en)."""
    local = moment.astimezone(zone)
    return local.strftime("%d/%m/%Y %H:%M %Z" if lang == "fr" else "%Y-%m-%d %H:%M %Z")


def render(alert: AlertView, event: str, level: int, base_url: str, zone: tzinfo = UTC) -> Rendered:
    """Subject, bilingual body (where, how big, since when, link) and webhook payload."""
    kind_fr, kind_en = KIND_LABELS.get(alert.kind, (alert.kind, alert.kind))
    event_fr, event_en = EVENT_LABELS[event]
    where = _where(alert)
    link = alert_link(base_url, alert.alert_id)
    since_fr = local_time(alert.started_at, zone, "fr")
    since_en = local_time(alert.started_at, zone, "en")
    flow = f"{alert.flow_m3h:.2f} m³/h"
    lost = f"{alert.lost_volume_m3:.1f} m³"
    subject = f"[Leaksense] {kind_fr} / {kind_en} — {where} — {flow}"
    escalation_fr = f" (relance n° {level})" if event == "escalated" else ""
    escalation_en = f" (escalation {level})" if event == "escalated" else ""
    body = "\n".join(
        [
            f"{event_fr}{escalation_fr} : {kind_fr.lower()} sur {where}.",
            f"Débit estimé : {flow}, volume perdu : {lost}, depuis le {since_fr}.",
            alert.explanation_fr,
            f"Voir et prendre en compte : {link}",
            "",
            "—",
            "",
            f"{event_en}{escalation_en}: {kind_en.lower()} at {where}.",
            f"Estimated flow: {flow}, lost volume: {lost}, since {since_en}.",
            alert.explanation_en,
            f"View and acknowledge: {link}",
        ]
    )
    payload = {
        "event": event,
        "escalation_level": level,
        "alert": {**alert.to_json(), "notes": []},
        "link": link,
        "text_fr": f"{event_fr}{escalation_fr} : {kind_fr} sur {where}, {flow},"
        f" depuis le {since_fr}. {link}",
        "text_en": f"{event_en}{escalation_en}: {kind_en} at {where}, {flow},"
        f" since {since_en}. {link}",
    }
    return Rendered(subject, body, payload)


def _where(alert: AlertView) -> str:
    if alert.sensor_id and alert.dma_id:
        return f"{alert.sensor_id} ({alert.dma_id})"
    return alert.sensor_id or alert.dma_id or alert.gateway_id
