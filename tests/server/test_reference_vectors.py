"""Every test vector of water-loss-indicators.md §7 (relative tolerance 1e-3)."""

from __future__ import annotations

import pytest

from leaksense.server.domain import indicators as ind
from leaksense.server.domain import night_flow as nf
from leaksense.server.domain.water_balance import (
    WaterBalance,
    ili,
    ili_band,
    uarl_l_per_day,
    uarl_validity,
    under_registration_m3,
)

REL = 1e-3


def approx(value: float) -> object:
    return pytest.approx(value, rel=REL)


def year(*volumes_m3: float, km: float) -> dict[str, float | None]:
    """Indicators of one year; volumes Vp, Vimp, Vexp, Vc, Vsc, Vs in that order."""
    vp, vimp, vexp, vc, vsc, vs = volumes_m3
    return ind.compute_indicators(ind.ServiceVolumes(vp, vimp, vexp, vc, vsc, vs, 365, km))


def test_tv1_full_french_indicator_set() -> None:
    v = year(1_000_000, 100_000, 150_000, 700_000, 10_000, 15_000, km=120)
    assert v["vmd_m3"] == approx(950_000)
    assert v["vca_m3"] == approx(725_000)
    assert v["rendement_pct"] == approx(79.5455)
    assert v["ilp_m3_km_day"] == approx(5.1370)
    assert v["ilvnc_m3_km_day"] == approx(5.7078)
    assert v["ilc_m3_km_day"] == approx(19.9772)
    assert ind.grenelle_threshold_pct(19.9772) == approx(68.9954)
    assert ind.grenelle_threshold_pct(19.9772, zre=True) == approx(73.9954)
    assert ind.grenelle_compliance(79.5455, 19.9772).compliant
    assert ind.grenelle_compliance(79.5455, 19.9772, zre=True).compliant


def test_tv2_non_compliant_rural_service() -> None:
    v = year(200_000, 0, 0, 120_000, 2_000, 3_000, km=50)
    assert v["rendement_pct"] == approx(62.5)
    assert v["ilc_m3_km_day"] == approx(6.8493)
    assert v["ilp_m3_km_day"] == approx(4.1096)
    assert v["ilvnc_m3_km_day"] == approx(4.3836)
    ilc, ilp = v["ilc_m3_km_day"], v["ilp_m3_km_day"]
    assert ilc is not None and ilp is not None
    assert ind.grenelle_threshold_pct(ilc) == approx(66.3699)
    assert ind.grenelle_threshold_pct(ilc, zre=True) == approx(71.3699)
    compliance = ind.grenelle_compliance(62.5, ilc)
    assert not compliance.compliant
    assert compliance.margin_points == approx(62.5 - 66.3699)
    assert ind.category_by_ilc(ilc) == "rural"
    assert ind.ilp_class(ilp, "rural") == "bad"


@pytest.mark.parametrize(("vmd", "rendement", "losses"), [(800, 75.0, 200), (650, 92.3077, 50)])
def test_tv3_saint_savin_per_day(vmd: float, rendement: float, losses: float) -> None:
    v = ind.compute_indicators(ind.ServiceVolumes(vmd, 0, 0, 600, 0, 0, 1, None))
    assert v["rendement_pct"] == approx(rendement)
    assert v["losses_m3"] == approx(losses)
    assert v["ilp_m3_km_day"] is None  # no mains length: linear indices are not made up


def test_tv4_uarl_and_ili() -> None:
    assert uarl_l_per_day(
        mains_km=500, service_connections=20_000, private_pipes_km=0, pressure_m=40
    ) == approx(1_000_000)
    assert uarl_l_per_day(
        mains_km=500, service_connections=20_000, private_pipes_km=200, pressure_m=40
    ) == approx(1_200_000)
    assert approx(365_000) == 1_000_000 * 365 / 1000  # m³/year
    carl_l_per_day = 1_825_000 / 365 * 1000
    assert ili(carl_l_per_day, 1_000_000) == approx(5.0)
    assert carl_l_per_day / 20_000 == approx(250)
    assert ili_band(5.0) == "C"
    assert uarl_validity(mains_km=500, service_connections=20_000, pressure_m=40) == []


