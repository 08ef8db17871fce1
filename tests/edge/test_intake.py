"""Turning MQTT messages into readings: JSON topics and mapped ESPHome states."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from leaksense.core.errors import ConfigError, InvalidMessage
from leaksense.core.messages import IngestBatch, IngestResult, SensorPayload
from leaksense.edge.config import GatewayConfig, load_config, parse_config
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.intake import MessageParser
from leaksense.edge.outbox_sqlite import SqliteOutbox

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


# --- the msgspec fast path agrees with SensorPayload -------------------------------------

TOPIC = "leaksense/saint-savin/ss-inlet/flow"
AGREEMENT = [
    b'{"time": "2026-01-05T03:15:00Z", "flow_m3h": 21.5}',
    b'{"time":"2026-01-05T03:15:00+01:00","flow_m3h":-3,"index_m3":10}',
    b'{"time":"2026-01-05 03:15:00.5z","flow_m3h":0,"index_m3":null}',
    b'{"time":"2026-01-05T03:15:00.1234567Z","flow_m3h":1}',  # pydantic truncates: kept
    b'{"time":"2026-01-05T03:15:00.9999999+01:00","flow_m3h":12.1234567}',
    b'{"time":"2026-01-05T03:15:00\\u005a","flow_m3h":1}',  # escapes: pydantic decides
    b'{"time":1767225600,"flow_m3h":"1.5"}',  # lax forms pydantic accepts: still accepted
    b'{"time":"2026-01-05T03:15Z","flow_m3h":1}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":1,"flow_m3h":2}',
    # refused, with pydantic's words
    b'{"time":"2026-01-05T03:15:00","flow_m3h":1}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":1e999}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":NaN}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":1,"index_m3":1e400}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":1,"index_m3":-1}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":100000.1}',
    b'{"time":"2026-01-05T03:15:00Z","flow_m3h":1,"extra":1}',
    b'{"time":"2026-01-05T03:15:00Z"}',
    b'{"time":"0001-01-01T00:00:00+01:00","flow_m3h":1}',  # before year 1 in UTC
    b'{"time":"2026-01-05T24:00:00Z","flow_m3h":1}',
    b"[1, 2]",
    b"",
]


class NoUplink:
    def send(self, batch: IngestBatch) -> IngestResult:
        raise AssertionError("nothing is sent in these tests")


@pytest.mark.parametrize("payload", AGREEMENT)
def test_payloads_are_judged_as_sensor_payload_judges_them(payload: bytes) -> None:
    try:
        expected = SensorPayload.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "payload"
        with pytest.raises(InvalidMessage) as raised:
            parser().parse_row(TOPIC, payload)
        assert str(raised.value) == f"{TOPIC}: {field}: {first['msg']}"
        return
    sensor_id, time, flow_m3h, index_m3 = parser().parse_row(TOPIC, payload)
    assert (sensor_id, time, flow_m3h, index_m3) == (
        "ss-inlet",
        expected.time,
        expected.flow_m3h,
        expected.index_m3,
    )
    assert time.tzinfo is UTC


def test_bad_payloads_are_rejected_and_counted_by_the_gateway(tmp_path: Path) -> None:
    config = parse_config(
        {"gateway_id": "gw-1", "site": "saint-savin", "outbox": {"path": str(tmp_path / "o.db")}}
    )
    with SqliteOutbox(config.outbox.path) as outbox:
        gateway = Gateway(
            config, DetectionEngine("gw-1", config.engine_settings()), outbox, NoUplink()
        )
        for payload in AGREEMENT:
            gateway.handle_message(TOPIC, payload)
        assert gateway.group.commit() == len(AGREEMENT)
        assert gateway.stats.messages_received == len(AGREEMENT)
        assert gateway.stats.messages_rejected == 12
        assert outbox.depth() == 9
        batch = outbox.peek_batch(100)
        assert batch is not None
        assert batch.readings[3].time == datetime(2026, 1, 5, 3, 15, 0, 123456, tzinfo=UTC)
