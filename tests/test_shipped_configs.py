"""Every configuration file shipped in the repository loads through its own schema."""

from __future__ import annotations

import re
import tomllib
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


GATEWAY_CONFIGS = sorted(ROOT.glob("firmware-config/gateway/*.toml"))
ESPHOME_STATE_TOPIC = re.compile(r"(?P<node>[a-z0-9-]+)/sensor/(?P<name>[a-z0-9_]+)/state")


@pytest.mark.parametrize("path", GATEWAY_CONFIGS, ids=str)
def test_gateway_configs_map_esphome_state_topics_of_known_sensors(path: Path) -> None:
    """Each mapped topic is a node's ESPHome state topic, for a sensor of the network."""
    config = load_config(path)
    network = read_network_file(ROOT / "firmware-config/network-saint-savin.toml")
    known = {sensor.sensor_id for sensor in network.sensors}
    assert config.esphome
    for entry in config.esphome:
        match = ESPHOME_STATE_TOPIC.fullmatch(entry.topic)
        assert match is not None, entry.topic
        # The node id is the topic prefix and the broker user (firmware-config/esphome/).
        assert match["node"] == entry.sensor_id
        assert entry.sensor_id in known
    for dma in config.dmas:
        assert set(dma.inlets) | set(dma.outlets) <= known


@pytest.mark.parametrize("path", GATEWAY_CONFIGS, ids=str)
def test_gateway_configs_hold_no_secret(path: Path) -> None:
    data = tomllib.loads(path.read_text())
    assert "token" not in data.get("uplink", {})
    assert "password" not in data.get("mqtt", {})
    assert not re.search(r"^\s*(token|password)\s*=", path.read_text(), re.MULTILINE)
