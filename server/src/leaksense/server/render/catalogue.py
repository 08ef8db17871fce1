"""French and English wording of the reports: labels, notes, consequences, explanations.

A plain table per language (no gettext: two languages, a few dozen strings). Notes
carry a code and parameters (``services/report_model.Note``); :func:`note_text` words them.
Indicator names come from the declarative table ``domain/indicators.INDICATORS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from leaksense.core.errors import InvalidInput
from leaksense.server.domain.indicators import INDICATORS

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"fr": "Rapport d'efficacité du réseau", "en": "Network efficiency report"},
    "repairs_title": {"fr": "Réparations : avant / après", "en": "Repairs: before / after"},
    "period": {"fr": "Période", "en": "Period"},
    "days": {"fr": "jours", "en": "days"},
    "network": {"fr": "Ensemble du réseau", "en": "Whole network"},
    "dma": {"fr": "Secteur", "en": "DMA"},
    "volumes": {"fr": "Volumes", "en": "Volumes"},
    "indicators": {"fr": "Indicateurs", "en": "Indicators"},
    "indicator": {"fr": "Indicateur", "en": "Indicator"},
    "value": {"fr": "Valeur", "en": "Value"},
    "unit": {"fr": "Unité", "en": "Unit"},
    "source": {"fr": "Source", "en": "Source"},
    "completeness": {"fr": "Complétude", "en": "Completeness"},
    "estimated": {"fr": "dont estimé", "en": "of which estimated"},
    "grenelle": {"fr": "Seuil Grenelle II", "en": "Grenelle II threshold"},
    "compliant": {"fr": "conforme", "en": "compliant"},
    "non_compliant": {"fr": "non conforme", "en": "non-compliant"},
    "category": {"fr": "Type de réseau", "en": "Network type"},
    "ilp_class": {"fr": "Classe ILP", "en": "ILP class"},
    "balance": {"fr": "Bilan de l'eau (IWA)", "en": "Water balance (IWA)"},
    "uarl": {"fr": "Pertes inévitables et ILI", "en": "Unavoidable losses and ILI"},
    "night_flow": {"fr": "Débit minimum de nuit", "en": "Minimum night flow"},
    "meters": {"fr": "Compteurs et complétude", "en": "Meters and completeness"},
    "meter": {"fr": "Compteur", "en": "Meter"},
    "role": {"fr": "Rôle", "en": "Role"},
    "hours_measured": {"fr": "Heures mesurées", "en": "Hours measured"},
    "estimated_days": {"fr": "Jours estimés (heures)", "en": "Estimated days (hours)"},
    "billing": {"fr": "Facturation", "en": "Billing"},
    "notes": {"fr": "À savoir", "en": "Notes"},
    "daily_chart": {"fr": "Volumes journaliers et rendement", "en": "Daily volumes and yield"},
    "mnf_chart": {"fr": "Débit minimum de nuit (m³/h)", "en": "Minimum night flow (m³/h)"},
    "intake": {"fr": "Entrée", "en": "Intake"},
    "authorised": {"fr": "Consommé autorisé", "en": "Authorised use"},
    "yield": {"fr": "Rendement", "en": "Yield"},
    "constants": {"fr": "Constantes utilisées", "en": "Constants used"},
    "before": {"fr": "Avant", "en": "Before"},
    "after": {"fr": "Après", "en": "After"},
    "whole_period": {"fr": "Sur la période", "en": "Whole period"},
    "repairs": {"fr": "Fuites réparées", "en": "Leaks repaired"},
    "found": {"fr": "Trouvée", "en": "Found"},
    "repaired": {"fr": "Réparée", "en": "Repaired"},
    "flow": {"fr": "Débit estimé", "en": "Estimated flow"},
    "saved": {"fr": "Économies", "en": "Savings"},
    "why_differ": {
        "fr": "Pourquoi les chiffres journaliers et de période diffèrent",
        "en": "Why the daily and period figures differ",
    },
    "generated": {"fr": "Généré le", "en": "Generated"},
    "metered": {"fr": "compté", "en": "metered"},
    "billed": {"fr": "facturé", "en": "billed"},
    "declared": {"fr": "déclaré", "en": "declared"},
    "computed": {"fr": "calculé", "en": "computed"},
    "inlet": {"fr": "entrée", "en": "inlet"},
    "outlet": {"fr": "sortie", "en": "outlet"},
    "none": {"fr": "aucun", "en": "none"},
}

VOLUME_NAMES: dict[str, dict[Lang, str]] = {
    "vp_m3": {"fr": "Vp, volume produit", "en": "Vp, volume produced"},
    "vimp_m3": {"fr": "Vimp, volume importé", "en": "Vimp, volume imported"},
    "vexp_m3": {"fr": "Vexp, volume exporté", "en": "Vexp, volume exported"},
    "vmd_m3": {"fr": "VMD, volume mis en distribution", "en": "VMD, volume put into distribution"},
    "vc_m3": {"fr": "Vc, volume comptabilisé (facturé)", "en": "Vc, metered consumption (billed)"},
    "vsc_m3": {"fr": "Vsc, consommateurs sans comptage", "en": "Vsc, unmetered authorised use"},
    "vs_m3": {"fr": "Vs, volume de service du réseau", "en": "Vs, network service use"},
    "vca_m3": {"fr": "VCA, volume consommé autorisé", "en": "VCA, authorised consumption"},
}

BALANCE_NAMES: dict[str, dict[Lang, str]] = {
    "system_input_m3": {"fr": "Volume introduit (SIV)", "en": "System input volume"},
    "authorised_m3": {"fr": "Consommation autorisée", "en": "Authorised consumption"},
    "revenue_water_m3": {"fr": "Eau facturée", "en": "Revenue water"},
    "non_revenue_water_m3": {"fr": "Eau non facturée (NRW)", "en": "Non-revenue water"},
    "water_losses_m3": {"fr": "Pertes d'eau", "en": "Water losses"},
    "apparent_losses_m3": {"fr": "Pertes apparentes", "en": "Apparent losses"},
    "meter_under_registration_m3": {
        "fr": "dont sous-comptage",
        "en": "of which meter under-registration",
    },
    "real_losses_m3": {"fr": "Pertes réelles (CARL)", "en": "Real losses (CARL)"},
}

NOTES: dict[str, dict[Lang, str]] = {
    "metered_incomplete": {
        "fr": "Données de comptage complètes à {pct:.1f} % : {hours} heures-compteur estimées"
        " au débit horaire moyen mesuré du compteur.",
        "en": "Meter data {pct:.1f} % complete: {hours} meter-hours estimated at the meter's"
        " mean measured hourly flow.",
    },
    "billing_coverage": {
        "fr": "Les volumes facturés ne couvrent que {pct:.0f} % de la période :"
        " le rendement est sous-estimé.",
        "en": "Billed volumes cover only {pct:.0f} % of the period: the yield is understated.",
    },
    "billing_prorated": {
        "fr": "{m3:,.1f} m³ facturés ({pct:.1f} %) viennent de périodes de facturation à cheval"
        " sur la période du rapport, proratisées au temps.",
        "en": "{m3:,.1f} m³ billed ({pct:.1f} %) come from billing periods straddling the report"
        " period, prorated by time.",
    },
    "no_mains_length": {
        "fr": "Linéaire de réseau inconnu : ILP, ILVNC, ILC et seuil Grenelle non calculés.",
        "en": "Mains length unknown: ILP, ILVNC, ILC and the Grenelle threshold are not computed.",
    },
    "grenelle_non_compliant": {
        "fr": "Rendement sous le seuil Grenelle II ({threshold:.1f} %) : le service doit adopter"
        " un plan d'actions avant la fin de l'année N+2 ; à défaut, l'agence de l'eau double la"
        " redevance pour prélèvement (+100 %).",
        "en": "Yield below the Grenelle II threshold ({threshold:.1f} %): the service must adopt"
        " an action plan before the end of year N+2; without one the water agency doubles the"
        " abstraction fee (+100 %).",
    },
    "category_by_ilc": {
        "fr": "Type de réseau non déclaré : déduit de l'ILC ({category}).",
        "en": "Network type not declared: taken from ILC ({category}).",
    },
    "no_uarl": {
        "fr": "UARL et ILI non calculés : linéaire, branchements ou pression moyenne inconnus.",
        "en": "UARL and ILI not computed: mains length, connections or pressure unknown.",
    },
    "uarl_validity": {
        "fr": "ILI hors du domaine de validité de la formule UARL (Nc > 5 000, > 20 branchements"
        "/km, P 25–100 m) : {issues}. À interpréter avec prudence.",
        "en": "ILI outside the UARL formula's validity range (Nc > 5,000, > 20 connections/km,"
        " P 25–100 m): {issues}. Interpret with care.",
    },
    "constant_pressure": {
        "fr": "Pas de profil de pression : pression supposée constante, NDF = 24 h.",
        "en": "No pressure profile: constant pressure assumed, NDF = 24 h.",
    },
    "no_households": {
        "fr": "Nombre de foyers inconnu : le débit net de nuit inclut la consommation nocturne"
        " des foyers.",
        "en": "Household count unknown: the net night flow includes household night use.",
    },
    "no_night_flow": {
        "fr": "Aucun jour assez complet pour le débit minimum de nuit.",
        "en": "No day complete enough for a minimum night flow.",
    },
    "internal_meters": {
        "fr": "Compteurs entre secteurs du rapport, exclus des entrées et sorties : {meters}.",
        "en": "Meters between reported DMAs, left out of intake and export: {meters}.",
    },
    "no_day_before": {
        "fr": "Aucun jour entier avant la première réparation : pas de chiffre « avant ».",
        "en": "No whole day before the first repair: no 'before' figure.",
    },
    "no_day_after": {
        "fr": "Aucun jour entier après la dernière réparation : pas de chiffre « après ».",
        "en": "No whole day after the last repair: no 'after' figure.",
    },
}

VALIDITY: dict[str, dict[Lang, str]] = {
    "few_connections": {"fr": "moins de 5 000 branchements", "en": "5,000 connections or fewer"},
    "low_density": {"fr": "≤ 20 branchements/km", "en": "≤ 20 connections/km"},
    "pressure_out_of_range": {"fr": "pression hors 25–100 m", "en": "pressure outside 25–100 m"},
}

CATEGORIES: dict[str, dict[Lang, str]] = {
    "rural": {"fr": "rural", "en": "rural"},
    "intermediate": {"fr": "intermédiaire", "en": "intermediate"},
    "urban": {"fr": "urbain", "en": "urban"},
    "good": {"fr": "bon", "en": "good"},
    "acceptable": {"fr": "acceptable", "en": "acceptable"},
    "poor": {"fr": "médiocre", "en": "poor"},
    "bad": {"fr": "mauvais", "en": "bad"},
}

EXPLANATION: dict[Lang, str] = {
    "fr": "Avant la première réparation, le secteur recevait {before_in} m³/j pour"
    " {before_auth} m³/j consommés : rendement journalier {before} %. Après la"
    " dernière, {after_in} m³/j suffisent : {after} %. Sur toute la période, chaque"
    " fuite a continué de couler jusqu'au jour de sa réparation, si bien que le rendement de la"
    " période, {period} %, se situe entre les deux. Un chiffre annuel où les réparations"
    " ne comptent qu'à partir de leur date (comme le « 90 % » d'un rapport annuel) est de ce"
    " type : il ne contredit pas le chiffre journalier de {after} %, il répond à une autre"
    " question.",
    "en": "Before the first repair the DMA took in {before_in} m³/day for"
    " {before_auth} m³/day of authorised use: a daily yield of {before} %. After the"
    " last one, {after_in} m³/day are enough: {after} %. Over the whole period each"
    " leak kept running until the day it was repaired, so the period's yield, {period} %,"
    " lies between the two. An annual figure in which repairs count only from their date (such"
    " as the '90 %' of an annual report) is of that kind: it does not contradict the daily"
    " {after} %, it answers another question.",
}


def check_lang(lang: str) -> Lang:
    """``fr`` or ``en``; anything else is an :class:`InvalidInput`."""
    if lang not in LANGS:
        raise InvalidInput(f"lang must be one of {', '.join(LANGS)} (got {lang!r})")
    return lang


def label(key: str, lang: Lang) -> str:
    return LABELS[key][lang]


def indicator_name(key: str, lang: Lang) -> str:
    row = next(d for d in INDICATORS if d.key == key)
    return row.name_fr if lang == "fr" else row.name_en


def unit(text: str, lang: Lang) -> str:
    return text.replace("/day", "/j") if lang == "fr" else text


def note_text(code: str, params: Mapping[str, str | float], lang: Lang) -> str:
    """A note in ``lang`` (validity issues are worded too)."""
    values = dict(params)
    if code == "uarl_validity":
        issues = str(values.get("issues", "")).split(",")
        values["issues"] = ", ".join(VALIDITY[i][lang] for i in issues if i in VALIDITY)
    if code == "category_by_ilc":
        values["category"] = CATEGORIES.get(str(values["category"]), {lang: ""})[lang]
    return NOTES[code][lang].format(**values)
