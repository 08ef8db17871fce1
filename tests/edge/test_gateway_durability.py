"""Durability on real services: mosquitto, the SQLite outbox, the real server.

Manual acknowledgement: a gateway that received messages but died before committing
them never sent their PUBACKs, so the broker re-sends them to the next process with
the same client id (persistent session); committed messages are acknowledged and
not re-sent.

Crash: a ``leaksense gateway run`` process receiving QoS 1 readings is killed with
SIGKILL mid-stream, twice, and restarted; in the end the server holds each published
reading exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.messages import IngestBatch, IngestResult, Reading
from leaksense.core.topics import FLOW_SUBSCRIPTION, flow_topic
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, parse_config
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.mqtt import MqttIntake, Receipt
from leaksense.edge.outbox_sqlite import SqliteOutbox
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from services import MosquittoServer

pytestmark = pytest.mark.mqtt
T0 = datetime(2026, 1, 5, tzinfo=UTC)
SITE = "saint-savin"


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)


def message(sensor: str, minute: int) -> tuple[str, bytes]:
    time_ = (T0 + timedelta(minutes=minute)).isoformat()
    return flow_topic(SITE, sensor), json.dumps({"time": time_, "flow_m3h": 1.5}).encode()


class Node:
    """Sensor nodes: one paho client publishing at QoS 1 and waiting for PUBACKs."""

    def __init__(self, broker: MosquittoServer, client_id: str) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(0)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self._client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# --- manual acknowledgement -----------------------------------------------------------


class ConfirmAll:
    def send(self, batch: IngestBatch) -> IngestResult:
        return IngestResult.whole(batch)


@dataclass
class InProcessGateway:
    """Intake, detector, intake group and outbox as the runner wires them, no uplink."""

    gateway: Gateway
    intake: MqttIntake
    outbox: SqliteOutbox

    @classmethod
    def start(cls, config: GatewayConfig) -> InProcessGateway:
        holder: list[MqttIntake] = []

        def acknowledge(receipts: Sequence[Receipt]) -> None:
            holder[0].ack(receipts)

        outbox = SqliteOutbox(config.outbox.path)
        gateway = Gateway(
            config,
            DetectionEngine(config.gateway_id, config.engine_settings()),
            outbox,
            ConfirmAll(),
            acknowledge=acknowledge,
        )
        intake = MqttIntake(
            config.mqtt,
            f"leaksense-gw-{config.gateway_id}",
            [FLOW_SUBSCRIPTION],
            gateway.handle_message,
        )
        holder.append(intake)
        intake.start()
        wait_for(intake.connected.is_set, what="the intake to connect")
        return cls(gateway, intake, outbox)

    def stop(self) -> None:
        self.intake.stop()
        self.outbox.close()


def test_messages_not_committed_are_sent_again(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    config = parse_config(
        {
            "gateway_id": "gw-ack",
            "site": SITE,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "outbox": {"path": str(tmp_path / "outbox.db")},
        }
    )
    mosquitto.open_session("leaksense-gw-gw-ack")
    node = Node(mosquitto, "node-ack")
    try:
        node.publish([message("s-1", minute) for minute in range(50)])

        doomed = InProcessGateway.start(config)  # receives, detects, never commits
        wait_for(lambda: doomed.gateway.stats.messages_received == 50, what="50 messages")
        assert doomed.gateway.group.pending() == 50
        doomed.stop()
        with SqliteOutbox(config.outbox.path) as outbox:
            assert outbox.depth() == 0  # it died before committing anything

        second = InProcessGateway.start(config)
        wait_for(lambda: second.gateway.stats.messages_received == 50, what="the re-sent 50")
        assert second.gateway.group.commit() == 50
        assert second.outbox.depth() == 50
        time.sleep(0.3)  # let paho write the PUBACKs
        second.stop()

        third = InProcessGateway.start(config)
        node.publish([message("s-1", 50)])
        wait_for(lambda: third.gateway.stats.messages_received >= 1, what="the new message")
        time.sleep(0.3)
        assert third.gateway.stats.messages_received == 1  # nothing re-sent
        third.gateway.group.commit()
        third.stop()
    finally:
        node.close()


def test_a_bad_payload_is_acknowledged_once_and_counted(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = parse_config(
        {
            "gateway_id": "gw-bad",
            "site": SITE,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "outbox": {"path": str(tmp_path / "outbox.db")},
        }
    )
    mosquitto.open_session("leaksense-gw-gw-bad")
    node = Node(mosquitto, "node-bad")
    try:
        node.publish([(flow_topic(SITE, "s-1"), b"{broken"), message("s-1", 0)])
        first = InProcessGateway.start(config)
        wait_for(lambda: first.gateway.stats.messages_received == 2, what="2 messages")
        assert first.gateway.group.commit() == 2
        assert first.gateway.stats.messages_rejected == 1
        time.sleep(0.3)
        first.stop()
        second = InProcessGateway.start(config)
        time.sleep(0.5)
        assert second.gateway.stats.messages_received == 0
        second.stop()
    finally:
        node.close()


# --- kill -9 ---------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    runtime: Runtime
    token: str

    def stored(self, sensors: list[str]) -> list[Reading]:
        end = T0 + timedelta(days=1)
        return [r for s in sensors for r in self.runtime.store.readings(s, T0, end)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = load_settings(data_dir=tmp_path / "server")
    runtime = build_runtime(settings)
    network = entities.NetworkDescription.model_validate(
        {"sites": [{"site_id": SITE, "name": "Saint-Savin"}]}
    )
    with runtime.sessions() as session:
        entities.load_network(session, network)
        token = entities.add_gateway(session, "gw-crash", SITE)
    thread = ServerThread(create_app(settings, runtime)).start()
    yield Server(thread.url, runtime, token)
    thread.stop()
    runtime.close()


class GatewayProcess:
    """``leaksense gateway run`` in a child process, logging to a file."""

    def __init__(self, config: Path, token: str, log: Path) -> None:
        self._args = [str(Path(sys.executable).parent / "leaksense"), "gateway", "run"]
        self._args += ["--config", str(config)]
        self._env = os.environ | {"LEAKSENSE_GATEWAY_TOKEN": token}
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                self._args, env=self._env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(
    mosquitto: MosquittoServer, server: Server, tmp_path: Path
) -> None:
    sensors = [f"s-{i:02d}" for i in range(40)]
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
gateway_id = "gw-crash"
site = "{SITE}"
dead_letter_dir = "{tmp_path / "rejected"}"
[mqtt]
host = "{mosquitto.host}"
port = {mosquitto.port}
[uplink]
url = "{server.url}"
flush_interval_s = 0.2
batch_max_readings = 500
[outbox]
path = "{tmp_path / "outbox.db"}"
[models]
dir = "{tmp_path / "models"}"
[metrics]
port = 0
"""
    )
    mosquitto.open_session("leaksense-gw-gw-crash")
    gateway = GatewayProcess(config, server.token, tmp_path / "gateway.log")
    node = Node(mosquitto, "node-crash")
    minutes = 100
    try:

        def more_than(count: int) -> bool:
            return len(server.stored(sensors)) > count

        gateway.start()
        seen = 0
        for minute in range(minutes):
            node.publish([message(s, minute) for s in sensors])
            time.sleep(0.02)
            if minute in (25, 60):  # the gateway has been at work since the last start
                wait_for(partial(more_than, seen), what="some readings stored")
            if minute in (30, 65):  # mid-stream: messages in flight, a group uncommitted
                gateway.kill()
                seen = len(server.stored(sensors))
                gateway.start()
        wait_for(
            lambda: len(server.stored(sensors)) >= len(sensors) * minutes,
            timeout_s=60,
            what="every reading on the server",
        )
    finally:
        node.close()
        gateway.stop()
    stored = server.stored(sensors)
    keys = {(r.sensor_id, r.time) for r in stored}
    assert len(stored) == len(keys) == len(sensors) * minutes
    log = (tmp_path / "gateway.log").read_text()
    assert "Traceback" not in log, log[-3000:]
