"""Simulation files round-trip exactly, and a bad row fails the whole read with its line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leaksense.core.errors import InvalidInput
from leaksense.simulator.files import (
    read_billing_csv,
    read_readings_csv,
    read_truth_json,
    write_simulation,
)
from leaksense.simulator.generate import Simulation, simulate
from leaksense.simulator.scenario import Scenario, builtin_scenario, saint_savin
from leaksense.simulator.spec import MeterModelSpec


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(saint_savin(datetime(2026, 1, 5, tzinfo=UTC), days=2), seed=5)


def test_round_trip(sim: Simulation, tmp_path: Path) -> None:
    files = write_simulation(sim, tmp_path / "out")
    assert read_readings_csv(files.readings) == sim.readings
    assert read_billing_csv(files.billing) == sim.billing
    assert read_truth_json(files.truth) == sim.truth
    first_row = files.readings.read_text().splitlines()[1]
    assert first_row.startswith("2026-01-05T00:00:00Z,ss-inlet,")
    customers = files.customer_billing.read_text().splitlines()
    assert customers[0] == "customer_id,dma_id,period_start,period_end,volume_m3"
    assert len(customers) == 1 + len(sim.customer_billing)
    truth = json.loads(files.truth.read_text())
    assert truth["format"] == "leaksense.truth/1"
    assert truth["leaks"][0]["end"] == "2026-01-12T10:00:00Z"  # repaired after the window
    assert truth["leaks"][0]["volume_m3"] == pytest.approx(2.5 * 48, rel=0.01)


def test_meters_without_index_and_drifting_clocks_round_trip(tmp_path: Path) -> None:
    rural = simulate(builtin_scenario("rural-3dma", days=2), seed=1)
    files = write_simulation(rural, tmp_path)
    assert read_readings_csv(files.readings) == rural.readings
    spec = rural.scenario.spec
    models = {**spec.meter_models, "blind": MeterModelSpec(base="bulk-em", reports_index=False)}
    dma = spec.dmas[0].model_copy(
        update={"inlet": spec.dmas[0].inlet.model_copy(update={"meter": "blind"})}
    )
    blind = Scenario(
        spec.model_copy(update={"meter_models": models, "dmas": (dma, *spec.dmas[1:])}),
        rural.scenario.start,
        1,
    )
    files = write_simulation(simulate(blind, seed=1), tmp_path / "blind")
    readings = read_readings_csv(files.readings)
    assert {r.index_m3 for r in readings if r.sensor_id == "r-in-bourg"} == {None}


def test_offset_timestamps_are_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("time,sensor_id,flow_m3h,index_m3\n2026-01-05T01:00:00+01:00,a,1.5,\n")
    (reading,) = read_readings_csv(path)
    assert reading.time == datetime(2026, 1, 5, tzinfo=UTC)
    assert reading.index_m3 is None


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ("2026-01-05T00:05:00,ss-inlet,1.0,2.0", "time"),  # naive timestamp
        ("2026-01-05T00:05:00Z,ss inlet,1.0,2.0", "sensor_id"),
        ("2026-01-05T00:05:00Z,ss-inlet,nan,2.0", "flow_m3h"),
        ("2026-01-05T00:05:00Z,ss-inlet,1.0,-3", "index_m3"),
    ],
)
def test_bad_row_names_line_and_field(tmp_path: Path, bad_row: str, field: str) -> None:
    path = tmp_path / "r.csv"
    good = "2026-01-05T00:00:00Z,ss-inlet,1.0,1.0"
    path.write_text(f"time,sensor_id,flow_m3h,index_m3\n{good}\n{good}\n{bad_row}\n{good}\n")
    with pytest.raises(InvalidInput, match=rf"line 4, field {field}"):
        read_readings_csv(path)


def test_wrong_header_or_field_count(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("time,sensor,flow\n")
    with pytest.raises(InvalidInput, match="line 1: header"):
        read_readings_csv(path)
    path.write_text("time,sensor_id,flow_m3h,index_m3\n2026-01-05T00:00:00Z,a,1.0\n")
    with pytest.raises(InvalidInput, match="line 2: expected 4 fields"):
        read_readings_csv(path)


def test_bad_truth_file(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    path.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="not a truth file"):
        read_truth_json(path)
    path.write_text('{"format": "leaksense.truth/0"}')
    with pytest.raises(InvalidInput, match="format must be"):
        read_truth_json(path)
