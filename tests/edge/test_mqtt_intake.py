"""The paho adapter on a real mosquitto: QoS 1 intake, reconnect and resubscribe."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.edge.config import MqttConfig
from leaksense.edge.mqtt import MqttIntake, Receipt
from services import MosquittoServer

pytestmark = pytest.mark.mqtt


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def publish(broker: MosquittoServer, topic: str, payload: bytes, count: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="node")
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for _ in range(count)]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_intake_survives_a_broker_restart(mosquitto: MosquittoServer) -> None:
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def handler(topic: str, payload: bytes, receipt: Receipt | None) -> None:
        with lock:
            received.append((topic, payload))
        if receipt is not None:
            intake.ack([receipt])

    config = MqttConfig(host=mosquitto.host, port=mosquitto.port, keepalive_s=5)
    intake = MqttIntake(
        config, "test-gw", ["leaksense/+/+/flow", "node/sensor/flow/state"], handler
    )
    intake.start()
    try:
        wait_for(intake.connected.is_set)
        publish(mosquitto, "leaksense/s/a/flow", b"1", 500)
        publish(mosquitto, "node/sensor/flow/state", b"2.5", 10)
        wait_for(lambda: len(received) == 510)

        mosquitto.restart()
        wait_for(lambda: intake.connections == 2)
        publish(mosquitto, "leaksense/s/a/flow", b"3", 20)
        wait_for(lambda: len(received) == 530)
    finally:
        intake.stop()
    assert received[-1] == ("leaksense/s/a/flow", b"3")
    assert sum(1 for t, _ in received if t == "node/sensor/flow/state") == 10


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_stop_closes_every_socket_the_client_opened(mosquitto: MosquittoServer) -> None:
    """paho's loop_stop leaves its wake-up socket pair open; stop() must close it."""
    config = MqttConfig(host=mosquitto.host, port=mosquitto.port)
    before = open_fds()
    for _ in range(3):
        intake = MqttIntake(config, "test-gw-fds", ["leaksense/+/+/flow"], lambda *_: None)
        intake.start()
        wait_for(intake.connected.is_set)
        intake.stop()
        del intake  # kept alive only by its own reference cycle: no gc.collect() here
    assert open_fds() == before
