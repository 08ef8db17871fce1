"""The generated Saint-Savin data reproduces the seed report's volumes and yields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leaksense.core.errors import ConfigError
from leaksense.simulator.generate import Simulation, simulate, volume_m3
from leaksense.simulator.scenario import (
    BUILTIN,
    LeakSpec,
    Scenario,
    SensorSpec,
    saint_savin,
    saint_savin_periods,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(saint_savin(START), seed=42)


def inlet_m3(sim: Simulation, start: datetime, end: datetime) -> float:
    return volume_m3(sim.readings, "ss-inlet", start, end, sim.scenario.interval_s)


def test_same_seed_same_output_other_seed_differs(sim: Simulation) -> None:
    again = simulate(saint_savin(START), seed=42)
    assert again == sim
    assert simulate(saint_savin(START), seed=43).readings != sim.readings


def test_readings_are_time_ordered_utc_and_complete(sim: Simulation) -> None:
    times = [r.time for r in sim.readings]
    assert times == sorted(times)
    assert all(t.tzinfo is UTC for t in times)
    assert len(sim.readings) == 14 * 288 * 4
    assert {r.sensor_id for r in sim.readings} == {
        "ss-inlet",
        "ss-school",
        "ss-farm",
        "ss-townhall",
    }


def test_daily_inlet_volumes_before_and_after_repairs(sim: Simulation) -> None:
    before_start, before_end, after_start, after_end = saint_savin_periods(sim.scenario)
    for start, end, expected_m3 in ((before_start, before_end, 800), (after_start, after_end, 650)):
        day = start
        while day < end:
            assert inlet_m3(sim, day, day + DAY) == pytest.approx(expected_m3, rel=0.01)
            day += DAY


def test_inlet_index_integrates_flow(sim: Simulation) -> None:
    inlet = [r for r in sim.readings if r.sensor_id == "ss-inlet"]
    assert inlet[0].index_m3 == 125_000.0
    assert inlet[-1].index_m3 is not None
    last_interval_m3 = inlet[-1].flow_m3h * 300 / 3600
    integrated_m3 = inlet_m3(sim, START, START + 14 * DAY) - last_interval_m3
    assert inlet[-1].index_m3 - 125_000.0 == pytest.approx(integrated_m3, abs=0.01)


def test_billing_is_600_m3_a_day_in_weekly_periods(sim: Simulation) -> None:
    assert [(b.period_start, b.period_end) for b in sim.billing] == [
        (START, START + 7 * DAY),
        (START + 7 * DAY, START + 14 * DAY),
    ]
    for period in sim.billing:
        assert period.dma_id == "ss-dma"
        assert period.volume_m3 / 7 == pytest.approx(600, rel=0.01)


def test_distributed_minus_leaks_is_billed(sim: Simulation) -> None:
    for period in sim.billing:
        leaks_m3 = sum(
            leak.flow_m3h
            * max(0.0, (min(leak.repaired_at or period.period_end, period.period_end)
                        - max(leak.start, period.period_start)).total_seconds()) / 3600
            for leak in sim.truth.leaks
        )  # fmt: skip
        distributed_m3 = inlet_m3(sim, period.period_start, period.period_end)
        assert distributed_m3 - leaks_m3 == pytest.approx(period.volume_m3, rel=1e-5)


def test_yields_from_simulated_volumes_match_the_report(sim: Simulation) -> None:
    before_start, before_end, after_start, after_end = saint_savin_periods(sim.scenario)
    billed_per_day_m3 = [b.volume_m3 / 7 for b in sim.billing]
    before_days = (before_end - before_start) / DAY
    after_days = (after_end - after_start) / DAY
    yield_before = billed_per_day_m3[0] * before_days / inlet_m3(sim, before_start, before_end)
    yield_after = billed_per_day_m3[1] * after_days / inlet_m3(sim, after_start, after_end)
    assert yield_before * 100 == pytest.approx(75.0, abs=0.5)
    assert yield_after * 100 == pytest.approx(92.3, abs=0.5)


def test_truth_carries_the_leaks_and_nominal_volumes(sim: Simulation) -> None:
    truth = sim.truth
    repaired = [leak for leak in truth.leaks if leak.repaired_at is not None]
    assert sum(leak.flow_m3h for leak in repaired) * 24 == pytest.approx(150)
    assert [leak.repaired_at for leak in repaired] == [
        START + timedelta(days=day, hours=10) for day in range(7, 12)
    ]
    assert truth.nominal_consumption_m3 == 14 * 600
    # background 50 m³/day all along, each repaired leak until day 7..11 at 10:00
    hours_running = [24 * (7 + i) + 10 for i in range(5)]
    leakage_m3 = 50 * 14 + sum(
        h * leak.flow_m3h for h, leak in zip(hours_running, repaired, strict=True)
    )
    assert truth.nominal_leakage_m3 == pytest.approx(leakage_m3)
    assert truth.nominal_distributed_m3 == pytest.approx(8400 + leakage_m3)
    assert sim.scenario.nominal_yield(START) == pytest.approx(0.75)


def test_builtin_table_and_short_windows() -> None:
    short = BUILTIN["saint-savin"](START, 2)
    assert len(simulate(short, seed=1).readings) == 2 * 288 * 4
    with pytest.raises(ConfigError, match="after period"):
        saint_savin_periods(short)


@pytest.mark.parametrize(
    "change",
    [
        {"interval_s": 7},
        {"start": datetime(2026, 1, 5)},  # naive on purpose
        {"sensors": (SensorSpec("a", "customer", 1.0),)},
        {"site": "bad site"},
    ],
)
def test_invalid_scenarios_are_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "name": "t",
        "site": "s",
        "dma_id": "d",
        "start": START,
        "days": 1,
        "interval_s": 300,
        "consumption_m3_per_day": 10.0,
        "sensors": (SensorSpec("in", "inlet"),),
    }
    with pytest.raises(ConfigError):
        Scenario(**(fields | change))  # type: ignore[arg-type]


def test_leak_repair_must_follow_start() -> None:
    with pytest.raises(ConfigError, match="repaired_at"):
        LeakSpec("l", 1.0, START, START)


def test_outlet_flow_passes_through_the_inlet() -> None:
    scenario = Scenario(
        name="through",
        site="s",
        dma_id="d",
        start=START,
        days=1,
        interval_s=3600,
        consumption_m3_per_day=240.0,
        sensors=(SensorSpec("in", "inlet"), SensorSpec("out", "outlet", 5.0)),
        leaks=(LeakSpec("l", 2.0, START + timedelta(hours=12)),),
        noise_fraction=0.0,
    )
    sim = simulate(scenario, seed=0)
    assert volume_m3(sim.readings, "in", START, START + DAY, 3600) == pytest.approx(384, rel=1e-5)
    assert volume_m3(sim.readings, "out", START, START + DAY, 3600) == pytest.approx(120, rel=1e-5)
    assert sim.billing[0].volume_m3 == pytest.approx(240)
