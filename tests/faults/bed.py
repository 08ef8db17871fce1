"""What a scenario drives: its test bed of processes and the sensor nodes publishing.

Sensor nodes are a paho client in the test process that publishes QoS 1 readings and
counts a reading as *published* once the broker acknowledged it; :class:`Bed` holds
them with the processes of one scenario (``processes.py``) and stops everything at
its end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from faults.processes import (
    SITE,
    GatewayProcess,
    GatewaySettings,
    PersistentMosquitto,
    ServerProcess,
)
from leaksense.core.topics import flow_topic
from services import InfluxDatabase, InfluxServer, MosquittoServer

Key = tuple[str, int]
"""``(sensor_id, microseconds since the epoch)``: how storage keys a reading."""


def to_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


class Sensors:
    """Sensor nodes: one paho client publishing at QoS 1, reconnecting by itself.

    paho keeps unacknowledged QoS 1 messages, also those published while it is
    disconnected, and (re-)sends them after a reconnection, so a broker restart in
    the middle of a stream loses nothing on this side; a message counts as published
    once its PUBACK came back (``on_publish``; message ids are unique per client up to
    65 535 messages, more than a scenario sends).
    """

    def __init__(self, broker: MosquittoServer) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fault-nodes")
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_publish = self._on_publish
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self.published: dict[Key, float] = {}

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self._acked.add(mid)

    def send(self, readings: Sequence[tuple[str, datetime, float]]) -> list[int]:
        """Queue readings for publication; returns their message ids (see :meth:`confirm`)."""
        mids = []
        for sensor, moment, flow in readings:
            payload = json.dumps({"time": moment.isoformat(), "flow_m3h": flow})
            info = self._client.publish(flow_topic(SITE, sensor), payload, qos=1)
            mids.append(info.mid)
            self.published[sensor, to_us(moment)] = flow
        return mids

    def confirm(self, mids: Iterable[int], timeout_s: float = 60.0) -> None:
        """Wait until the broker acknowledged every message of ``mids``."""
        waiting = set(mids)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                waiting -= self._acked
            if not waiting:
                return
            assert time.monotonic() < deadline, f"{len(waiting)} messages not acknowledged"
            time.sleep(0.01)

    def publish(self, readings: Sequence[tuple[str, datetime, float]]) -> None:
        self.confirm(self.send(readings))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def series(
    sensors: Sequence[str], start: datetime, minutes: range
) -> list[tuple[str, datetime, float]]:
    """One reading a minute for each sensor, minute by minute; unique times per sensor.

    Flows vary (never constant for hours, so no flatline alert) and are exact in
    binary, so stored values compare equal.
    """
    return [
        (sensor, start + timedelta(minutes=m), 1.0 + ((m * 7 + i) % 64) / 16)
        for m in minutes
        for i, sensor in enumerate(sensors)
    ]


@dataclass
class Bed:
    """One scenario's processes (server and gateway not started yet)."""

    workdir: Path
    broker: PersistentMosquitto
    influxd: InfluxServer
    influx: InfluxDatabase
    server: ServerProcess
    sensors: Sensors
    gateways: list[GatewayProcess] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def gateway(self, settings: GatewaySettings | None = None) -> GatewayProcess:
        gateway = GatewayProcess(
            self.workdir, self.broker, self.server, settings or GatewaySettings()
        )
        self.gateways.append(gateway)
        return gateway

    def close(self) -> None:
        """Stop every process the scenario started (also after a failure)."""
        self.sensors.close()
        for gateway in self.gateways:
            gateway.stop()
        self.server.stop()
        self.broker.stop()
