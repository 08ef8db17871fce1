"""Alert explanations in English and French (short, for a technician's phone)."""

from __future__ import annotations

from datetime import UTC, datetime


def _fr(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def _hhmm(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%d/%m %H:%M UTC")


def burst(flow: float, excess: float, expected: float, since_s: float) -> tuple[str, str]:
    return (
        f"flow {flow:.2f} m³/h, {excess:.2f} m³/h above the expected {expected:.2f} m³/h"
        f" since {_hhmm(since_s)}",
        f"débit {_fr(flow)} m³/h, {_fr(excess)} m³/h au-dessus des {_fr(expected)} m³/h"
        f" attendus depuis le {_hhmm(since_s)}",
    )


def night(excess: float, baseline: float, nights: int) -> tuple[str, str]:
    return (
        f"night flow {excess:.2f} m³/h above its {nights}-night level ({baseline:.2f} m³/h)",
        f"débit de nuit supérieur de {_fr(excess)} m³/h à son niveau des {nights} dernières"
        f" nuits ({_fr(baseline)} m³/h)",
    )


def unseen(burst: float, night: float) -> tuple[str, str]:
    return (
        f"closed: the night flow was only {night:.2f} m³/h above its level, not the"
        f" {burst:.2f} m³/h the burst was alerted with (not a leak, or repaired)",
        f"clos : le débit de nuit ne dépassait son niveau que de {_fr(night)} m³/h, pas des"
        f" {_fr(burst)} m³/h signalés pour la rupture (pas une fuite, ou réparée)",
    )


def dismissed(resolution: str, flow: float) -> tuple[str, str]:
    fr = {"false_alarm": "fausse alerte", "sensor_fault": "défaut de capteur"}
    return (
        f"closed: judged {resolution.replace('_', ' ')} by the utility; its {flow:.2f} m³/h"
        " is expected from now on",
        f"clos : jugée {fr.get(resolution, resolution)} par le service ; ses {_fr(flow)} m³/h"
        " sont désormais attendus",
    )


def continuous(minimum: float, hours: float) -> tuple[str, str]:
    return (
        f"flow never below {minimum:.3f} m³/h for {hours:.0f} h (continuous consumption)",
        f"débit jamais inférieur à {_fr(minimum)} m³/h depuis {hours:.0f} h"
        " (consommation continue)",
    )


FAULTS = {
    "impossible_value": ("impossible value {value:.3f} m³/h", "valeur impossible {value} m³/h"),
    "negative_balance": (
        "net inflow {value:.3f} m³/h over the last hour: a meter of this DMA misreads",
        "débit net entrant de {value} m³/h sur la dernière heure : un compteur du secteur"
        " mesure mal",
    ),
    "flatline": (
        "value stuck at {value:.3f} m³/h for {hours:.1f} h",
        "valeur bloquée à {value} m³/h depuis {hours:.1f} h",
    ),
    "dropout": ("no reading for {hours:.1f} h", "aucune mesure pendant {hours:.1f} h"),
    "counter_reset": (
        "meter index went backwards ({value:.3f} m³)",
        "l'index du compteur a reculé ({value} m³)",
    ),
    "clock_ahead": (
        "sensor clock {value:.1f} min ahead of the gateway's",
        "horloge du capteur en avance de {value} min sur la passerelle",
    ),
    "clock_behind": (
        "sensor clock {value:.1f} min behind the gateway's",
        "horloge du capteur en retard de {value} min sur la passerelle",
    ),
    "spike": ("isolated spike to {value:.3f} m³/h", "pic isolé à {value} m³/h"),
}


def fault(kind: str, value: float = 0.0, hours: float = 0.0) -> tuple[str, str]:
    en, fr = FAULTS[kind]
    return en.format(value=value, hours=hours), fr.format(value=_fr(value), hours=hours)
