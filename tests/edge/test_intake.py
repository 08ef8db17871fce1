"""Turning MQTT messages into readings: JSON topics and mapped ESPHome states."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leaksense.core.errors import ConfigError, InvalidMessage
from leaksense.edge.config import GatewayConfig, load_config, parse_config
from leaksense.edge.intake import MessageParser

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CONFIG = parse_config(
    {
        "gateway_id": "gw-1",
        "site": "saint-savin",
        "esphome": [
            {"topic": "ss-school/sensor/flow/state", "sensor_id": "ss-school", "unit": "L/min"},
            {"topic": "ss-farm/sensor/flow/state", "sensor_id": "ss-farm", "unit": "m3/h"},
        ],
    }
)


def parser() -> MessageParser:
    return MessageParser(CONFIG)


def test_json_payload_becomes_reading() -> None:
    payload = json.dumps({"time": "2026-01-05T03:15:00Z", "flow_m3h": 21.5, "index_m3": 10.0})
    reading = parser().parse("leaksense/saint-savin/ss-inlet/flow", payload.encode(), NOW)
    assert reading.sensor_id == "ss-inlet"
    assert reading.flow_m3h == 21.5
    assert reading.index_m3 == 10.0
    assert reading.time == datetime(2026, 1, 5, 3, 15, tzinfo=UTC)


def test_esphome_state_is_converted_from_litres_per_minute() -> None:
    reading = parser().parse("ss-school/sensor/flow/state", b"12.5", NOW)
    assert reading.sensor_id == "ss-school"
    assert reading.flow_m3h == pytest.approx(0.75)  # 12.5 L/min = 0.75 m³/h
    assert reading.time == NOW


def test_esphome_state_in_cubic_metres_per_hour_is_kept() -> None:
    assert parser().parse("ss-farm/sensor/flow/state", b" 3.2 ", NOW).flow_m3h == 3.2


@pytest.mark.parametrize(
    ("topic", "payload", "message"),
    [
        ("leaksense/saint-savin/ss-inlet/flow", b"not json", "payload"),
        ("leaksense/saint-savin/ss-inlet/flow", b'{"time": "2026-01-05T03:15:00"}', "time"),
        (
            "leaksense/saint-savin/ss-inlet/flow",
            b'{"time": "2026-01-05T03:15:00Z", "flow_m3h": "abc"}',
            "flow_m3h",
        ),
        ("leaksense/saint-savin/flow", b"{}", "not leaksense/<site>/<sensor_id>/flow"),
        ("ss-school/sensor/flow/state", b"unavailable", "not a number"),
        ("ss-school/sensor/flow/state", b"nan", "finite"),
        ("leaksense/saint-savin/ss-inlet/flow", b"x" * 5000, "exceeds"),
    ],
)
def test_bad_messages_say_why(topic: str, payload: bytes, message: str) -> None:
    with pytest.raises(InvalidMessage, match=message):
        parser().parse(topic, payload, NOW)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('gateway_id = "gw-1"\nsite = "s"\n[mqtt]\nport = 99999\n')
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_config(path)
    path.write_text('gateway_id = "gw-1"\n[mqtt\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)


def test_token_comes_from_environment_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = GatewayConfig.model_validate(
        {"gateway_id": "gw-1", "site": "s", "uplink": {"token_file": str(token_file)}}
    )
    assert config.uplink_token() == "from-file"
    monkeypatch.setenv("LEAKSENSE_GATEWAY_TOKEN", "from-env")
    assert config.uplink_token() == "from-env"
    monkeypatch.delenv("LEAKSENSE_GATEWAY_TOKEN")
    with pytest.raises(ConfigError, match="no uplink token"):
        GatewayConfig(gateway_id="gw-1", site="s").uplink_token()
