"""``leaksense simulate`` writes the files for a built-in or a YAML scenario, and refuses
a bad scenario with its line (``replay``: see the publish and replay tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from leaksense.core import cli as core_cli
from leaksense.simulator.files import read_billing_csv, read_readings_csv

FILES = ["billing-customers.csv", "billing.csv", "readings.csv", "truth.json"]


@pytest.fixture
def app() -> typer.Typer:
    """The real ``leaksense`` app, with every installed package's commands."""
    return core_cli.build_app()


def test_simulate_writes_the_files(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["simulate", "saint-savin", "--days", "3", "--seed", "9", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--start", "2026-02-02"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert len(read_readings_csv(out / "readings.csv")) == 3 * 288 * 4
    truth = json.loads((out / "truth.json").read_text())
    assert (truth["start"], truth["seed"], truth["days"]) == ("2026-02-02T00:00:00Z", 9, 3)
    assert "3456 readings from 4 sensors" in result.output
    assert "first day 75.0" in result.output


def test_simulate_a_scenario_file(app: typer.Typer, tmp_path: Path) -> None:
    source = Path(__file__).parents[2] / "simulator/src/leaksense/simulator/scenarios"
    scenario = tmp_path / "mine.yaml"
    text = (source / "rural-3dma.yaml").read_text().replace("name: rural-3dma", "name: mine")
    scenario.write_text(text)
    result = CliRunner().invoke(
        app, ["simulate", str(scenario), "--days", "2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mine: ")
    assert {b.dma_id for b in read_billing_csv(tmp_path / "billing.csv")} == {
        "r-bourg",
        "r-hameaux",
        "r-plaine",
    }


def test_a_bad_scenario_file_names_its_line(app: typer.Typer, tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("format: leaksense.scenario/1\nname: x\nsite: s\ndmas: []\n")
    result = CliRunner().invoke(app, ["simulate", str(scenario), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    unboxed = " ".join(result.output.replace("│", " ").split())  # rich wraps at 80 columns
    assert "bad.yaml line 4: dmas: Tuple should have at least 1 item" in unboxed
    assert not (tmp_path / "o").exists()


def test_unknown_scenario_is_a_usage_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "atlantis", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output
