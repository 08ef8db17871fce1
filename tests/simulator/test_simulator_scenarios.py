"""Scenario files: the built-ins load and mean what they say, bad files are refused with
the file, line and field, every field is documented, and faults hit only the meters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from leaksense.core.errors import ConfigError
from leaksense.simulator import spec as spec_module
from leaksense.simulator.builtin import BUILTIN_NAMES
from leaksense.simulator.checks import grid_step_s
from leaksense.simulator.generate import simulate
from leaksense.simulator.scenario import Scenario, builtin_scenario, load_scenario
from leaksense.simulator.yamlfile import parse_scenario

DOC = Path(__file__).parents[2] / "docs" / "scenario-format.md"
TINY = """\
format: leaksense.scenario/1
name: tiny
site: s
start: 2026-01-05T00:00:00Z
days: 2
dmas:
  - dma_id: d
    mains_km: 5
    service_connections: 100
    avg_pressure_m: 50
    inlet: {sensor_id: in}
    consumers:
      - {type: household, count: 100, m3_per_day: 0.3}
    customer_meters:
      - {sensor_id: c, type: business, m3_per_day: 2}
"""


def tiny(extra: str = "", **replace: str) -> Scenario:
    text = TINY
    for old, new in replace.items():
        text = text.replace(old, new)
    return Scenario.from_spec(parse_scenario(text + extra, "tiny.yaml"))


def test_builtins_load_and_describe_what_the_issue_asks() -> None:
    rural = builtin_scenario("rural-3dma")
    assert [d.dma_id for d in rural.dmas] == ["r-bourg", "r-hameaux", "r-plaine"]
    assert sum(d.service_connections for d in rural.dmas) == 1200
    assert rural.start == datetime(2026, 5, 10, 22, tzinfo=UTC)  # local midnight
    kinds = {leak.kind for leak in rural.spec.leaks}
    assert kinds == {"background", "incipient", "burst"}
    assert ("r-link-bh", "r-bourg", "outlet") in rural.network_roles()
    assert ("r-link-bh", "r-hameaux", "inlet") in rural.network_roles()
    stress = builtin_scenario("stress")
    assert len(stress.sensors) == 1000
    assert len({s.sensor_id for s in stress.sensors}) == 1000
    assert builtin_scenario("saint-savin", days=3).days == 3
    assert BUILTIN_NAMES == ("saint-savin", "rural-3dma", "stress")


def test_times_are_local_relative_or_absolute() -> None:
    scenario = tiny(
        "leaks:\n  - {leak_id: l, dma: d, kind: burst, flow_m3h: 1, start: +1d2h30m}\n"
        "  - {leak_id: m, dma: d, kind: burst, flow_m3h: 1, start: 2026-01-05T12:00:00}\n",
    )
    first, second = scenario.spec.leaks
    assert first.start is not None and second.start is not None
    assert scenario.at(first.start) == scenario.start + timedelta(days=1, hours=2, minutes=30)
    assert scenario.at(second.start) == datetime(2026, 1, 5, 11, tzinfo=UTC)  # Paris, UTC+1


@pytest.mark.parametrize(
    ("change", "extra", "expected"),
    [
        ({"mains_km: 5": "mains_km: -5"}, "", r"tiny.yaml line 8: dmas.0.mains_km: Input should"),
        ({"    mains_km: 5\n": ""}, "", r"line 7: dmas.0.mains_km: Field required"),
        ({"days: 2": "days: 2\ncolour: blue"}, "", r"line 6: colour: Extra inputs"),
        (
            {},
            "leaks:\n  - {leak_id: l, dma: nowhere, kind: burst, flow_m3h: 1}\n",
            r"line 17: leaks.0.dma: unknown DMA 'nowhere'",
        ),
        ({"type: business": "type: bakery"}, "", r"line 15: .*type: unknown consumer type"),
        (
            {},
            "faults:\n  - {sensor_id: c, kind: dropout, start: soon, end: +1d}\n",
            r"line 17: faults.0.start: Value error, expected an ISO 8601",
        ),
        (
            {},
            "faults:\n  - {sensor_id: c, kind: flatline, start: +1d}\n",
            r"line 17: faults.0: Value error, a flatline fault needs an end",
        ),
        ({"days: 2": "days: 2\ninterval_s: 7"}, "", r"line 6: interval_s: must divide a day"),
        ({"days: 2": "days: 2\ndays: 3"}, "", r"line 6: days: key given twice"),
        ({"name: tiny": "name: [tiny"}, "", r"line \d+: invalid YAML"),
        ({"sensor_id: c,": "sensor_id: in,"}, "", r"line 15: .*duplicate sensor_id 'in'"),
    ],
)
def test_bad_files_name_line_and_field(change: dict[str, str], extra: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        tiny(extra, **change)


def test_a_cascade_must_not_loop(tmp_path: Path) -> None:
    text = TINY.replace("inlet: {sensor_id: in}", "inlet: {sensor_id: in, from_dma: d}")
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))} line 11: .*from_dma"):
        load_scenario(path)


def test_custom_types_and_meter_models_derive_from_built_ins() -> None:
    scenario = tiny(
        "consumer_types:\n  bakery: {base: business, hourly_profile: "
        + str([3.0] * 6 + [0.5] * 18)
        + "}\nmeter_models:\n  coarse: {base: customer-pulse, pulse_l: 100}\n",
        **{"type: business": "type: bakery", "m3_per_day: 2}": "m3_per_day: 2, meter: coarse}"},
    )
    assert scenario.consumer_types["bakery"].weekday_factors[6] == 0.40  # from business
    assert scenario.meter_models["coarse"].pulse_l == 100
    assert scenario.meter_models["coarse"].under_registration == 0.03  # from customer-pulse


def _documented_fields() -> set[str]:
    models = [
        m
        for m in vars(spec_module).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == spec_module.__name__
    ]
    return {name for model in models for name in model.model_fields}


def test_every_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(f for f in _documented_fields() if f"`{f}`" not in text)
    assert not missing, f"docs/scenario-format.md does not document {missing}"


def test_faults_change_the_readings_not_the_truth() -> None:
    faults = """\
