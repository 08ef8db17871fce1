"""``leaksense simulate`` writes the three files (``replay``: see the publish tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from leaksense.core import cli as core_cli
from leaksense.simulator.files import read_readings_csv


@pytest.fixture
def app() -> typer.Typer:
    """The real ``leaksense`` app, with every installed package's commands."""
    return core_cli.build_app()


def test_simulate_writes_the_three_files(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["simulate", "saint-savin", "--days", "3", "--seed", "9", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--start", "2026-02-02"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["billing.csv", "readings.csv", "truth.json"]
    assert len(read_readings_csv(out / "readings.csv")) == 3 * 288 * 4
    assert json.loads((out / "truth.json").read_text())["start"] == "2026-02-02T00:00:00Z"
    assert "3456 readings" in result.output
    assert "before 75.00%" in result.output


def test_unknown_scenario_is_a_usage_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "atlantis", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output
