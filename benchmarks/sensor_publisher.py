"""The sensors of the MQTT benchmarks: a paho publisher in its own process (its own GIL).

``path_mqtt.py`` (for ``bench_path.py``) and ``bench_gateway.py`` drive it through
:class:`Publisher`; run as a script (``python sensor_publisher.py PORT COUNT``) it
connects, prints ``ready``, publishes ``COUNT`` QoS 1 flow messages (200 sensors, one
per sensor and minute, ≤ 1 000 in flight) when a line arrives on stdin, then prints
``ACKED ELAPSED_S``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.topics import flow_topic

SITE = "bench"
SENSOR_COUNT = 200
SENSOR_IDS = [f"s-{i:03d}" for i in range(SENSOR_COUNT)]
MAX_INFLIGHT = 1_000
BASE = datetime(2026, 1, 1, tzinfo=UTC)
"""A Thursday 00:00 UTC: InfluxDB's 7-day shard groups start on Thursdays."""
TIMEOUT_S = 120.0


class PublisherError(RuntimeError):
    """The publisher process did not start or did not get every PUBACK."""


def flow_m3h(i: int) -> float:
    """A deterministic, varied flow for message ``i``."""
    return round(0.5 + (i * 7919 % 4999) / 100, 2)


def messages(count: int) -> list[tuple[str, bytes]]:
    """``count`` Leaksense flow messages: one per sensor and minute, 200 sensors."""
    out = []
    for i in range(count):
        when = BASE + timedelta(minutes=i // SENSOR_COUNT)
        payload = {"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "flow_m3h": flow_m3h(i)}
        out.append((flow_topic(SITE, SENSOR_IDS[i % SENSOR_COUNT]), json.dumps(payload).encode()))
    return out


def run(port: int, count: int) -> None:
    """Child side: connect, say ``ready``, publish everything on ``go``, print the result."""
    prepared = messages(count)
    connected, done = threading.Event(), threading.Event()
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.max_queued_messages_set(0)
    client.on_connect = lambda *_args: connected.set()
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("publisher: no CONNACK")
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.perf_counter()
    for topic, payload in prepared:
        client.publish(topic, payload, qos=1)
    done.wait(TIMEOUT_S)
    print(f"{acked} {time.perf_counter() - began:.6f}", flush=True)
    client.disconnect()
    client.loop_stop()


class Publisher:
    """Parent side: the publisher process, started at once, publishing on :meth:`go`."""

    def __init__(self, port: int, count: int) -> None:
        self.count = count
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(port), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise PublisherError("the publisher process did not start")

    def go(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write("go\n")
        self._process.stdin.flush()

    def rate(self) -> float:
        """Messages/s the broker acknowledged; every message must be (blocks until done)."""
        out, _ = self._process.communicate(timeout=TIMEOUT_S + 30)
        acked, elapsed_s = out.split()[-2:]
        if int(acked) != self.count:
            raise PublisherError(f"the broker acknowledged {acked} of {self.count} messages")
        return int(acked) / float(elapsed_s)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
        self._process.wait(10)


def publish_all(port: int, count: int) -> None:
    """Publish ``count`` messages; return once the broker acknowledged them all."""
    publisher = Publisher(port, count)
    try:
        publisher.wait_ready()
        publisher.go()
        publisher.rate()
    finally:
        publisher.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run(int(sys.argv[1]), int(sys.argv[2]))
