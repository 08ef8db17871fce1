"""Replay readings to an MQTT broker, as real sensor nodes would publish them.

Sensors with an ESPHome node publish ESPHome's plain state (``<node>/sensor/flow/state``,
L/min as text), the others Leaksense JSON on ``leaksense/<site>/<sensor_id>/flow``.
Everything goes out at QoS 1 over MQTT 3.1.1 (the demo broker, amqtt, speaks nothing
newer), and :func:`publish_readings` returns only once the broker has acknowledged
every message, so a test or a demo can rely on what it sent having arrived.

Speed: the paho client is driven from the publishing thread (``loop_read`` /
``loop_write`` on its socket) instead of paho's network thread. With the thread,
every message costs a wake-up byte on a socket pair, a hand-over of the GIL and a
lock; without it, a message is one ``send`` and PUBACKs are read in batches. Paho's
own in-flight limit is off (with one, paho rescans every in-flight message on each
PUBACK): the session bounds what is in flight itself. ``benchmarks/bench_replay.py``
measures the result against a bare paho publisher.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time as clock
import uuid
from collections.abc import Callable, Iterable, Mapping
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
DEFAULT_MAX_IN_FLIGHT = 200
"""Unacknowledged messages allowed. Windows of 20 to 5 000 replay equally fast on a
loopback mosquitto (bench_replay.py); a small one bounds what a reconnect re-sends."""
PROGRESS_INTERVAL_S = 0.1
"""Progress is reported at most this often: a progress bar redrawn per message costs
more than publishing the message."""
_POLL_S = 0.1  # longest network wait: how quickly a stop request is noticed
_RECONNECT_DELAY_S = 0.5
_AUTH_FAILURES = {134, 135}  # "Bad user name or password", "Not authorized"
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NO_SHIFT = timedelta(0)


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


def encode(
    reading: Reading, site: str, nodes: Mapping[str, str], shift: timedelta = _NO_SHIFT
) -> tuple[str, bytes]:
    """Topic and payload a real node would publish for ``reading``, moved by ``shift``.

    ESPHome states carry no time (the gateway stamps them), so ``shift`` only changes
    the JSON payloads.
    """
    node = nodes.get(reading.sensor_id)
    if node is not None:
        return esphome_topic(node), f"{reading.flow_m3h * 1000 / 60:.3f}".encode()
    payload = SensorPayload(
        time=reading.time + shift, flow_m3h=reading.flow_m3h, index_m3=reading.index_m3
    )
    topic = flow_topic(site, reading.sensor_id)
    return topic, payload.model_dump_json(exclude_none=True).encode()


class _Session:
    """A paho client run from the caller's thread, with at most ``window`` PUBACKs owed.

    Not thread-safe, on purpose: one thread publishes and services the socket. A lost
    connection is retried (paho re-sends what was unacknowledged, flagged DUP) until
    ``ack_timeout_s`` passes without the broker coming back.
    """

    def __init__(self, broker: Broker, window: int, ack_timeout_s: float) -> None:
        if window < 1:
            raise ConfigError(f"max_in_flight must be >= 1, got {window}")
        self.published = self.acknowledged = 0
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._connack_code: ReasonCode | None = None
        self._broker = broker
        self._where = f"MQTT broker {broker.host}:{broker.port}"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"leaksense-replay-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(0)  # the session bounds it (module docstring)
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        self._connack_code = code

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: ReasonCode, _p: Any) -> None:
        self.acknowledged += 1

    def connect(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect(self._broker.host, self._broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            _close_sockets_left_in(exc)
            raise ServiceUnavailable(f"cannot reach {self._where}: {exc}") from exc
        self._await_connack(timeout_s)

    def _await_connack(self, timeout_s: float) -> None:
        deadline = clock.monotonic() + timeout_s
        while self._connack_code is None:
            if clock.monotonic() > deadline:
                raise ServiceUnavailable(f"{self._where} did not answer CONNECT in {timeout_s} s")
            if not self._pump(_POLL_S) and self._connack_code is None:
                raise ServiceUnavailable(f"{self._where} closed the connection before CONNACK")
        code = self._connack_code
        if code.is_failure:
            error = AuthenticationError if code.value in _AUTH_FAILURES else ServiceUnavailable
            raise error(f"{self._where} refused the connection: {code}")

    def _pump(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the socket, then read and write; False if lost."""
        sock = self._client.socket()
        if sock is None:
            return False
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted
        if callable(pending) and pending() > 0:
            readable, writable = True, self._client.want_write()
        else:
            wanted = [sock] if self._client.want_write() else []
            try:
                ready = select.select([sock], wanted, [], timeout_s)
            except (OSError, ValueError):
                return False
            readable, writable = bool(ready[0]), bool(ready[1])
        rc = mqtt.MQTT_ERR_SUCCESS
        if readable:
            rc = self._client.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS and writable:
            rc = self._client.loop_write()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = self._client.loop_misc()
        return rc == mqtt.MQTT_ERR_SUCCESS and self._client.socket() is not None

    def _service(self, timeout_s: float) -> None:
        """Service the connection once, reconnecting if it was lost."""
        if self._pump(timeout_s):
            return
        deadline = clock.monotonic() + self._ack_timeout_s
        while True:
            self._connack_code = None
            try:
                self._client.reconnect()
                self._await_connack(min(10.0, self._ack_timeout_s))
                return
            except (OSError, ServiceUnavailable) as exc:
                _close_sockets_left_in(exc)
                if clock.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"lost {self._where} for {self._ack_timeout_s} s: {exc}"
                    ) from exc
            clock.sleep(_RECONNECT_DELAY_S)

    def send(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 once fewer than ``window`` messages await a PUBACK."""
        if self.published - self.acknowledged >= self._window:
            self._await(lambda: self.published - self.acknowledged < self._window)
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued
            raise ServiceUnavailable(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self.published += 1

    def _await(self, done: Callable[[], bool]) -> None:
        """Service the socket until ``done()``; raise if no PUBACK for ``ack_timeout_s``."""
        last_acknowledged, silent_since = self.acknowledged, clock.monotonic()
        while not done():
            self._service(_POLL_S)
            if self.acknowledged != last_acknowledged:
                last_acknowledged, silent_since = self.acknowledged, clock.monotonic()
            elif clock.monotonic() - silent_since > self._ack_timeout_s:
                raise ServiceUnavailable(
                    f"no PUBACK from {self._where} for {self._ack_timeout_s} s"
                )

    def idle(self, seconds: float, stop: threading.Event) -> bool:
        """Keep the connection serviced for ``seconds``; True when ``stop`` was set."""
        deadline = clock.monotonic() + seconds
        while not stop.is_set():
            left = deadline - clock.monotonic()
            if left <= 0:
                return False
            self._service(min(left, _POLL_S))
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait until every message is acknowledged; False on timeout."""
        deadline = clock.monotonic() + timeout_s
        while self.acknowledged < self.published:
            left = deadline - clock.monotonic()
            if left <= 0:
                return False
            self._service(min(left, _POLL_S))
        return True

    def close(self) -> None:
        self._client.disconnect()
        self._pump(0)  # flush DISCONNECT


def _close_sockets_left_in(exc: BaseException) -> None:
    """Close the sockets held by the frames ``exc`` went through.

    paho-mqtt 2.2 does not close its socket when the TLS handshake fails (a certificate
    that does not verify): left to the garbage collector it leaks a descriptor and a
    ResourceWarning.
    """
    trace = exc.__traceback__
    while trace is not None:
        for value in trace.tb_frame.f_locals.values():
            if isinstance(value, socket.socket):
                value.close()
        trace = trace.tb_next


class _Progress:
    """Batches progress reports to one call per :data:`PROGRESS_INTERVAL_S`."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self._pending = 0
        self._last = clock.monotonic()

    def add(self, count: int) -> None:
        self._pending += count
        if clock.monotonic() - self._last >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._callback is not None and self._pending:
            self._callback(self._pending)
        self._pending, self._last = 0, clock.monotonic()


def _replay(
    session: _Session,
    ordered: list[Reading],
    *,
    encode_one: Callable[[Reading], tuple[str, bytes]],
    speed: float | None,
    stop: threading.Event,
    progress: _Progress,
) -> None:
    """Send ``ordered`` at ``speed`` times their own pace (None or 0: no wait)."""
    first_time, wall_start = ordered[0].time, clock.monotonic()
    for reading in ordered:
        if speed:
            wait_s = (reading.time - first_time).total_seconds() / speed
            wait_s -= clock.monotonic() - wall_start
            if wait_s > 0:
                progress.flush()
                if session.idle(wait_s, stop):
                    return
        if stop.is_set():
            return
        session.send(*encode_one(reading))
        progress.add(1)


def publish_readings(
    readings: Iterable[Reading],
    broker: Broker,
    *,
    site: str,
    esphome: Mapping[str, str] | None = None,
    speed: float | None = None,
    shift_to_now: bool = False,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ack_timeout_s: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> PublishResult:
    """Publish readings in time order; return once the broker acknowledged them all.

    ``esphome`` maps sensor ids to ESPHome nodes. ``shift_to_now`` moves the timestamps
    so that the first reading is "now". ``on_progress(n)`` gets the count sent since
    its last call, at most every :data:`PROGRESS_INTERVAL_S`. Ctrl-C (or ``stop``)
    ends the replay early and still waits briefly for the acknowledgements; raises
    :class:`ServiceUnavailable` when the broker goes silent for ``ack_timeout_s``.
    """
    ordered = sorted(readings, key=lambda r: r.time)
    if not ordered:
        return PublishResult(0, 0)
    nodes, stop = esphome or {}, stop or threading.Event()
    session, progress = _Session(broker, max_in_flight, ack_timeout_s), _Progress(on_progress)
    interrupted = False
    try:
        session.connect()
        shift = datetime.now(UTC) - ordered[0].time if shift_to_now else _NO_SHIFT

        def encode_one(reading: Reading) -> tuple[str, bytes]:
            return encode(reading, site, nodes, shift)

        try:
            _replay(
                session, ordered, encode_one=encode_one, speed=speed, stop=stop, progress=progress
            )
        except KeyboardInterrupt:
            interrupted = True
        progress.flush()
        interrupted = interrupted or stop.is_set()
        _drain(session, ack_timeout_s, interrupted)
    finally:
        session.close()
    return PublishResult(session.published, session.acknowledged, interrupted)


def _drain(session: _Session, ack_timeout_s: float, interrupted: bool) -> None:
    """Wait for the last PUBACKs: fully after a complete replay, briefly after a stop."""
    if not interrupted:
        if not session.drain(ack_timeout_s):
            missing = session.published - session.acknowledged
            raise ServiceUnavailable(
                f"{missing} QoS 1 messages unacknowledged after {ack_timeout_s} s"
            )
        return
    with contextlib.suppress(ServiceUnavailable, KeyboardInterrupt):
        session.drain(min(ack_timeout_s, 5.0))  # stopping anyway: the result says what arrived
