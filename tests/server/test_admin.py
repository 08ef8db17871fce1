"""Administration: settings safety, network files, billing import, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leaksense.core.cli import build_app
from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.server.services.billing import parse_billing_csv
from leaksense.server.services.entities import read_network_file
from leaksense.server.settings import load_settings

NETWORK = """
[[sites]]
site_id = "saint-savin"
name = "Saint-Savin"

[[dmas]]
dma_id = "ss-dma"
site_id = "saint-savin"
name = "Réseau"

[[sensors]]
sensor_id = "ss-inlet"
site_id = "saint-savin"
dma_id = "ss-dma"
role = "inlet"
"""


def test_production_refuses_missing_or_placeholder_secrets() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(mode="production")
    with pytest.raises(ConfigError, match="INFLUX_PASSWORD"):
        load_settings(
            mode="production",
            database_url="postgresql://db/leaksense",
            reading_store="influxdb",
            influx_username="leaksense",
            influx_password="change-me",
        )
    ok = load_settings(
        mode="production",
        database_url="postgresql://db/leaksense",
        reading_store="influxdb",
        influx_username="leaksense",
        influx_password="a-long-random-password",
    )
    assert ok.mode == "production"


def test_environment_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENSE_SERVER_READING_STORE", "cassandra")
    with pytest.raises(ConfigError, match="reading_store"):
        load_settings()


def test_billing_csv_errors_give_the_line() -> None:
    header = "dma_id,period_start,period_end,volume_m3\n"
    good = "ss-dma,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,18000\n"
    assert len(parse_billing_csv(header + good)) == 1
    with pytest.raises(InvalidInput, match="line 3: volume_m3"):
        parse_billing_csv(header + good + "ss-dma,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,lots\n")
    with pytest.raises(InvalidInput, match=r"line 2: .*period_end must be after"):
        parse_billing_csv(header + "ss-dma,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z,1\n")
    with pytest.raises(InvalidInput, match="missing column"):
        parse_billing_csv("dma_id,volume_m3\nss-dma,1\n")


def test_network_file_errors_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "network.toml"
    path.write_text(NETWORK.replace('role = "inlet"', 'role = "pump"'))
    with pytest.raises(ConfigError, match=r"sensors\.0\.role"):
        read_network_file(path)


def test_cli_administration_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    app = build_app()
    (tmp_path / "network.toml").write_text(NETWORK)
    result = runner.invoke(app, ["server", "load-network", str(tmp_path / "network.toml")])
    assert result.exit_code == 0, result.output
    assert "loaded 3 entities" in result.output
    result = runner.invoke(app, ["server", "add-gateway", "gw-1", "--site", "saint-savin"])
    assert result.exit_code == 0
    assert result.output.startswith("lks_")
    bad = runner.invoke(app, ["server", "add-gateway", "gw-2", "--site", "nowhere"])
    assert bad.exit_code != 0
    billing_csv = tmp_path / "billing.csv"
    billing_csv.write_text(
        "dma_id,period_start,period_end,volume_m3\nss-dma,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,600\n"
    )
    result = runner.invoke(app, ["server", "import-billing", str(billing_csv)])
    assert result.exit_code == 0
    assert "imported 1" in result.output
    result = runner.invoke(
        app, ["yield", "ss-dma", "--start", "2026-01-01T00:00:00", "--end", "2026-01-02T00:00:00"]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInput)
    assert "no inlet readings" in str(result.exception)
