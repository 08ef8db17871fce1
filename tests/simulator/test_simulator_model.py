"""The pieces of the model behave like the real thing: pulse meters miss drips, schools
close on holidays, nights carry legitimate use, leaks follow pressure and grow, DST
days have 23 local hours while the output stays regular in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from leaksense.simulator.demand import CONSUMER_TYPES, group_flow_m3h, irrigation_m3h, pattern
from leaksense.simulator.leaks import ResolvedLeak, pressure_m
from leaksense.simulator.meters import METER_MODELS, MeterModel, read, registered_m3h
from leaksense.simulator.spec import LeakSpec
from leaksense.simulator.timegrid import (
    TimeGrid,
    easter,
    french_public_holidays,
    make_grid,
    unix_s,
)

PARIS = ZoneInfo("Europe/Paris")
MAY_11 = datetime(2026, 5, 11, tzinfo=PARIS)  # Monday; Thursday 14 is Ascension


def grid(start: datetime = MAY_11, days: int = 7, step_s: int = 300) -> TimeGrid:
    return make_grid(start, days, step_s, PARIS, holidays=french_public_holidays([start.year]))


def reading(model: MeterModel, flow_m3h: float, days: int = 1, interval_s: int = 300) -> np.ndarray:
    g = grid(days=days)
    out = read(
        model,
        registered_m3h(model, np.full(g.n, flow_m3h)),
        grid_step_s=g.step_s,
        start_s=g.start_s,
        interval_s=interval_s,
        initial_index_m3=0.0,
        rng=np.random.default_rng(0),
    )
    return out.flow_m3h


def test_a_10_litre_pulse_meter_cannot_see_a_drip() -> None:
    model = MeterModel("pulse-10l", pulse_l=10.0, decimals=4)
    flows = reading(model, 0.05)  # 4.2 L per 5 min, less than one pulse
    assert set(flows.tolist()) <= {0.0, 0.12}  # one pulse in 5 min = 0.12 m³/h
    assert (flows == 0).mean() > 0.55
    assert not np.isclose(flows, 0.05).any()
    assert flows.sum() * 300 / 3600 == pytest.approx(1.2, abs=0.01)  # the register keeps count
    assert (reading(model, 0.05, interval_s=3600) > 0).all()  # hourly, 5 pulses: visible


def test_below_its_starting_flow_a_customer_meter_reports_zero() -> None:
    model = METER_MODELS["customer-pulse-10l"]  # starts at 12 L/h
    assert (reading(model, 0.010) == 0).all()
    assert reading(model, 0.5).mean() == pytest.approx(0.5 * 0.95, rel=0.01)  # under-registers


def test_quantisation_and_noise() -> None:
    coarse = reading(MeterModel("coarse", decimals=1), 3.14159)
    assert set(coarse.tolist()) == {3.1}
    noisy = reading(MeterModel("noisy", noise_fraction=0.02, decimals=6), 10.0, days=7)
    assert noisy.std() == pytest.approx(0.2, rel=0.1)
    assert noisy.mean() == pytest.approx(10.0, rel=0.002)


def test_school_is_closed_on_ascension_and_at_weekends() -> None:
    g = grid()
    school = pattern(CONSUMER_TYPES["school"], g)
    day = g.local_day - g.local_day[0]
    tuesday, thursday, sunday = (float(school[day == d].mean()) for d in (1, 3, 6))
    assert tuesday > 1.0
    assert thursday < 0.05 * tuesday
    assert sunday < 0.05 * tuesday
    assert g.public_holiday[day == 3].all()
    assert easter(2026) == date(2026, 4, 5)


def test_night_flow_includes_legitimate_night_use() -> None:
    g = grid()
    flow = group_flow_m3h(
        CONSUMER_TYPES["household"],
        pattern(CONSUMER_TYPES["household"], g),
        g,
        count=1000,
        m3_per_day=0.3,
        night_use_l_h=1.6,
        rng=np.random.default_rng(1),
    )
    night = (g.local_hour >= 3) & (g.local_hour < 4)
    assert flow[night].min() >= 1.6  # 1 000 properties x 1.6 L/h
    assert flow[night].mean() < 0.35 * flow.mean()
    # 300 m³/day on an average day; mid-May is 4 % above it (season), Ascension 6 %
    assert flow.sum() * g.step_h / 7 == pytest.approx(300 * 1.05, rel=0.03)


def test_five_minute_flows_are_as_noisy_whatever_the_simulation_step() -> None:
    """A 1-minute meter elsewhere in a scenario makes the grid step 60 s: the
    5-minute flows a DMA meter reports must not become √5 times smoother."""
    household = CONSUMER_TYPES["household"]

    def five_minute_cv(step_s: int) -> float:
        g = grid(days=14, step_s=step_s)
        flow = group_flow_m3h(
            household,
            np.ones(g.n),  # a flat demand: only the noise varies
            g,
            count=50,
            m3_per_day=0.3,
            night_use_l_h=0.0,
            rng=np.random.default_rng(3),
        )
        five = flow.reshape(-1, 300 // step_s).mean(axis=1)
        return float(five.std() / five.mean())

    assert five_minute_cv(60) == pytest.approx(five_minute_cv(300), rel=0.05)


def test_gardens_are_watered_on_summer_evenings_only() -> None:
    garden = CONSUMER_TYPES["garden-household"]
    rng = np.random.default_rng(2)
    july = grid(datetime(2026, 7, 6, tzinfo=PARIS), days=14)
    january = grid(datetime(2026, 1, 5, tzinfo=PARIS), days=14)
    summer = irrigation_m3h(garden, 100, july, rng)
    evening = (july.local_hour >= 19) & (july.local_hour < 22)
    assert summer[~evening].max() == 0
    assert summer[evening].max() == pytest.approx(100 * 0.15 / 3)
    assert irrigation_m3h(garden, 100, january, rng).max() == 0


def test_dst_day_has_23_local_hours_but_utc_steps_stay_regular() -> None:
    g = grid(datetime(2026, 3, 28, tzinfo=PARIS), days=3)  # DST starts Sunday 29 March
    times = g.times_s()
    assert (np.diff(times) == 300).all()
    day = g.local_day - g.local_day[0]
    assert [(day == d).sum() * 300 / 3600 for d in range(3)] == [24, 23, 24]
    assert not ((day == 1) & (g.local_hour >= 2) & (g.local_hour < 3)).any()


def test_pressure_is_highest_when_demand_is_lowest() -> None:
    demand = np.array([1.0, 2.0, 3.0, 2.0])
    pressure = pressure_m(demand, avg_pressure_m=50, headloss_m=5)
    assert pressure.mean() == pytest.approx(50)
    assert pressure.argmax() == 0 and pressure.argmin() == 2


def leak(**fields: object) -> LeakSpec:
    return LeakSpec.model_validate({"leak_id": "l", "dma": "d", **fields})


def test_leak_flow_follows_favad() -> None:
    g = grid(days=1)
    pressure = np.where(np.arange(g.n) % 2 == 0, 60.0, 40.0)
    burst = ResolvedLeak(leak(kind="burst", flow_m3h=6.0), None, None)
    flow = burst.flow_m3h(g, pressure, avg_pressure_m=50.0)
    assert flow[0] / flow[1] == pytest.approx((60 / 40) ** 0.5)
    background = ResolvedLeak(leak(kind="background", flow_m3h=1.0, n1=1.5), None, None)
    assert background.flow_m3h(g, pressure, 50.0)[0] == pytest.approx((60 / 50) ** 1.5)


def test_burst_steps_up_at_start_and_stops_at_repair() -> None:
    g = grid(days=1)
    start_s, repair_s = g.start_s + 6 * 3600, g.start_s + 10 * 3600 + 150
    burst = ResolvedLeak(leak(kind="burst", flow_m3h=6.0), start_s, repair_s)
    flow = burst.flow_m3h(g, np.full(g.n, 50.0), 50.0)
    assert flow[: 6 * 12].max() == 0
    assert flow[6 * 12] == 6.0
    assert flow[10 * 12] == pytest.approx(3.0)  # half the step before the repair
    assert flow[10 * 12 + 1 :].max() == 0
    assert flow.sum() * g.step_h == pytest.approx(6.0 * (4 + 150 / 3600))


@pytest.mark.parametrize(
    ("growth", "expected_after_4_days_m3h"),
    [
        ({"growth": "linear", "growth_m3h_per_day": 0.25}, 1.1),
        ({"growth": "exponential", "growth_per_day": 0.5}, 0.1 * np.exp(2.0)),
    ],
)
def test_incipient_leak_grows_to_its_cap(
    growth: dict[str, object], expected_after_4_days_m3h: float
) -> None:
    g = grid(days=7, step_s=3600)
    spec = leak(kind="incipient", flow_m3h=0.1, max_flow_m3h=1.5, **growth)
    flow = ResolvedLeak(spec, g.start_s, None).reference_m3h(g)
    assert (np.diff(flow) >= 0).all()
    assert flow[0] == pytest.approx(0.1, abs=0.03)
    assert flow[4 * 24] == pytest.approx(expected_after_4_days_m3h, rel=0.02)
    assert flow[-1] == 1.5


def test_unix_seconds_round_trip() -> None:
    assert unix_s(datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=1)) == 1_767_571_201
