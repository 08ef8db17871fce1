"""Replaying over MQTT: every reading arrives once, on the topic and in the format a real
node would use (Leaksense JSON, or ESPHome's plain L/min state), and the publisher
returns only after the broker acknowledged everything.

The subscriber connects and waits for its SUBACK before anything is published, so a
message missing at the end is a real loss, not a race.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import pytest
import typer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from leaksense.core import cli as core_cli
from leaksense.core.errors import ConfigError, ServiceUnavailable
from leaksense.core.messages import Reading, SensorPayload
from leaksense.simulator.generate import Simulation, simulate
from leaksense.simulator.publish import (
    Broker,
    encode,
    esphome_mapping,
    esphome_nodes,
    publish_readings,
)
from leaksense.simulator.scenario import saint_savin

START = datetime(2026, 1, 5, tzinfo=UTC)
WAIT_S = 20.0


class Server(Protocol):
    host: str
    port: int


class Subscriber:
    """A paho client on ``#`` that records ``(topic, payload)`` pairs."""

    def __init__(self, server: Server) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(server.host, server.port)
        self.client.loop_start()
        self.client.subscribe("#", qos=1)
        assert self._subscribed.wait(WAIT_S), "no SUBACK"

    def _on_subscribe(self, _c: Any, _u: Any, _m: int, _rc: list[ReasonCode], _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload)))
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, WAIT_S)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Server) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto)
    yield sub
    sub.close()


@pytest.fixture(scope="module")
def one_day() -> Simulation:
    return simulate(saint_savin(START, days=1), seed=3)


def broker_of(server: Server) -> Broker:
    return Broker.from_url(f"mqtt://{server.host}:{server.port}")


def expected(readings: list[Reading], nodes: dict[str, str]) -> Counter[tuple[str, bytes]]:
    return Counter(encode(r, "saint-savin", nodes) for r in readings)


def test_esphome_mapping_is_the_gateway_config() -> None:
    assert esphome_mapping(saint_savin(START)) == [
        {"topic": f"{node}/sensor/flow/state", "sensor_id": node, "unit": "L/min"}
        for node in ("ss-school", "ss-farm", "ss-townhall")
    ]


def test_encoding_json_and_esphome() -> None:
    reading = Reading(sensor_id="ss-farm", time=START, flow_m3h=0.740_7, index_m3=3.0)
    assert encode(reading, "saint-savin", {"ss-farm": "farm"}) == (
        "farm/sensor/flow/state",
        b"12.345",
    )
    topic, payload = encode(reading, "saint-savin", {})
    assert topic == "leaksense/saint-savin/ss-farm/flow"
    assert SensorPayload.model_validate_json(payload) == SensorPayload(
        time=START, flow_m3h=0.740_7, index_m3=3.0
    )


def test_broker_urls() -> None:
    assert Broker.from_url("mqtt://u:p%40ss@gw.local") == Broker("gw.local", 1883, "u", "p@ss")
    assert Broker.from_url("mqtts://gw:9999").tls
    with pytest.raises(ConfigError):
        Broker.from_url("http://gw:1883")


def test_unreachable_broker_is_service_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reading = Reading(sensor_id="a", time=START, flow_m3h=1.0)
    with pytest.raises(ServiceUnavailable, match="cannot reach"):
        publish_readings([reading], Broker("127.0.0.1", port), site="s")


@pytest.mark.mqtt
def test_every_reading_arrives_with_its_topic_and_payload(
    mosquitto: Server, subscriber: Subscriber, one_day: Simulation
) -> None:
    nodes = esphome_nodes(one_day.scenario)
    result = publish_readings(
        one_day.readings, broker_of(mosquitto), site="saint-savin", esphome=nodes, max_in_flight=50
    )
    total = len(one_day.readings)
    assert (result.published, result.acknowledged, result.interrupted) == (total, total, False)
    received = subscriber.wait_for(total)
    assert Counter(received) == expected(one_day.readings, nodes)
    assert {topic for topic, _ in received} == {
        "leaksense/saint-savin/ss-inlet/flow",
        "ss-school/sensor/flow/state",
        "ss-farm/sensor/flow/state",
        "ss-townhall/sensor/flow/state",
    }


@pytest.mark.mqtt
def test_shift_to_now_and_pacing(mosquitto: Server, subscriber: Subscriber) -> None:
    readings = [
        Reading(sensor_id="a", time=START + timedelta(seconds=300 * k), flow_m3h=1.0)
        for k in range(3)
    ]
    began = time.monotonic()
    publish_readings(readings, broker_of(mosquitto), site="s", speed=1200, shift_to_now=True)
    assert time.monotonic() - began >= 0.45  # 600 s of readings at 1200x
    times = [SensorPayload.model_validate_json(p).time for _, p in subscriber.wait_for(3)]
    assert abs(times[0] - datetime.now(UTC)) < timedelta(seconds=10)
    assert times[2] - times[0] == timedelta(seconds=600)


@pytest.mark.mqtt
def test_stop_ends_the_replay_cleanly(mosquitto: Server, one_day: Simulation) -> None:
    stop, sent = threading.Event(), []

    def progress(n: int) -> None:
        sent.append(n)
        if len(sent) == 10:
            stop.set()

    result = publish_readings(
        one_day.readings, broker_of(mosquitto), site="s", on_progress=progress, stop=stop
    )
    assert (result.published, result.acknowledged, result.interrupted) == (10, 10, True)


@pytest.fixture
def app() -> typer.Typer:
    """The real ``leaksense`` app."""
    return core_cli.build_app()


@pytest.mark.mqtt
def test_cli_replays_a_csv_at_max_speed(
    app: typer.Typer, mosquitto: Server, subscriber: Subscriber, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "sim"
    assert (
        runner.invoke(app, ["simulate", "saint-savin", "--days", "1", "--out", str(out)]).exit_code
        == 0
    )
    broker = f"mqtt://{mosquitto.host}:{mosquitto.port}"
    args = ["replay", str(out / "readings.csv"), "--max-speed", "--site", "test-site"]
    result = runner.invoke(app, [*args, "--esphome", "ss-farm=farm-node", "--broker", broker])
    assert result.exit_code == 0, result.output
    assert "1152 published, 1152 acknowledged" in result.output
    topics = Counter(topic for topic, _ in subscriber.wait_for(1152))
    assert topics["farm-node/sensor/flow/state"] == 288
    assert topics["leaksense/test-site/ss-inlet/flow"] == 288
    assert topics["leaksense/test-site/ss-school/flow"] == 288