faults:
  - {sensor_id: c, kind: dropout, start: +2h, end: +4h}
  - {sensor_id: c, kind: spikes, start: +6h, end: +1d, count: 4, spike_flow_m3h: 500}
  - {sensor_id: c, kind: counter_reset, start: +1d}
  - {sensor_id: in, kind: flatline, start: +3h, end: +5h}
  - {sensor_id: in, kind: clock_drift, start: +12h, drift_s_per_day: 60}
"""
    clean, faulty = simulate(tiny(), seed=3), simulate(tiny(faults), seed=3)
    assert faulty.truth.dmas == clean.truth.dmas
    assert faulty.billing == clean.billing
    assert [f.kind for f in faulty.truth.faults] == [
        "dropout",
        "spikes",
        "counter_reset",
        "flatline",
        "clock_drift",
    ]
    start_s = int(clean.scenario.start.timestamp())
    customer, inlet = faulty.series_of("c"), faulty.series_of("in")
    gap = (customer.times_s >= start_s + 7200) & (customer.times_s < start_s + 14400)
    assert not gap.any() and len(customer) == len(clean.series_of("c")) - 24
    assert (customer.flow_m3h == 500).sum() == 4
    assert customer.index_m3 is not None
    assert customer.index_m3[customer.times_s == start_s + 86400][0] == 0.0
    stuck = (inlet.times_s >= start_s + 3 * 3600) & (inlet.times_s < start_s + 5 * 3600)
    assert len(set(inlet.flow_m3h[stuck].tolist())) == 1
    last_shift_s = int(inlet.times_s[-1] - clean.series_of("in").times_s[-1])
    assert last_shift_s == round(60 * (1.5 - 300 / 86400))  # 36 h minus one step of drift
    assert np.array_equal(inlet.flow_m3h[~stuck], clean.series_of("in").flow_m3h[~stuck])


def test_rounds_give_billing_periods_that_are_not_calendar_months() -> None:
    scenario = tiny(
        "billing: {cycle_days: 30, first_read: 2025-12-20T10:00:00, rounds: 3}\n",
        **{"days: 2": "days: 40"},
    )
    sim = simulate(scenario, seed=0)
    bounds = {(b.period_start, b.period_end) for b in sim.billing}
    assert len(bounds) > 3
    assert all(b.period_start.day != 1 or b.period_start == scenario.start for b in sim.billing)
    assert sum(b.volume_m3 for b in sim.billing) == pytest.approx(sim.truth.dmas[0].billed_m3)
    for r in ("d.household.0.r0", "d.household.0.r1", "d.household.0.r2"):
        periods = sorted(
            (b.period_start, b.period_end) for b in sim.customer_billing if b.customer_id == r
        )
        assert periods[0][0] == scenario.start and periods[-1][1] == scenario.end
        assert all(a[1] == b[0] for a, b in pairwise(periods))


def test_a_built_in_type_changed_by_name_keeps_its_other_fields() -> None:
    scenario = tiny("consumer_types:\n  household: {seasonal_amplitude: 0.0}\n")
    household = scenario.consumer_types["household"]
    assert household.seasonal_amplitude == 0.0
    assert household.night_use_l_h == 1.6


@pytest.mark.parametrize(("intervals", "step_s"), [((300, 900), 300), ((1200, 3600), 600)])
def test_the_grid_step_divides_every_interval(intervals: tuple[int, int], step_s: int) -> None:
    first, second = intervals
    scenario = tiny(
        **{
            "days: 2": f"days: 2\ninterval_s: {first}",
            "m3_per_day: 2}": f"m3_per_day: 2, interval_s: {second}}}",
        }
    )
    assert grid_step_s(scenario.spec) == step_s
    sim = simulate(scenario, seed=0)
    assert len(sim.series_of("in")) == 2 * 86400 // first
    assert len(sim.series_of("c")) == 2 * 86400 // second


def test_stress_has_a_thousand_sensors_reporting_every_15_minutes() -> None:
    sim = simulate(builtin_scenario("stress", days=1), seed=0)
    assert sim.reading_count == 1000 * 96
    assert len(sim.truth.dmas) == 20
    assert {s.interval_s for s in sim.scenario.sensors} == {900}
