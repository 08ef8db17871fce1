"""Every configuration file shipped in the repository loads through its own schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from leaksense.edge.config import load_config
from leaksense.server.services.entities import read_network_file

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("path", sorted(ROOT.glob("firmware-config/gateway/*.toml")), ids=str)
def test_gateway_configs_load(path: Path) -> None:
    config = load_config(path)
    assert config.gateway_id
    assert all(e.sensor_id for e in config.esphome)


def test_environment_overrides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENSE_GATEWAY_MQTT_PASSWORD", "from-env")
    monkeypatch.setenv("LEAKSENSE_GATEWAY_UPLINK_URL", "https://central.example.org")
    config = load_config(ROOT / "firmware-config/gateway/gateway.toml")
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env"
    assert config.uplink.url == "https://central.example.org"


@pytest.mark.parametrize("path", sorted(ROOT.glob("firmware-config/network-*.toml")), ids=str)
def test_network_files_load(path: Path) -> None:
    network = read_network_file(path)
    assert any(s.role == "inlet" for s in network.sensors)
