"""Replaying over MQTT: every reading arrives once, on the topic and in the format a real
node would use (Leaksense JSON, or ESPHome's plain L/min state), and the publisher
returns only after the broker acknowledged everything.

The subscriber connects and waits for its SUBACK before anything is published, so a
message missing at the end is a real loss, not a race.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
from services import MOSQUITTO_BINARY, MosquittoServer, require_binary

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
    """Progress comes in batches; a stop set from one ends the replay with all sent acked."""
    stop, sent = threading.Event(), []

    def progress(n: int) -> None:
        sent.append(n)
        stop.set()

    day_per_second = 86_400  # progress is reported every 0.1 s: about a tenth in
    result = publish_readings(
        one_day.readings,
        broker_of(mosquitto),
        site="s",
        on_progress=progress,
        stop=stop,
        speed=day_per_second,
    )
    assert result.interrupted
    assert 0 < result.published == result.acknowledged == sum(sent) < len(one_day.readings)


@pytest.mark.mqtt
def test_ctrl_c_ends_the_replay_cleanly(mosquitto: Server) -> None:
    readings = [
        Reading(sensor_id="a", time=START + timedelta(minutes=k), flow_m3h=1.0) for k in range(5)
    ]
    calls = 0

    def progress(_n: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt

    # 1 minute of readings per second: the first is reported before the wait for the second.
    result = publish_readings(
        readings, broker_of(mosquitto), site="s", speed=60, on_progress=progress
    )
    assert (result.published, result.acknowledged, result.interrupted) == (1, 1, True)


@pytest.mark.mqtt
def test_progress_counts_every_message_and_the_window_holds(
    mosquitto: Server, subscriber: Subscriber, one_day: Simulation
) -> None:
    sent: list[int] = []
    readings = one_day.readings[:300]
    result = publish_readings(
        readings, broker_of(mosquitto), site="s", max_in_flight=1, on_progress=sent.append
    )
    assert sum(sent) == result.acknowledged == len(readings)
    assert len(subscriber.wait_for(len(readings))) == len(readings)


@pytest.mark.mqtt
def test_a_broker_restart_is_survived(mosquitto: MosquittoServer, subscriber: Subscriber) -> None:
    """The broker goes away between two readings: the replay reconnects and finishes."""
    readings = [
        Reading(sensor_id="a", time=START + timedelta(seconds=k), flow_m3h=1.0) for k in range(3)
    ]

    def restart_after_the_first_message() -> None:
        subscriber.wait_for(1)
        mosquitto.restart()

    restarter = threading.Thread(target=restart_after_the_first_message)
    restarter.start()
    try:
        result = publish_readings(readings, Broker.from_url(mosquitto.url), site="s", speed=1)
    finally:
        restarter.join()
    assert (result.published, result.acknowledged, result.interrupted) == (3, 3, False)


@pytest.mark.mqtt
def test_max_in_flight_must_be_positive(mosquitto: Server) -> None:
    reading = Reading(sensor_id="a", time=START, flow_m3h=1.0)
    with pytest.raises(ConfigError, match="max_in_flight"):
        publish_readings([reading], broker_of(mosquitto), site="s", max_in_flight=0)


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


def line_protocol(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "export.lp"
    path.write_text("# DML\n# CONTEXT-DATABASE: leaksense\n" + "\n".join(lines) + "\n")
    return path


FIVE_MINUTES_NS = 300 * 10**9
START_NS = int(START.timestamp()) * 10**9


@pytest.mark.mqtt
def test_cli_replays_an_influx_export_with_the_broker_from_the_environment(
    app: typer.Typer, mosquitto: Server, subscriber: Subscriber, tmp_path: Path
) -> None:
    path = line_protocol(
        tmp_path,
        [
            f"flow,sensor_id=a flow_m3h=1.5,index_m3=10 {START_NS}",
            f"flow,sensor_id=b flow_m3h=0.6 {START_NS}",
            f"flow,sensor_id=a flow_m3h=1.5,index_m3=10.125 {START_NS + FIVE_MINUTES_NS}",
        ],
    )
    env = {"LEAKSENSE_MQTT_URL": f"mqtt://{mosquitto.host}:{mosquitto.port}"}
    args = ["replay", str(path), "--max-speed", "--site", "t", "--esphome", "b=node-b"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "3 published, 3 acknowledged" in result.output
    assert sorted(subscriber.wait_for(3)) == [
        ("leaksense/t/a/flow", b'{"time":"2026-01-05T00:00:00Z","flow_m3h":1.5,"index_m3":10.0}'),
        ("leaksense/t/a/flow", b'{"time":"2026-01-05T00:05:00Z","flow_m3h":1.5,"index_m3":10.125}'),
        ("node-b/sensor/flow/state", b"10.000"),
    ]


@pytest.mark.mqtt
def test_cli_refuses_a_bad_file_before_publishing_anything(
    app: typer.Typer, mosquitto: Server, subscriber: Subscriber, tmp_path: Path
) -> None:
    good = f"flow,sensor_id=a flow_m3h=1 {START_NS}"
    path = line_protocol(tmp_path, [good, f"flow,sensor_id=a flow_m3h=oops {START_NS}", good])
    broker = f"mqtt://{mosquitto.host}:{mosquitto.port}"
    result = CliRunner().invoke(app, ["replay", str(path), "--site", "t", "--broker", broker])
    assert result.exit_code == 2
    unboxed = " ".join(result.output.replace("│", " ").split())  # rich wraps at 80 columns
    assert "line 4, field flow_m3h" in unboxed
    time.sleep(0.2)
    assert subscriber.messages == []


@pytest.mark.mqtt
def test_cli_ctrl_c_stops_cleanly_with_counts(
    app: typer.Typer, mosquitto: Server, subscriber: Subscriber, tmp_path: Path
) -> None:
    """Real time: the second reading is 5 minutes away when Ctrl-C arrives."""
    path = line_protocol(
        tmp_path,
        [f"flow,sensor_id=a flow_m3h=1 {START_NS + k * FIVE_MINUTES_NS}" for k in range(3)],
    )

    def ctrl_c_after_the_first_message() -> None:
        # The CLI's handler is in place: it was installed before the first publish.
        if subscriber.wait_for(1):
            os.kill(os.getpid(), signal.SIGINT)

    # What the CLI must put back: Python's default, or SIG_IGN when the tests were
    # started in the background by a shell.
    before = signal.getsignal(signal.SIGINT)
    sender = threading.Thread(target=ctrl_c_after_the_first_message)
    sender.start()
    broker = f"mqtt://{mosquitto.host}:{mosquitto.port}"
    began = time.monotonic()
    result = CliRunner().invoke(
        app, ["replay", str(path), "--site", "t", "--speed", "1", "--broker", broker]
    )
    sender.join()
    assert result.exit_code == 130, result.output
    assert "stopped: 1 published, 1 acknowledged" in result.output
    assert time.monotonic() - began < 10
    assert signal.getsignal(signal.SIGINT) is before


def test_cli_usage_and_broker_errors_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    path = line_protocol(tmp_path, [f"flow,sensor_id=a flow_m3h=1 {START_NS}"])
    runner = CliRunner()
    both = runner.invoke(app, ["replay", str(path), "--site", "t", "--speed", "2", "--max-speed"])
    assert both.exit_code == 2
    assert "not both" in both.output
    no_site = runner.invoke(app, ["replay", str(path)])
    assert no_site.exit_code == 2
    assert "site is required" in no_site.output
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"mqtt://127.0.0.1:{sock.getsockname()[1]}"
    down = runner.invoke(app, ["replay", str(path), "--site", "t", "--broker", nobody])
    assert down.exit_code == 2
    assert "cannot reach" in down.output


class TlsMosquitto(MosquittoServer):
    """The test broker with its one listener on TLS (certificate for IP 127.0.0.1)."""

    def __init__(self, workdir: Path, binary: str) -> None:
        super().__init__(workdir, binary=binary)
        self.ca_file = workdir / "ca.crt"

    def _prepare(self) -> None:
        super()._prepare()
        self._make_certificates()
        files = {"cafile": "ca.crt", "certfile": "srv.crt", "keyfile": "srv.key"}
        with self.config_path.open("a") as conf:
            conf.writelines(f"{option} {self.workdir / name}\n" for option, name in files.items())

    def _make_certificates(self) -> None:
        commands = [
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=ca",
            "req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1",
            "x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt "
            "-days 1 -extfile san.cnf",
        ]
        (self.workdir / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        for command in commands:
            subprocess.run(
                ["openssl", *command.split()],
                cwd=self.workdir,
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )


@pytest.fixture(scope="module")
def tls_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMosquitto]:
    binary = require_binary("mosquitto", MOSQUITTO_BINARY)
    require_binary("openssl", "/usr/bin/openssl")  # makes the test CA; CI: fail if missing
    with TlsMosquitto(tmp_path_factory.mktemp("mosquitto-tls"), binary) as server:
        yield server


@pytest.mark.mqtt
def test_replay_over_tls(tls_mosquitto: TlsMosquitto, one_day: Simulation) -> None:
    """TLS sockets buffer decrypted bytes that select() cannot see: every PUBACK must count."""
    url = f"mqtts://127.0.0.1:{tls_mosquitto.port}"
    readings = one_day.readings[:500]
    result = publish_readings(
        readings, Broker.from_url(url, tls_mosquitto.ca_file), site="s", max_in_flight=50
    )
    assert (result.published, result.acknowledged) == (len(readings), len(readings))
    with pytest.raises(ServiceUnavailable, match="cannot reach"):  # not signed by a system CA
        publish_readings(readings[:1], Broker.from_url(url), site="s")
