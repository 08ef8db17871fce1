"""Stage 1 of the path benchmark: MQTT intake, the gateway against a bare paho subscriber."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from path_common import GATEWAY_ID, BenchError, Figures, Row, Sizes, peak_rss_mib
from sensor_publisher import SITE, Publisher, publish_all
from sensor_publisher import messages as sensor_messages

from leaksense.core.messages import IngestBatch, IngestResult
from leaksense.core.topics import FLOW_SUBSCRIPTION
from leaksense.demo.broker import MosquittoProcess
from leaksense.edge.config import GatewayConfig, MqttConfig, UplinkConfig
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.mqtt import MqttIntake, Receipt
from leaksense.edge.outbox_sqlite import SqliteOutbox

MOSQUITTO = "/usr/sbin/mosquitto"
MESSAGE_TIMEOUT_S = 90.0
SETTLE_S = 0.3
"""MqttIntake sets ``connected`` when it sends SUBSCRIBE, before the SUBACK."""


def wait_for(count: int, received: Callable[[], int], began: float) -> float:
    """Messages/s from ``began`` until ``received()`` reaches ``count``."""
    deadline = began + MESSAGE_TIMEOUT_S
    while received() < count and time.perf_counter() < deadline:
        time.sleep(0.002)
    elapsed_s = time.perf_counter() - began
    if received() < count:
        raise BenchError(f"only {received()} of {count} messages arrived")
    return count / elapsed_s


class RawSubscriber:
    """A bare paho subscriber with the gateway's session settings; it only counts."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-raw-subscriber",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self._client = client

    def received(self) -> int:
        return self.count

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(FLOW_SUBSCRIPTION, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, _msg: mqtt.MQTTMessage) -> None:
        self.count += 1

    def wait_subscribed(self) -> RawSubscriber:
        if not self.subscribed.wait(10):
            raise BenchError("raw subscriber: no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class NoopUplink:
    """Confirms every batch at once: the gateway side is measured alone."""

    def send(self, batch: IngestBatch) -> IngestResult:
        return IngestResult.whole(batch)


def make_gateway(
    workdir: Path, port: int, acknowledge: Callable[[Sequence[Receipt]], None] | None = None
) -> Gateway:
    config = GatewayConfig(
        gateway_id=GATEWAY_ID,
        site=SITE,
        mqtt=MqttConfig(port=port),
        uplink=UplinkConfig(flush_interval_s=0.2),
        dead_letter_dir=workdir / "rejected",
    )
    return Gateway(
        config,
        DetectionEngine(config.gateway_id, config.engine_settings()),
        SqliteOutbox(workdir / "outbox.db"),
        NoopUplink(),
        acknowledge=acknowledge,
    )


class GatewayRig:
    """The real gateway intake as ``leaksense/edge/runner.py`` assembles it, no-op uplink."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.gateway = make_gateway(workdir, port, self._acknowledge)
        self._stop = threading.Event()
        self._uplink = threading.Thread(
            target=self.gateway.run_uplink, args=(self._stop,), name="uplink", daemon=True
        )
        self._committer = threading.Thread(
            target=self.gateway.run_committer, args=(self._stop,), name="committer", daemon=True
        )
        self._intake: MqttIntake | None = None

    def _acknowledge(self, receipts: Sequence[Receipt]) -> None:
        if self._intake is not None:
            self._intake.ack(receipts)

    def received(self) -> int:
        return self.gateway.stats.messages_received

    def connect(self) -> None:
        """Connect (a new intake, same client id: the broker resumes the session)."""
        config = self.gateway.config
        self._intake = MqttIntake(
            config.mqtt,
            client_id=f"leaksense-gw-{config.gateway_id}",
            topics=config.mqtt.subscriptions + self.gateway.parser.esphome_topics,
            handler=self.gateway.handle_message,
        )
        self._intake.start()
        if not self._uplink.is_alive():
            self._uplink.start()
            self._committer.start()

    def wait_subscribed(self) -> GatewayRig:
        if self._intake is None or not self._intake.connected.wait(10):
            raise BenchError("gateway intake did not connect")
        time.sleep(SETTLE_S)
        return self

    def disconnect(self) -> None:
        if self._intake is not None:
            self._intake.stop()
            self._intake = None

    def wait_for(self, count: int, began: float) -> float:
        """Messages/s until the gateway counted ``count``; every one must be accepted."""
        rate = wait_for(count, self.received, began)
        if self.gateway.stats.messages_rejected:
            raise BenchError(f"gateway rejected {self.gateway.stats.messages_rejected} messages")
        return rate

    def stop(self) -> None:
        self._stop.set()
        if self._uplink.is_alive():
            self._uplink.join(5)
            self._committer.join(5)
        self.disconnect()


def live_raw(workdir: Path, count: int) -> float:
    """Bare paho subscriber while the publisher publishes: messages/s."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    publisher = Publisher(broker.port, count)
    subscriber: RawSubscriber | None = None
    try:
        subscriber = RawSubscriber(broker.port).wait_subscribed()
        publisher.wait_ready()
        began = time.perf_counter()
        publisher.go()
        return wait_for(count, subscriber.received, began)
    finally:
        if subscriber is not None:
            subscriber.stop()
        publisher.close()
        broker.stop()


def live_gateway(workdir: Path, count: int) -> float:
    """Gateway intake while the publisher publishes: messages/s."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    publisher = Publisher(broker.port, count)
    rig = GatewayRig(workdir, broker.port)
    try:
        rig.connect()
        rig.wait_subscribed()
        publisher.wait_ready()
        began = time.perf_counter()
        publisher.go()
        return rig.wait_for(count, began)
    finally:
        rig.stop()
        publisher.close()
        broker.stop()


def drain(workdir: Path, count: int, gateway_first: bool) -> tuple[float, float]:
    """(bare paho, gateway) messages/s draining a backlog queued while they were offline."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    rig = GatewayRig(workdir, broker.port)
    try:
        RawSubscriber(broker.port).wait_subscribed().stop()
        rig.connect()
        rig.wait_subscribed()
        rig.disconnect()
        publish_all(broker.port, count)

        def drain_raw() -> float:
            began = time.perf_counter()
            subscriber = RawSubscriber(broker.port)
            try:
                return wait_for(count, subscriber.received, began)
            finally:
                subscriber.stop()

        def drain_gateway() -> float:
            began = time.perf_counter()
            rig.connect()
            return rig.wait_for(count, began)

        if gateway_first:
            gateway_rate = drain_gateway()
            return drain_raw(), gateway_rate
        return drain_raw(), drain_gateway()
    finally:
        rig.stop()
        broker.stop()


def handle_message_alone(workdir: Path, count: int) -> float:
    """Messages/s through ``Gateway.handle_message`` called directly (no MQTT)."""
    gateway = make_gateway(workdir, 1883)
    messages = sensor_messages(count)
    began = time.perf_counter()
    for topic, payload in messages:
        gateway.handle_message(topic, payload)
    gateway.group.commit()
    return count / (time.perf_counter() - began)


def bench_mqtt(figures: Figures, workdir: Path, sizes: Sizes) -> None:
    count = sizes.messages
    rss_start = peak_rss_mib()
    for r in range(sizes.mqtt_repeats):
        runs = [("raw live", live_raw), ("gateway live", live_gateway)]
        for name, fn in runs[:: -1 if r % 2 else 1]:
            figures.add(name, fn(workdir / f"{name}-{r}".replace(" ", "-"), count))
        raw_rate, gateway_rate = drain(workdir / f"drain-{r}", count, gateway_first=r % 2 == 1)
        figures.add("raw drain", raw_rate)
        figures.add("gateway drain", gateway_rate)
    rss_mqtt = peak_rss_mib()
    alone = handle_message_alone(workdir, count)
    unit, m = "msg/s", figures.median
    figures.rate(
        f"MQTT QoS 1, {count:,} msgs, live: gateway intake vs bare paho",
        unit,
        m("gateway live"),
        m("raw live"),
    )
    figures.rate(
        "MQTT QoS 1, backlog drain: gateway intake vs bare paho",
        unit,
        m("gateway drain"),
        m("raw drain"),
    )
    figures.rate(
        "`Gateway.handle_message` alone (no MQTT) vs bare paho drain", unit, alone, m("raw drain")
    )
    figures.rows.append(
        Row("Peak RSS of the process after the MQTT runs", f"{rss_mqtt:,.0f} MiB", "—", "—")
    )
    figures.notes.append(
        f"MQTT: median of {sizes.mqtt_repeats} runs each, raw and gateway alternated; ranges: "
        + "; ".join(
            figures.spread(n, unit)
            for n in ("raw live", "gateway live", "raw drain", "gateway drain")
        )
        + f"; peak RSS after imports {rss_start:,.0f} MiB"
    )
