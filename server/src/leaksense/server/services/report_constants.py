"""The configurable constants of the reports, with the reference's values as defaults.

``water-loss-indicators.md`` marks several values as unverified (Grenelle II
constants, the ILP grid, network types by ILC, WBI bands) or as a range (household
night use 1.5–1.7 L/h). A service sets its own in a TOML file named by
``LEAKSENSE_SERVER_REPORT_CONSTANTS_FILE``::

    household_night_use_l_h = 1.7
    ili_bands = "developing"
    [indicators]
    grenelle_base_pct = 65.0
    [indicators.ilp_grid.rural]
    good_below = 1.5
    acceptable_below = 2.5
    poor_below = 4.0
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leaksense.core.errors import ConfigError
from leaksense.server.domain.indicators import (
    DEFAULT_CONSTANTS,
    Category,
    IlpGrid,
    IndicatorConstants,
)
from leaksense.server.domain.night_flow import HOUSEHOLD_NIGHT_USE_L_H

DEFAULT_WATER_PRICE_EUR_PER_M3 = 2.0
"""About the drinking-water part of the average French bill (SISPEA: ≈ 2.1 €/m³
without sanitation). What a saved m³ is worth to a service is rather its variable
production or purchase cost: set the price that fits the question."""


@dataclass(frozen=True, slots=True)
class ReportConstants:
    """Constants a report is computed with (they are printed in the report)."""

    indicators: IndicatorConstants = field(default_factory=lambda: DEFAULT_CONSTANTS)
    household_night_use_l_h: float = HOUSEHOLD_NIGHT_USE_L_H
    ili_bands: Literal["developed", "developing"] = "developed"
    water_price_eur_per_m3: float = DEFAULT_WATER_PRICE_EUR_PER_M3


class _Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    good_below: float = Field(gt=0)
    acceptable_below: float = Field(gt=0)
    poor_below: float = Field(gt=0)


class _Indicators(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grenelle_base_pct: float = DEFAULT_CONSTANTS.grenelle_base_pct
    grenelle_zre_base_pct: float = DEFAULT_CONSTANTS.grenelle_zre_base_pct
    grenelle_cap_pct: float = DEFAULT_CONSTANTS.grenelle_cap_pct
    grenelle_ilc_divisor: float = Field(default=DEFAULT_CONSTANTS.grenelle_ilc_divisor, gt=0)
    rural_below_ilc: float = DEFAULT_CONSTANTS.rural_below_ilc
    urban_above_ilc: float = DEFAULT_CONSTANTS.urban_above_ilc
    ilp_grid: dict[Category, _Grid] = {}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    household_night_use_l_h: float = Field(default=HOUSEHOLD_NIGHT_USE_L_H, ge=0)
    ili_bands: Literal["developed", "developing"] = "developed"
    indicators: _Indicators = _Indicators()


def report_constants(
    path: Path | None, water_price_eur_per_m3: float = DEFAULT_WATER_PRICE_EUR_PER_M3
) -> ReportConstants:
    """Constants from ``path`` (defaults without one), as a :class:`ConfigError` if bad."""
    if path is None:
        return ReportConstants(water_price_eur_per_m3=water_price_eur_per_m3)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
        parsed = _File.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read report constants {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
    grid = dict(DEFAULT_CONSTANTS.ilp_grid)
    grid |= {k: IlpGrid(**v.model_dump()) for k, v in parsed.indicators.ilp_grid.items()}
    values = parsed.indicators.model_dump(exclude={"ilp_grid"})
    return ReportConstants(
        indicators=IndicatorConstants(**values, ilp_grid=grid),
        household_night_use_l_h=parsed.household_night_use_l_h,
        ili_bands=parsed.ili_bands,
        water_price_eur_per_m3=water_price_eur_per_m3,
    )
