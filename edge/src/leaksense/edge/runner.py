"""Assemble a running gateway from its config: MQTT intake, detector, durable outbox,
uplink, health reports and ``/metrics``, and the sync of signed models from the server.

Threads: paho's network loop (intake and detection), the committer (intake groups →
outbox → PUBACKs), the uplink, the health ticker, the metrics server, model sync.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from leaksense.edge.config import GatewayConfig
from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.health import HealthReporter, model_versions
from leaksense.edge.metrics import GatewayCollector, MetricsServer
from leaksense.edge.models import ModelSync
from leaksense.edge.mqtt import MqttIntake, Receipt
from leaksense.edge.outbox_sqlite import SqliteOutbox
from leaksense.edge.sensitivity import Dismissal, SensitivitySync
from leaksense.edge.uplink import HttpUplink

log = logging.getLogger(__name__)


class GatewayRunner:
    """Owns the gateway's threads and closes what it opened."""

    def __init__(self, config: GatewayConfig, token: str | None = None) -> None:
        token = token or config.uplink_token()
        self._uplink = HttpUplink(config.uplink.url, token, config.uplink.timeout_s)
        self._health_uplink = HttpUplink(config.uplink.url, token, config.uplink.timeout_s)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.engine = DetectionEngine(config.gateway_id, config.engine_settings())
        o = config.outbox
        self.outbox = SqliteOutbox(o.path, o.max_readings, o.max_bytes)
        self.gateway = Gateway(
            config,
            self.engine,
            self.outbox,
            self._uplink,
            alert_sink=self._publish_alert,
            acknowledge=self._acknowledge,
        )
        self.intake = MqttIntake(
            config.mqtt,
            client_id=f"leaksense-gw-{config.gateway_id}",
            topics=config.mqtt.subscriptions + self.gateway.parser.esphome_topics,
            handler=self.gateway.handle_message,
        )
        self.models = ModelSync(config, token, install=self._install_models)
        self.sensitivity = SensitivitySync(config, token, tune=self._tune, dismiss=self._dismiss)
        self.health = HealthReporter(
            config,
            self.gateway.stats,
            self.outbox,
            self._model_versions,
            send=self._health_uplink.send_health,
            publish=self._publish_health,
        )
        self.metrics = MetricsServer(
            config.metrics, GatewayCollector(self.health.snapshot, self.gateway.stats)
        )

    def _install_models(self, artifacts: Sequence[ModelArtifact]) -> int:
        with self.gateway.detection_lock:
            return self.engine.install(artifacts)

    def _tune(self, multipliers: Mapping[str, float]) -> int:
        with self.gateway.detection_lock:
            return self.engine.set_sensitivity(multipliers)

    def _dismiss(self, dismissals: Sequence[Dismissal]) -> int:
        """Close the alerts people dismissed; the closing alerts go up like any."""
        with self.gateway.detection_lock:
            closed = [self.engine.dismiss(d.alert_id, d.flow_m3h, d.resolution) for d in dismissals]
        alerts = [a for a in closed if a is not None]
        self.gateway.emit(alerts)
        return len(alerts)

    def _model_versions(self) -> dict[str, str]:
        with self.gateway.detection_lock:
            return model_versions(self.engine.series, self.engine.dma_series)

    def _publish_alert(self, topic: str, payload: str) -> None:
        self.intake.publish(topic, payload)

    def _publish_health(self, topic: str, payload: str) -> None:
        self.intake.publish(topic, payload, retain=True)

    def _acknowledge(self, receipts: Sequence[Receipt]) -> None:
        self.intake.ack(receipts)

    def start(self) -> None:
        self.models.start()  # saved models first: the first readings already use them
        self.sensitivity.load_saved()
        # Modules, schemas and models live as long as the process: keep them out of
        # the full collections that the intake's short-lived objects trigger.
        gc.collect()
        gc.freeze()
        self._spawn("committer", self.gateway.run_committer)
        self.intake.start()
        self._spawn("uplink", self.gateway.run_uplink)
        self._spawn("health", self.health.run)
        self._spawn("sensitivity", self.sensitivity.run)
        self.metrics.start()

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop intake, commit and acknowledge what came in, try to send what is pending.

        What is not sent stays in the outbox for the next start.
        """
        self.gateway.stop_accepting()
        self.metrics.stop()
        self.models.stop()
        self._stop.set()
        for thread in self._threads:  # the committer's last commit sends its PUBACKs
            thread.join()
        self.intake.stop()
        with self.gateway.detection_lock:
            self.engine.close()  # the buffered refit history, for the next start
        if not self.gateway.drain(drain_timeout_s):
            log.warning("%d item(s) stay in the outbox for the next start", self.outbox.depth())
        self._uplink.close()
        self._health_uplink.close()
        self.sensitivity.close()
        self.outbox.close()
        gc.unfreeze()
