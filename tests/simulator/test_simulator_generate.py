"""The generated Saint-Savin data reproduces the seed report's volumes and yields,
deterministically, and the truth balances to the cubic metre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leaksense.core.errors import ConfigError
from leaksense.simulator.generate import Simulation, simulate, volume_m3
from leaksense.simulator.scenario import BUILTIN, Scenario, saint_savin, saint_savin_periods
from leaksense.simulator.spec import CustomerMeterSpec

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(saint_savin(START), seed=42)


def inlet_m3(sim: Simulation, start: datetime, end: datetime) -> float:
    return volume_m3(sim.series_of("ss-inlet"), start, end, 300)


def test_same_seed_same_output_other_seed_differs(sim: Simulation) -> None:
    again = simulate(saint_savin(START), seed=42)
    assert again == sim
    assert again.readings == sim.readings
    assert simulate(saint_savin(START), seed=43).series != sim.series


def test_adding_a_meter_leaves_the_other_meters_unchanged(sim: Simulation) -> None:
    dma = sim.scenario.spec.dmas[0]
    extra = CustomerMeterSpec(sensor_id="ss-bakery", type="business", m3_per_day=2.0)
    dmas = (dma.model_copy(update={"customer_meters": (*dma.customer_meters, extra)}),)
    bigger = Scenario(sim.scenario.spec.model_copy(update={"dmas": dmas}), START, 14)
    other = simulate(bigger, seed=42)
    for sensor_id in ("ss-school", "ss-farm", "ss-townhall"):
        assert other.series_of(sensor_id) == sim.series_of(sensor_id)
    assert len(other.series_of("ss-bakery")) == 14 * 288


def test_readings_are_time_ordered_utc_and_complete(sim: Simulation) -> None:
    times = [r.time for r in sim.readings]
    assert times == sorted(times)
    assert all(t.tzinfo is UTC for t in times)
    assert len(sim.readings) == sim.reading_count == 14 * 288 * 4
    assert [r.sensor_id for r in sim.readings[:4]] == [
        "ss-inlet",
        "ss-school",
        "ss-farm",
        "ss-townhall",
    ]


def test_daily_inlet_volumes_before_and_after_repairs(sim: Simulation) -> None:
    before_start, before_end, after_start, after_end = saint_savin_periods(sim.scenario)
    for start, end, expected_m3 in ((before_start, before_end, 800), (after_start, after_end, 650)):
        day = start
        while day < end:
            assert inlet_m3(sim, day, day + DAY) == pytest.approx(expected_m3, rel=0.01)
            day += DAY


def test_inlet_index_follows_the_register(sim: Simulation) -> None:
    inlet = sim.series_of("ss-inlet")
    assert inlet.index_m3 is not None
    assert inlet.index_m3[0] == 125_000.0
    counted_m3 = float(inlet.index_m3[-1] - inlet.index_m3[0])
    reported_m3 = float(inlet.flow_m3h[:-1].sum() * 300 / 3600)  # noise averages out
    assert counted_m3 == pytest.approx(reported_m3, rel=0.002)
    assert (inlet.index_m3[1:] >= inlet.index_m3[:-1]).all()


def test_billing_is_600_m3_a_day_in_weekly_periods(sim: Simulation) -> None:
    assert [(b.period_start, b.period_end) for b in sim.billing] == [
        (START, START + 7 * DAY),
        (START + 7 * DAY, START + 14 * DAY),
    ]
    for period in sim.billing:
        assert period.dma_id == "ss-dma"
        assert period.volume_m3 / 7 == pytest.approx(600, rel=0.01)
    accounts = {b.customer_id for b in sim.customer_billing}
    assert {"ss-school", "ss-farm", "ss-townhall"} <= accounts


def test_yields_from_simulated_volumes_match_the_report(sim: Simulation) -> None:
    before_start, before_end, after_start, after_end = saint_savin_periods(sim.scenario)
    billed_per_day_m3 = [b.volume_m3 / 7 for b in sim.billing]
    yield_before = billed_per_day_m3[0] * 7 / inlet_m3(sim, before_start, before_end)
    yield_after = billed_per_day_m3[1] * 2 / inlet_m3(sim, after_start, after_end)
    assert yield_before * 100 == pytest.approx(75.0, abs=0.5)
    assert yield_after * 100 == pytest.approx(92.3, abs=0.5)


def test_truth_balances_and_carries_the_leaks(sim: Simulation) -> None:
    truth = sim.truth
    (dma,) = truth.dmas
    assert dma.system_input_m3 == pytest.approx(
        dma.exported_m3 + dma.consumed_m3 + dma.unbilled_authorised_m3 + dma.real_losses_m3,
        rel=1e-12,
    )
    assert dma.apparent_losses_m3 == pytest.approx(0.0, abs=0.05)  # exact registers
    assert dma.days[0].yield_pct == pytest.approx(75.0, abs=0.3)
    assert dma.days[-1].yield_pct == pytest.approx(92.31, abs=0.3)
    spec_leaks = sim.scenario.spec.leaks
    repaired = [leak for leak in spec_leaks if leak.repaired_at is not None]
    assert sum(leak.flow_m3h for leak in repaired) * 24 == pytest.approx(150)
    assert [leak.end for leak in truth.leaks if leak.end] == [
        START + timedelta(days=day, hours=10) for day in range(7, 12)
    ]
    # each repaired leak ran until day 7..11 at 10:00, the background all along
    for leak, hours in zip(truth.leaks, [24 * (7 + i) + 10 for i in range(5)], strict=False):
        assert leak.volume_m3 == pytest.approx(leak.mean_flow_m3h * hours)
    assert truth.real_losses_m3 == pytest.approx(dma.real_losses_m3)
    assert dma.legitimate_night_use_m3h == pytest.approx(1700 * 1.6 / 1000, rel=0.02)


def test_builtin_table_and_short_windows() -> None:
    short = BUILTIN["saint-savin"](START, 2)
    assert simulate(short, seed=1).reading_count == 2 * 288 * 4
    with pytest.raises(ConfigError, match="after period"):
        saint_savin_periods(short)
    assert saint_savin_periods(saint_savin(START)) == (
        START,
        START + 7 * DAY,
        START + 12 * DAY,
        START + 14 * DAY,
    )