def test_tv5_iwa_balance() -> None:
    b = WaterBalance(
        system_input_m3=1_000_000,
        billed_metered_m3=700_000,
        billed_unmetered_m3=20_000,
        unbilled_metered_m3=10_000,
        unbilled_unmetered_m3=15_000,
        unauthorised_m3=10_000,
        meter_under_registration_m3=25_000,
    )
    assert b.authorised_m3 == approx(745_000)
    assert b.revenue_water_m3 == approx(720_000)
    assert b.non_revenue_water_m3 == approx(280_000)
    assert b.nrw_pct == approx(28.0)
    assert b.water_losses_m3 == approx(255_000)
    assert b.apparent_losses_m3 == approx(35_000)
    assert b.real_losses_m3 == approx(220_000)


NIGHT = [50.0] * 8 + [40.0] * 16


def test_tv6_net_night_flow() -> None:
    nnf = nf.net_night_flow_m3h(
        mnf_m3h=12.0,
        households=2_000,
        household_night_use_l_h=1.7,
        non_household_night_use_m3h=0.4,
        exceptional_night_use_m3h=0.5,
    )
    assert nnf == approx(7.7)


@pytest.mark.parametrize(
    ("n1", "ndf", "leakage", "after_cut"),
    [
        (0.5, 22.3108, 171.793, 6.8871),
        (1.0, 20.8, 160.16, 6.16),
        (1.5, 19.4487, 149.755, 5.5097),
        (2.5, 17.1589, 132.124, 4.4077),
    ],
)
def test_tv6_ndf_daily_leakage_and_pressure_cut(
    n1: float, ndf: float, leakage: float, after_cut: float
) -> None:
    factor = nf.night_day_factor_h(NIGHT, night_pressure_m=50.0, n1=n1)
    assert factor == approx(ndf)
    assert nf.daily_leakage_m3(nnf_m3h=7.7, ndf_h=factor) == approx(leakage)
    assert 7.7 * nf.favad_ratio(p1_m=40, p0_m=50, n1=n1) == approx(after_cut)


def test_tv6_through_the_night_flow_analysis() -> None:
    analysis = nf.analyse_night_flow(
        [12.0] * 7,
        households=2_000,
        household_night_use_l_h=1.7,
        non_household_night_use_m3h=0.4,
        exceptional_night_use_m3h=0.5,
        hourly_pressure_m=NIGHT,
        n1=1.0,
    )
    assert analysis.nnf_m3h == approx(7.7)
    assert analysis.ndf_h == approx(20.8)
    assert analysis.daily_leakage_m3 == approx(160.16)
    assert analysis.mnf_trend_m3h_per_day == pytest.approx(0.0)
    assert not analysis.constant_pressure


def test_identities_and_orderings() -> None:
    """ILVNC ≥ ILP; VMD − VCA = (Vp + Vimp)(1 − rendement/100) (reference §2)."""
    v = year(1_000_000, 100_000, 150_000, 700_000, 10_000, 15_000, km=120)
    assert v["ilvnc_m3_km_day"] >= v["ilp_m3_km_day"]  # type: ignore[operator]
    rendement = v["rendement_pct"]
    assert rendement is not None
    assert v["losses_m3"] == pytest.approx(1_100_000 * (1 - rendement / 100))


def test_grid_constants_are_configurable() -> None:
    strict = ind.IndicatorConstants(grenelle_base_pct=70.0, grenelle_cap_pct=80.0)
    assert ind.grenelle_threshold_pct(100.0, constants=strict) == 80.0
    assert ind.ilp_class(3.5, "intermediate") == "acceptable"
    assert ind.ilp_class(7.0, "urban") == "acceptable"
    assert ind.category_by_ilc(31) == "urban"


def test_ili_validity_warnings_and_under_registration() -> None:
    issues = uarl_validity(mains_km=32, service_connections=1_780, pressure_m=110)
    assert issues == ["few_connections", "pressure_out_of_range"]
    assert uarl_validity(mains_km=400, service_connections=6_000, pressure_m=50) == ["low_density"]
    assert under_registration_m3(960, 4.0) == approx(40.0)  # 4 % missed of 1 000 m³ passed
    assert nf.trend_per_day([10.0, 10.5, 11.0]) == pytest.approx(0.5)
    assert nf.trend_per_day([10.0]) is None
