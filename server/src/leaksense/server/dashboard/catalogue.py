"""French and English texts of the dashboard, and how a request picks its language.

Same pattern as the reports' catalogue (``render/catalogue.py``): one table of
``key → {fr, en}``; templates call ``t("key")``. The language is the ``lang`` cookie
(set by the FR/EN link) if any, else the best of ``Accept-Language``, else French.
"""

from __future__ import annotations

from leaksense.server.render.catalogue import LANGS, Lang

LANG_COOKIE = "leaksense_lang"
DEFAULT_LANG: Lang = "fr"

TEXTS: dict[str, dict[Lang, str]] = {
    # frame
    "app": {"fr": "Leaksense", "en": "Leaksense"},
    "nav_alerts": {"fr": "Alertes", "en": "Alerts"},
    "nav_network": {"fr": "Réseau", "en": "Network"},
    "nav_reports": {"fr": "Rapports", "en": "Reports"},
    "nav_users": {"fr": "Utilisateurs", "en": "Users"},
    "logout": {"fr": "Déconnexion", "en": "Log out"},
    "signed_in_as": {"fr": "Connecté :", "en": "Signed in:"},
    "switch_lang": {"fr": "English", "en": "Français"},
    "times_in": {
        "fr": "Heures locales ({zone}) ; les API JSON restent en UTC.",
        "en": "Local times ({zone}); JSON APIs stay in UTC.",
    },
    # login
    "login_title": {"fr": "Connexion", "en": "Log in"},
    "username": {"fr": "Identifiant", "en": "Username"},
    "password": {"fr": "Mot de passe", "en": "Password"},
    "login": {"fr": "Se connecter", "en": "Log in"},
    "login_failed": {
        "fr": "Identifiant ou mot de passe incorrect.",
        "en": "Wrong username or password.",
    },
    "login_throttled": {
        "fr": "Trop d'essais manqués : réessayez dans {seconds} s.",
        "en": "Too many failed attempts: try again in {seconds} s.",
    },
    "logged_out": {"fr": "Vous êtes déconnecté.", "en": "You are logged out."},
    # errors
    "forbidden_title": {"fr": "Accès refusé", "en": "Access denied"},
    "forbidden": {
        "fr": "Votre rôle ne permet pas cette action.",
        "en": "Your role does not allow this.",
    },
    "csrf_failed": {
        "fr": "Formulaire expiré ou invalide : rechargez la page et recommencez.",
        "en": "Expired or invalid form: reload the page and try again.",
    },
    "not_found_title": {"fr": "Introuvable", "en": "Not found"},
    "error_title": {"fr": "Erreur", "en": "Error"},
    "back": {"fr": "Retour", "en": "Back"},
    # alerts
    "alerts_title": {"fr": "Alertes", "en": "Alerts"},
    "state": {"fr": "État", "en": "State"},
    "dma": {"fr": "Secteur", "en": "DMA"},
    "kind": {"fr": "Type", "en": "Kind"},
    "all": {"fr": "Tous", "en": "All"},
    "filter": {"fr": "Filtrer", "en": "Filter"},
    "no_alerts": {"fr": "Aucune alerte.", "en": "No alerts."},
    "subject": {"fr": "Capteur / secteur", "en": "Sensor / DMA"},
    "detected": {"fr": "Détectée", "en": "Detected"},
    "started": {"fr": "Début estimé", "en": "Estimated start"},
    "ended": {"fr": "Fin", "en": "Ended"},
    "leak_flow": {"fr": "Débit de fuite estimé", "en": "Estimated leak flow"},
    "lost_volume": {"fr": "Volume perdu", "en": "Lost volume"},
    "confidence": {"fr": "Confiance", "en": "Confidence"},
    "explanation": {"fr": "Explication", "en": "Explanation"},
    "assignee": {"fr": "Assignée à", "en": "Assigned to"},
    "nobody": {"fr": "personne", "en": "nobody"},
    "history": {"fr": "Historique", "en": "History"},
    "notes": {"fr": "Notes", "en": "Notes"},
    "chart_title": {"fr": "Débit autour de l'événement", "en": "Flow around the event"},
    "chart_none": {
        "fr": "Pas de mesures autour de l'événement.",
        "en": "No readings around the event.",
    },
    "chart_markers": {
        "fr": "Lignes rouges : début estimé et détection.",
        "en": "Red lines: estimated start and detection.",
    },
    "flow": {"fr": "Débit", "en": "Flow"},
    "acknowledge": {"fr": "Prendre en charge", "en": "Acknowledge"},
    "assign": {"fr": "Assigner", "en": "Assign"},
    "resolve": {"fr": "Clore", "en": "Resolve"},
    "resolution": {"fr": "Résolution", "en": "Resolution"},
    "repaired_flow": {
        "fr": "Débit de la fuite réparée (m³/h, mesuré)",
        "en": "Repaired leak flow (m³/h, measured)",
    },
    "add_note": {"fr": "Ajouter une note", "en": "Add a note"},
    "note_text": {"fr": "Note", "en": "Note"},
    "done": {"fr": "Enregistré.", "en": "Saved."},
    "by": {"fr": "par", "en": "by"},
    # states, kinds, resolutions, roles
    "state_open": {"fr": "ouverte", "en": "open"},
    "state_acknowledged": {"fr": "prise en charge", "en": "acknowledged"},
    "state_resolved": {"fr": "close", "en": "resolved"},
    "kind_high_flow": {"fr": "débit élevé", "en": "high flow"},
    "kind_burst": {"fr": "casse", "en": "burst"},
    "kind_background_leak": {"fr": "fuite de fond", "en": "background leak"},
    "kind_continuous_flow": {"fr": "débit continu", "en": "continuous flow"},
    "kind_sensor_fault": {"fr": "défaut capteur", "en": "sensor fault"},
    "resolution_repaired": {"fr": "réparée", "en": "repaired"},
    "resolution_false_alarm": {"fr": "fausse alerte", "en": "false alarm"},
    "resolution_planned_work": {"fr": "travaux prévus", "en": "planned work"},
    "resolution_sensor_fault": {"fr": "défaut capteur", "en": "sensor fault"},
    "role_technician": {"fr": "technicien", "en": "technician"},
    "role_manager": {"fr": "responsable", "en": "manager"},
    "role_admin": {"fr": "administrateur", "en": "admin"},
    "action_acknowledge": {"fr": "prise en charge", "en": "acknowledged"},
    "action_assign": {"fr": "assignée", "en": "assigned"},
    "action_resolve": {"fr": "close", "en": "resolved"},
    "action_note": {"fr": "note", "en": "note"},
    "action_reopen": {"fr": "rouverte", "en": "reopened"},
    "action_escalate": {"fr": "escalade", "en": "escalated"},
    "action_link": {"fr": "rattachée à un événement", "en": "linked to an event"},
    "same_event_as": {"fr": "Même fuite que", "en": "Same leak as"},
    "also_seen": {"fr": "Aussi vue par", "en": "Also seen by"},
    "verdict_note": {
        "fr": "Fausse alerte ou défaut capteur : la passerelle clôt l'alerte et tient ce débit"
        " pour normal ; seule une hausse au-delà alertera de nouveau, et une série souvent en"
        " fausse alerte devient moins sensible.",
        "en": "False alarm or sensor fault: the gateway closes the alert and takes this flow as"
        " normal; only a further rise alerts again, and a series with many false alarms"
        " becomes less sensitive.",
    },
    "same_event_note": {
        "fr": "Une autre série mesure la même eau : une seule notification, une seule clôture.",
        "en": "Another series carries the same water: one notification, one resolution.",
    },
    # network
    "network_title": {"fr": "Réseau", "en": "Network"},
    "dmas": {"fr": "Secteurs", "en": "DMAs"},
    "sensors": {"fr": "Capteurs", "en": "Sensors"},
    "gateways": {"fr": "Passerelles", "en": "Gateways"},
    "name": {"fr": "Nom", "en": "Name"},
    "role": {"fr": "Rôle", "en": "Role"},
    "last_seen": {"fr": "Dernière donnée", "en": "Last seen"},
    "never": {"fr": "jamais", "en": "never"},
    "open_alerts": {"fr": "Alertes ouvertes", "en": "Open alerts"},
    "health": {"fr": "Santé", "en": "Health"},
    "outbox": {"fr": "File d'envoi", "en": "Outbox"},
    "readings": {"fr": "mesures", "en": "readings"},
    "faults": {"fr": "Anomalies", "en": "Faults"},
    "rejected": {"fr": "messages rejetés", "en": "messages rejected"},
    "dropped": {"fr": "mesures abandonnées", "en": "readings dropped"},
    "clock_jumps": {"fr": "sauts d'horloge", "en": "clock jumps"},
    "oldest_unsent": {"fr": "plus ancienne non envoyée", "en": "oldest unsent"},
    "version": {"fr": "Version", "en": "Version"},
    "uptime": {"fr": "Démarrée depuis", "en": "Uptime"},
    "no_health": {"fr": "aucun rapport de santé", "en": "no health report"},
    "status_ok": {"fr": "OK", "en": "OK"},
    "status_late": {"fr": "en retard", "en": "late"},
    "status_silent": {"fr": "muet", "en": "silent"},
    "hourly_chart": {"fr": "Débit horaire moyen (7 jours)", "en": "Hourly mean flow (7 days)"},
    "dma_chart": {
        "fr": "Débit net entrant du secteur (7 jours)",
        "en": "DMA net inflow (7 days)",
    },
    "days_shown": {"fr": "Jours affichés", "en": "Days shown"},
    # reports
    "reports_title": {"fr": "Rapports", "en": "Reports"},
    "period_start": {"fr": "Du", "en": "From"},
    "period_end": {"fr": "au (exclu)", "en": "to (excluded)"},
    "show": {"fr": "Afficher", "en": "Show"},
    "exports": {"fr": "Exports", "en": "Exports"},
    "printable": {"fr": "Version imprimable", "en": "Printable page"},
    "repairs_report": {"fr": "Réparations avant / après", "en": "Repairs before / after"},
    "no_dmas": {"fr": "Aucun secteur déclaré.", "en": "No DMA declared."},
    "scope_network": {"fr": "Ensemble du réseau", "en": "Whole network"},
    "report_days_utc": {
        "fr": "Les périodes des rapports sont des jours UTC (minuit UTC à minuit UTC).",
        "en": "Report periods are UTC days (UTC midnight to UTC midnight).",
    },
    # users
    "users_title": {"fr": "Utilisateurs", "en": "Users"},
    "display_name": {"fr": "Nom affiché", "en": "Display name"},
    "active": {"fr": "actif", "en": "active"},
    "disabled": {"fr": "désactivé", "en": "disabled"},
    "last_login": {"fr": "Dernière connexion", "en": "Last login"},
    "add_user": {"fr": "Ajouter un utilisateur", "en": "Add a user"},
    "add": {"fr": "Ajouter", "en": "Add"},
    "disable": {"fr": "Désactiver", "en": "Disable"},
    "enable": {"fr": "Réactiver", "en": "Enable"},
    "password_rule": {"fr": "10 caractères au moins", "en": "at least 10 characters"},
    "edit_user": {"fr": "Rôle, mot de passe", "en": "Role, password"},
    "change_role": {"fr": "Changer le rôle", "en": "Change role"},
    "new_password": {"fr": "Nouveau mot de passe", "en": "New password"},
    "reset_password": {"fr": "Réinitialiser le mot de passe", "en": "Reset password"},
    "reset_ends_sessions": {
        "fr": "Un nouveau mot de passe ferme les sessions ouvertes de l'utilisateur.",
        "en": "A new password ends the user's open sessions.",
    },
}


def t(key: str, lang: Lang, **params: object) -> str:
    """The text of ``key`` in ``lang``, with ``{params}`` filled in."""
    text = TEXTS[key][lang]
    return text.format(**params) if params else text


def label_of(prefix: str, value: str | None, lang: Lang) -> str:
    """A coded value (state, kind, role…) in words; an unknown code as it is."""
    if value is None:
        return ""
    row = TEXTS.get(f"{prefix}_{value}")
    return row[lang] if row else value


def parse_accept_language(header: str) -> Lang | None:
    """The supported language the browser prefers (``q`` weights honoured), if any."""
    ranked: list[tuple[float, int, Lang]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        for lang in LANGS:
            if primary == lang and weight > 0:
                ranked.append((-weight, position, lang))
    return min(ranked)[2] if ranked else None


def negotiate(cookie: str | None, accept_language: str | None) -> Lang:
    """The cookie's language, else the browser's, else French."""
    for lang in LANGS:
        if cookie == lang:
            return lang
    return parse_accept_language(accept_language or "") or DEFAULT_LANG
