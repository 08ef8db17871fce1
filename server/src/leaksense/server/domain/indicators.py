"""Network-efficiency indicators.

Formulas from ``shared/reference/water-loss-indicators.md`` §2 (SISPEA, arrêté du
2 mai 2007); test vectors TV1–TV3 of §7 are in ``tests/server/test_indicators.py``.
"""

from __future__ import annotations

from leaksense.core.errors import InvalidInput


def rendement_pct(*, vp_m3: float, vimp_m3: float, vexp_m3: float, vca_m3: float) -> float:
    """P104.3 network yield (%) = (VCA + Vexp) / (Vp + Vimp) × 100.

    Vp produced, Vimp imported (bought), Vexp exported (sold), VCA authorised
    consumption (metered + unmetered + network service use), all in m³.
    """
    for name, value in (("Vp", vp_m3), ("Vimp", vimp_m3), ("Vexp", vexp_m3), ("VCA", vca_m3)):
        if value < 0:
            raise InvalidInput(f"{name} must not be negative (got {value} m³)")
    intake_m3 = vp_m3 + vimp_m3
    if intake_m3 <= 0:
        raise InvalidInput("yield is undefined: no water produced or imported (Vp + Vimp = 0)")
    return (vca_m3 + vexp_m3) / intake_m3 * 100.0


def vmd_m3(*, vp_m3: float, vimp_m3: float, vexp_m3: float) -> float:
    """VMD, volume put into distribution = Vp + Vimp − Vexp (m³)."""
    return vp_m3 + vimp_m3 - vexp_m3
