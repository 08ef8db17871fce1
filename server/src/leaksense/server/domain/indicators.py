"""French network-efficiency indicators (SISPEA, arrêté du 2 mai 2007) and the Grenelle II test.

Formulas from ``shared/reference/water-loss-indicators.md`` §1–2; test vectors TV1–TV3
of §7 are in ``tests/server/test_reference_vectors.py``. The values the reference
marks as unverified (Grenelle constants, ILP grid, category limits) live in
:class:`IndicatorConstants` with the reference's values as defaults, so a service
can set what its regulator or its own studies say.

:data:`INDICATORS` is the declarative table the reports walk: one row per figure,
its French and English names, its unit and the function that computes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from leaksense.core.errors import InvalidInput

Category = Literal["rural", "intermediate", "urban"]
IlpClass = Literal["good", "acceptable", "poor", "bad"]
CATEGORIES: tuple[Category, ...] = ("rural", "intermediate", "urban")


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise InvalidInput(f"{name} must not be negative (got {value} m³)")


def rendement_pct(*, vp_m3: float, vimp_m3: float, vexp_m3: float, vca_m3: float) -> float:
    """P104.3 network yield (%) = (VCA + Vexp) / (Vp + Vimp) × 100.

    Vp produced, Vimp imported (bought), Vexp exported (sold), VCA authorised
    consumption (metered + unmetered + network service use), all in m³.
    """
    _non_negative(Vp=vp_m3, Vimp=vimp_m3, Vexp=vexp_m3, VCA=vca_m3)
    intake_m3 = vp_m3 + vimp_m3
    if intake_m3 <= 0:
        raise InvalidInput("yield is undefined: no water produced or imported (Vp + Vimp = 0)")
    return (vca_m3 + vexp_m3) / intake_m3 * 100.0


def vmd_m3(*, vp_m3: float, vimp_m3: float, vexp_m3: float) -> float:
    """VMD, volume put into distribution = Vp + Vimp − Vexp (m³)."""
    return vp_m3 + vimp_m3 - vexp_m3


def vca_m3(*, vc_m3: float, vsc_m3: float, vs_m3: float) -> float:
    """VCA, authorised consumption = Vc (metered) + Vsc (unmetered) + Vs (network service)."""
    _non_negative(Vc=vc_m3, Vsc=vsc_m3, Vs=vs_m3)
    return vc_m3 + vsc_m3 + vs_m3


def _per_km_day(volume_m3: float, days: float, mains_km: float) -> float:
    if days <= 0 or mains_km <= 0:
        raise InvalidInput(f"linear indices need days > 0 and L > 0 (got {days}, {mains_km} km)")
    return volume_m3 / (days * mains_km)


def ilvnc_m3_km_day(*, vmd_m3: float, vc_m3: float, days: float, mains_km: float) -> float:
    """P105.3 ILVNC, non-metered volume index = (VMD − Vc) / (days × L)."""
    return _per_km_day(vmd_m3 - vc_m3, days, mains_km)


def ilp_m3_km_day(*, vmd_m3: float, vca_m3: float, days: float, mains_km: float) -> float:
    """P106.3 ILP, linear loss index = (VMD − VCA) / (days × L)."""
    return _per_km_day(vmd_m3 - vca_m3, days, mains_km)


def ilc_m3_km_day(*, vca_m3: float, vexp_m3: float, days: float, mains_km: float) -> float:
    """ILC, linear consumption index = (VCA + Vexp) / (days × L)."""
    return _per_km_day(vca_m3 + vexp_m3, days, mains_km)


@dataclass(frozen=True, slots=True)
class IlpGrid:
    """Upper bounds (m³/km/day) of the good, acceptable and poor classes of one network type."""

    good_below: float
    acceptable_below: float
    poor_below: float


def _default_grid() -> dict[Category, IlpGrid]:
    return {
        "rural": IlpGrid(1.5, 2.5, 4.0),
        "intermediate": IlpGrid(3.0, 5.0, 8.0),
        "urban": IlpGrid(7.0, 10.0, 15.0),
    }


@dataclass(frozen=True, slots=True)
class IndicatorConstants:
    """Every configurable constant of §2, with the reference's values as defaults.

    Grenelle II (décret n° 2012-97): threshold = min(cap, base + ILC / divisor), base
    65 % (70 % where the service draws > 2 Mm³/year from a ZRE); the exact wording of
    the decree was not re-checked, hence configurable. ILP grid and category limits are
    commonly used, unverified values.
    """

    grenelle_base_pct: float = 65.0
    grenelle_zre_base_pct: float = 70.0
    grenelle_cap_pct: float = 85.0
    grenelle_ilc_divisor: float = 5.0
    rural_below_ilc: float = 10.0
    urban_above_ilc: float = 30.0
    ilp_grid: dict[Category, IlpGrid] = field(default_factory=_default_grid)


DEFAULT_CONSTANTS = IndicatorConstants()


def grenelle_threshold_pct(
    ilc: float, *, zre: bool = False, constants: IndicatorConstants = DEFAULT_CONSTANTS
) -> float:
    """Grenelle II minimum yield (%) = min(85, 65 + ILC/5), or min(85, 70 + ILC/5) in a ZRE."""
    base = constants.grenelle_zre_base_pct if zre else constants.grenelle_base_pct
    return min(constants.grenelle_cap_pct, base + ilc / constants.grenelle_ilc_divisor)


def category_by_ilc(ilc: float, constants: IndicatorConstants = DEFAULT_CONSTANTS) -> Category:
    """Network type from ILC: rural < 10, intermediate 10–30, urban > 30 m³/km/day."""
    if ilc < constants.rural_below_ilc:
        return "rural"
    if ilc > constants.urban_above_ilc:
        return "urban"
    return "intermediate"


def ilp_class(
    ilp: float, category: Category, constants: IndicatorConstants = DEFAULT_CONSTANTS
) -> IlpClass:
    """Class of an ILP in the reference grid of its network type."""
    grid = constants.ilp_grid[category]
    if ilp < grid.good_below:
        return "good"
    if ilp < grid.acceptable_below:
        return "acceptable"
    if ilp <= grid.poor_below:
        return "poor"
    return "bad"


@dataclass(frozen=True, slots=True)
class Compliance:
    """Where a yield stands against its Grenelle II threshold."""

    threshold_pct: float
    zre: bool
    compliant: bool
    margin_points: float
    """Yield minus threshold, percentage points (negative when below)."""


def grenelle_compliance(
    yield_pct: float,
    ilc: float,
    *,
    zre: bool = False,
    constants: IndicatorConstants = DEFAULT_CONSTANTS,
) -> Compliance:
    """Compliance with the Grenelle II threshold (consequences: see the report catalogue)."""
    threshold = grenelle_threshold_pct(ilc, zre=zre, constants=constants)
    return Compliance(threshold, zre, yield_pct >= threshold, yield_pct - threshold)


@dataclass(frozen=True, slots=True)
class ServiceVolumes:
    """The §1 volumes of a service (or DMA) over ``days``, m³, and its mains length, km."""

    vp_m3: float
    vimp_m3: float
    vexp_m3: float
    vc_m3: float
    vsc_m3: float
    vs_m3: float
    days: float
    mains_km: float | None

    @property
    def vmd_m3(self) -> float:
        return vmd_m3(vp_m3=self.vp_m3, vimp_m3=self.vimp_m3, vexp_m3=self.vexp_m3)

    @property
    def vca_m3(self) -> float:
        return vca_m3(vc_m3=self.vc_m3, vsc_m3=self.vsc_m3, vs_m3=self.vs_m3)


def _linear(
    fn: Callable[[ServiceVolumes, float], float],
) -> Callable[[ServiceVolumes], float | None]:
    def compute(v: ServiceVolumes) -> float | None:
        return None if v.mains_km is None else fn(v, v.mains_km)

    return compute


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    """One row of the indicator table: what the report prints and how it is computed."""

    key: str
    code: str
    name_fr: str
    name_en: str
    unit: str
    compute: Callable[[ServiceVolumes], float | None]
    """None when an input is missing (e.g. a linear index without a mains length)."""


INDICATORS: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        "vmd_m3", "VMD", "Volume mis en distribution", "Volume put into distribution", "m³",
        lambda v: v.vmd_m3,
    ),
    IndicatorDef(
        "vca_m3", "VCA", "Volume consommé autorisé", "Authorised consumption", "m³",
        lambda v: v.vca_m3,
    ),
    IndicatorDef(
        "losses_m3", "VMD − VCA", "Pertes en réseau", "Network losses", "m³",
        lambda v: v.vmd_m3 - v.vca_m3,
    ),
    IndicatorDef(
        "rendement_pct", "P104.3", "Rendement du réseau de distribution",
        "Distribution network yield", "%",
        lambda v: rendement_pct(
            vp_m3=v.vp_m3, vimp_m3=v.vimp_m3, vexp_m3=v.vexp_m3, vca_m3=v.vca_m3
        ) if v.vp_m3 + v.vimp_m3 > 0 else None,
    ),
    IndicatorDef(
        "ilvnc_m3_km_day", "P105.3", "Indice linéaire des volumes non comptés (ILVNC)",
        "Linear index of unmetered volumes", "m³/km/day",
        _linear(lambda v, km: ilvnc_m3_km_day(
            vmd_m3=v.vmd_m3, vc_m3=v.vc_m3, days=v.days, mains_km=km
        )),
    ),
    IndicatorDef(
        "ilp_m3_km_day", "P106.3", "Indice linéaire de pertes en réseau (ILP)",
        "Linear loss index", "m³/km/day",
        _linear(lambda v, km: ilp_m3_km_day(
            vmd_m3=v.vmd_m3, vca_m3=v.vca_m3, days=v.days, mains_km=km
        )),
    ),
    IndicatorDef(
        "ilc_m3_km_day", "ILC", "Indice linéaire de consommation (ILC)",
        "Linear consumption index", "m³/km/day",
        _linear(lambda v, km: ilc_m3_km_day(
            vca_m3=v.vca_m3, vexp_m3=v.vexp_m3, days=v.days, mains_km=km
        )),
    ),
)  # fmt: skip
"""The figures of §2 in report order."""


def compute_indicators(volumes: ServiceVolumes) -> dict[str, float | None]:
    """Every row of :data:`INDICATORS` for ``volumes``, by key."""
    return {d.key: d.compute(volumes) for d in INDICATORS}
