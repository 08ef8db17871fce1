"""Replay readings to an MQTT broker, as real sensor nodes would publish them.

Sensors with an ESPHome node publish ESPHome's plain state (``<node>/sensor/flow/state``,
L/min as text), the others Leaksense JSON on ``leaksense/<site>/<sensor_id>/flow``.
Everything goes out at QoS 1 over MQTT 3.1.1 (the demo broker, amqtt, speaks nothing
newer), and :func:`publish_readings` returns only once the broker has acknowledged
every message, so a test or a demo can rely on what it sent having arrived.
"""

from __future__ import annotations

import threading
import time as clock
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from leaksense.core.errors import AuthenticationError, ConfigError, ServiceUnavailable
from leaksense.core.messages import Reading, SensorPayload
from leaksense.core.topics import flow_topic
from leaksense.simulator.scenario import Scenario

ESPHOME_UNIT = "L/min"
_AUTH_FAILURES = {134, 135}  # "Bad user name or password", "Not authorized"
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to publish; TLS is on when ``tls`` is set (``ca_file`` None: system CAs)."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None

    @classmethod
    def from_url(cls, url: str, ca_file: Path | None = None) -> Broker:
        """Parse ``mqtt://[user:password@]host[:port]`` (``mqtts://`` for TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://…")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise ConfigError(f"broker URL {url!r}: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts" or ca_file is not None,
            ca_file=ca_file,
        )


@dataclass(frozen=True, slots=True)
class PublishResult:
    """How many messages went out and how many the broker acknowledged."""

    published: int
    acknowledged: int
    interrupted: bool = False


def esphome_topic(node: str) -> str:
    """ESPHome's state topic for a sensor whose object id is ``flow``."""
    return f"{node}/sensor/flow/state"


def esphome_nodes(scenario: Scenario) -> dict[str, str]:
    """``sensor_id -> ESPHome node`` for the scenario's ESPHome sensors."""
    return {s.sensor_id: s.esphome_node for s in scenario.sensors if s.esphome_node}


def esphome_mapping(scenario: Scenario) -> list[dict[str, str]]:
    """The gateway's ESPHome mapping entries (``topic``, ``sensor_id``, ``unit``)."""
    return [
        {"topic": esphome_topic(node), "sensor_id": sensor_id, "unit": ESPHOME_UNIT}
        for sensor_id, node in esphome_nodes(scenario).items()
    ]


def encode(reading: Reading, site: str, nodes: Mapping[str, str]) -> tuple[str, bytes]:
    """Topic and payload a real node would publish for ``reading``."""
    node = nodes.get(reading.sensor_id)
    if node is not None:
        return esphome_topic(node), f"{reading.flow_m3h * 1000 / 60:.3f}".encode()
    payload = SensorPayload(time=reading.time, flow_m3h=reading.flow_m3h, index_m3=reading.index_m3)
    topic = flow_topic(site, reading.sensor_id)
    return topic, payload.model_dump_json(exclude_none=True).encode()


class _Session:
    """A connected paho client that counts PUBACKs and bounds what is in flight."""

    def __init__(self, broker: Broker, max_in_flight: int, ack_timeout_s: float) -> None:
        self.published = self.acknowledged = 0
        self._max_in_flight = max_in_flight
        self._ack_timeout_s = ack_timeout_s
        self._acks = threading.Condition()
        self._connack = threading.Event()
        self._connack_code: ReasonCode | None = None
        self._broker = broker
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"leaksense-replay-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(max_in_flight)
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        self._connack_code = code
        self._connack.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: ReasonCode, _p: Any) -> None:
        with self._acks:
            self.acknowledged += 1
            self._acks.notify_all()

    def connect(self, timeout_s: float = 10.0) -> None:
        where = f"MQTT broker {self._broker.host}:{self._broker.port}"
        try:
            self._client.connect(self._broker.host, self._broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable(f"cannot reach {where}: {exc}") from exc
        self._client.loop_start()
        if not self._connack.wait(timeout_s):
            raise ServiceUnavailable(f"{where} did not answer CONNECT within {timeout_s} s")
        code = self._connack_code
        if code is not None and code.is_failure:
            error = AuthenticationError if code.value in _AUTH_FAILURES else ServiceUnavailable
            raise error(f"{where} refused the connection: {code}")

    def send(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 once fewer than ``max_in_flight`` messages await a PUBACK."""
        with self._acks:
            if not self._acks.wait_for(
                lambda: self.published - self.acknowledged < self._max_in_flight,
                self._ack_timeout_s,
            ):
                raise ServiceUnavailable(f"no PUBACK for {self._ack_timeout_s} s")
            self.published += 1
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued
            raise ServiceUnavailable(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")

    def drain(self, timeout_s: float) -> bool:
        """Wait until every message is acknowledged; False on timeout."""
        with self._acks:
            return self._acks.wait_for(lambda: self.acknowledged >= self.published, timeout_s)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _paced(
    readings: Sequence[Reading], speed: float | None, shift: timedelta, stop: threading.Event
) -> Iterator[Reading]:
    """Yield readings, moved by ``shift``, at ``speed`` times their own pace (None/0: no wait)."""
    first_time, wall_start = readings[0].time, clock.monotonic()
    for reading in readings:
        if speed:
            due = wall_start + (reading.time - first_time).total_seconds() / speed
            if stop.wait(max(0.0, due - clock.monotonic())):
                return
        if stop.is_set():
            return
        yield reading.model_copy(update={"time": reading.time + shift}) if shift else reading


def publish_readings(
    readings: Iterable[Reading],
    broker: Broker,
    *,
    site: str,
    esphome: Mapping[str, str] | None = None,
    speed: float | None = None,
    shift_to_now: bool = False,
    max_in_flight: int = 1000,
    ack_timeout_s: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> PublishResult:
    """Publish readings in time order; return once the broker acknowledged them all.

    ``esphome`` maps sensor ids to ESPHome nodes. ``shift_to_now`` moves the timestamps
    so that the first reading is "now". Ctrl-C (or ``stop``) ends the replay early and
    still waits briefly for the acknowledgements; raises :class:`ServiceUnavailable`
    when the broker goes silent for ``ack_timeout_s``.
    """
    ordered = sorted(readings, key=lambda r: r.time)
    if not ordered:
        return PublishResult(0, 0)
    shift = datetime.now(UTC) - ordered[0].time if shift_to_now else timedelta(0)
    nodes, stop = esphome or {}, stop or threading.Event()
    session, interrupted = _Session(broker, max_in_flight, ack_timeout_s), False
    try:
        session.connect()
        try:
            for reading in _paced(ordered, speed, shift, stop):
                session.send(*encode(reading, site, nodes))
                if on_progress is not None:
                    on_progress(1)
        except KeyboardInterrupt:
            interrupted = True
        interrupted = interrupted or stop.is_set()
        drain_s = min(ack_timeout_s, 5.0) if interrupted else ack_timeout_s
        if not session.drain(drain_s) and not interrupted:
            missing = session.published - session.acknowledged
            raise ServiceUnavailable(f"{missing} QoS 1 messages unacknowledged after {drain_s} s")
    finally:
        session.close()
    return PublishResult(session.published, session.acknowledged, interrupted)
