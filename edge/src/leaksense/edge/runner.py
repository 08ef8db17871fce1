"""Assemble a running gateway from its config: MQTT intake, detector, outbox, uplink,
and the sync of signed models from the server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from leaksense.edge.config import GatewayConfig
from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.models import ModelSync
from leaksense.edge.mqtt import MqttIntake
from leaksense.edge.outbox import MemoryOutbox
from leaksense.edge.uplink import HttpUplink

log = logging.getLogger(__name__)


class GatewayRunner:
    """Owns the gateway's threads: paho's network loop and the uplink loop."""

    def __init__(self, config: GatewayConfig, token: str | None = None) -> None:
        token = token or config.uplink_token()
        self._uplink = HttpUplink(config.uplink.url, token, config.uplink.timeout_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.engine = DetectionEngine(config.gateway_id, config.engine_settings())
        self.gateway = Gateway(
            config,
            self.engine,
            MemoryOutbox(config.outbox_max_readings),
            self._uplink,
            alert_sink=self._publish_alert,
        )
        self.intake = MqttIntake(
            config.mqtt,
            client_id=f"leaksense-gw-{config.gateway_id}",
            topics=config.mqtt.subscriptions + self.gateway.parser.esphome_topics,
            handler=self.gateway.handle_message,
        )
        self.models = ModelSync(config, token, install=self._install_models)

    def _install_models(self, artifacts: Sequence[ModelArtifact]) -> int:
        with self.gateway.detection_lock:
            return self.engine.install(artifacts)

    def _publish_alert(self, topic: str, payload: str) -> None:
        self.intake.publish(topic, payload)

    def start(self) -> None:
        self.models.start()  # saved models first: the first readings already use them
        self.intake.start()
        self._thread = threading.Thread(
            target=self.gateway.run_uplink, args=(self._stop,), name="uplink", daemon=True
        )
        self._thread.start()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop intake, try to send what is pending, then stop the uplink."""
        self.intake.stop()
        self.models.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.gateway.drain(drain_timeout_s):
            log.error("stopping with unsent data still in the (in-memory) outbox")
        self._uplink.close()
