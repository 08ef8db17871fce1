"""Indicator formulas against water-loss-indicators.md §7 vectors; volume arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leaksense.core.errors import InvalidInput
from leaksense.server.domain.indicators import rendement_pct, vmd_m3
from leaksense.server.domain.volumes import BillingPeriod, integrate_hourly, prorate_billing
from leaksense.server.stores.base import HourlyFlow

REL = 1e-3  # tolerance of the reference vectors
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_tv1_full_french_set() -> None:
    kw = {"vp_m3": 1_000_000.0, "vimp_m3": 100_000.0, "vexp_m3": 150_000.0}
    vca = 700_000.0 + 10_000.0 + 15_000.0
    assert vmd_m3(**kw) == 950_000.0
    assert rendement_pct(**kw, vca_m3=vca) == pytest.approx(79.5455, rel=REL)


def test_tv2_non_compliant_rural_service() -> None:
    vca = 120_000.0 + 2_000.0 + 3_000.0
    assert rendement_pct(vp_m3=200_000.0, vimp_m3=0, vexp_m3=0, vca_m3=vca) == pytest.approx(
        62.5, rel=REL
    )


@pytest.mark.parametrize(("vmd", "expected"), [(800.0, 75.0), (650.0, 92.3077)])
def test_tv3_saint_savin(vmd: float, expected: float) -> None:
    assert rendement_pct(vp_m3=vmd, vimp_m3=0, vexp_m3=0, vca_m3=600.0) == pytest.approx(
        expected, rel=REL
    )


def test_identity_losses_from_yield() -> None:
    """VMD − VCA = (Vp + Vimp) × (1 − rendement/100) (reference §2)."""
    vp, vimp, vexp, vca = 1_000_000.0, 100_000.0, 150_000.0, 725_000.0
    r = rendement_pct(vp_m3=vp, vimp_m3=vimp, vexp_m3=vexp, vca_m3=vca)
    assert vmd_m3(vp_m3=vp, vimp_m3=vimp, vexp_m3=vexp) - vca == pytest.approx(
        (vp + vimp) * (1 - r / 100)
    )


def test_yield_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput, match="undefined"):
        rendement_pct(vp_m3=0, vimp_m3=0, vexp_m3=0, vca_m3=0)
    with pytest.raises(InvalidInput, match="negative"):
        rendement_pct(vp_m3=10, vimp_m3=0, vexp_m3=-1, vca_m3=0)


def test_missing_hours_are_estimated_and_reported() -> None:
    hourly = [HourlyFlow(T0 + timedelta(hours=h), 10.0, 12) for h in range(24) if h != 5]
    volume = integrate_hourly(hourly, T0, T0 + timedelta(days=1))
    assert volume.volume_m3 == pytest.approx(240.0)
    assert volume.hours_measured == 23
    assert volume.hours_estimated == 1
    assert volume.completeness_pct == pytest.approx(100 * 23 / 24)


def test_periods_must_be_whole_hours() -> None:
    with pytest.raises(InvalidInput, match="whole UTC hour"):
        integrate_hourly([], T0 + timedelta(minutes=30), T0 + timedelta(hours=2))


def test_billing_is_prorated_by_overlap() -> None:
    periods = [
        BillingPeriod(T0 - timedelta(days=10), T0 + timedelta(days=10), 2_000.0),
        BillingPeriod(T0 + timedelta(days=10), T0 + timedelta(days=40), 3_000.0),
    ]
    billed = prorate_billing(periods, T0, T0 + timedelta(days=20))
    assert billed.volume_m3 == pytest.approx(1_000.0 + 1_000.0)
    assert billed.prorated_m3 == pytest.approx(2_000.0)
    assert billed.coverage_pct == pytest.approx(100.0)
    inside = prorate_billing(periods, T0 - timedelta(days=20), T0 + timedelta(days=50))
    assert inside.volume_m3 == pytest.approx(5_000.0)
    assert inside.prorated_m3 == 0.0
    assert inside.coverage_pct == pytest.approx(100 * 50 / 70)
