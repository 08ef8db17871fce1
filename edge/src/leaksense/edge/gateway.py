"""The gateway service: intake → detection → outbox → uplink.

``handle_message`` runs on the MQTT thread and never raises: a bad message is
counted, logged and acknowledged (never re-sent), the gateway keeps running. Each
reading goes through the detector at once, in arrival order, and joins the intake
group that ``run_committer`` makes durable before acknowledging it to the broker
(:mod:`leaksense.edge.intake_group`). ``run_uplink`` runs on its own thread and
retries with exponential backoff and jitter: delays of 1–2, 2–4, 4–8 … s, capped at
``uplink.retry_max_s`` (or the server's ``Retry-After``); a batch leaves the outbox
only once the server confirmed it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from leaksense.core.errors import (
    AuthenticationError,
    InvalidInput,
    InvalidMessage,
    ServiceUnavailable,
)
from leaksense.core.messages import Alert, IngestBatch
from leaksense.core.topics import alert_topic
from leaksense.edge.config import GatewayConfig
from leaksense.edge.detector import Detector
from leaksense.edge.intake import MessageParser
from leaksense.edge.intake_group import Acknowledger, IntakeGroup
from leaksense.edge.mqtt import Receipt
from leaksense.edge.outbox import Outbox, PendingBatch, ReadingRow
from leaksense.edge.uplink import Uplink

log = logging.getLogger(__name__)
AlertSink = Callable[[str, str], None]
"""Publishes ``(topic, json)`` locally so alerts are visible on site while offline."""


@dataclass
class GatewayStats:
    """Counters a technician or a test can read (in health reports and ``/metrics``)."""

    messages_received: int = 0
    messages_rejected: int = 0
    alerts_raised: int = 0
    batches_sent: int = 0
    readings_sent: int = 0
    alerts_sent: int = 0
    send_failures: int = 0
    batches_dead_lettered: int = 0
    outbox_commit_failures: int = 0
    """Commits the outbox refused (disk full, I/O error): messages stay with the broker."""
    last_confirmed_at: datetime | None = None
    """When the server last confirmed a batch."""


SANE_CLOCK_FROM_S = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
"""A gateway clock before this (a Pi without RTC booted offline, in 1970) is not fit to
judge its sensors' clocks by; the health report shows the jump when NTP sets it."""


class Gateway:
    """Wires parser, detector, outbox and uplink for one gateway config."""

    def __init__(
        self,
        config: GatewayConfig,
        detector: Detector,
        outbox: Outbox,
        uplink: Uplink,
        *,
        alert_sink: AlertSink | None = None,
        acknowledge: Acknowledger | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._wall_clock = wall_clock
        """The gateway's clock, against which sensors' clocks are checked."""
        self.parser = MessageParser(config)
        self.stats = GatewayStats()
        self._detector = detector
        self._outbox = outbox
        self._uplink = uplink
        self._alert_sink = alert_sink
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._accepting = True
        self.group = IntakeGroup(
            outbox,
            config.outbox.commit_interval_s,
            config.outbox.commit_max_messages,
            acknowledge,
            self._committed,
            on_failure=self._commit_failed,
        )

    @property
    def detection_lock(self) -> threading.Lock:
        """Held while a reading goes through the detector: hold it to change the
        detector from another thread (installing models fetched from the server)."""
        return self._lock

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def handle_message(self, topic: str, payload: bytes, receipt: Receipt | None = None) -> None:
        """Validate and detect one MQTT message; it is acknowledged once committed."""
        if not self._accepting:
            return  # stopping: left unacknowledged, the broker keeps it for next time
        with self._lock:
            self.stats.messages_received += 1
            try:
                row = self.parser.parse_row(topic, payload)
            except InvalidMessage as exc:
                self.stats.messages_rejected += 1
                log.warning("rejected message #%d: %s", self.stats.messages_rejected, exc)
                self.group.append(None, (), receipt)
                return
            alerts = self._observe(row)
            self.stats.alerts_raised += len(alerts)
            self.group.append(row, alerts, receipt)
        for alert in alerts:
            self._announce(alert)

    def emit(self, alerts: Sequence[Alert]) -> None:
        """Alerts raised outside a reading (a dismissal): committed, sent, announced."""
        if not alerts:
            return
        self.stats.alerts_raised += len(alerts)
        self.group.append(None, alerts, None)
        for alert in alerts:
            self._announce(alert)

    def _observe(self, row: ReadingRow) -> list[Alert]:
        sensor_id, stamped, flow_m3h, index_m3 = row
        epoch_s = stamped.timestamp()
        now_s = self._wall_clock()
        # A gateway whose own clock is wrong judges no sensor's.
        received_s = now_s if now_s >= SANE_CLOCK_FROM_S else None
        return self._detector.observe_values(sensor_id, epoch_s, flow_m3h, index_m3, received_s)

    def stop_accepting(self) -> None:
        """Ignore (and leave unacknowledged) every message from now on."""
        self._accepting = False

    def run_committer(self, stop: threading.Event) -> None:
        """Commit intake groups until ``stop`` is set (see :class:`IntakeGroup`)."""
        self.group.run(stop)

    def _committed(self, readings: int, alerts: int) -> None:
        if alerts or self._outbox.depth() >= self.config.uplink.batch_max_readings:
            self._wake.set()

    def _commit_failed(self) -> None:
        self.stats.outbox_commit_failures += 1

    def flush_once(self) -> bool:
        """Send the pending batch, if any; True when the server stored one."""
        pending = self._outbox.peek_batch(self.config.uplink.batch_max_readings)
        if pending is None:
            return False
        batch = IngestBatch(
            gateway_id=self.config.gateway_id,
            batch_seq=pending.batch_seq,
            sent_at=datetime.now(UTC),
            readings=list(pending.readings),
            alerts=list(pending.alerts),
        )
        try:
            self._uplink.send(batch)
        except InvalidInput as exc:
            self._dead_letter(pending, batch, exc)
            return False
        self._outbox.confirm(pending.batch_seq)
        self.stats.last_confirmed_at = datetime.now(UTC)
        self.stats.batches_sent += 1
        self.stats.readings_sent += len(pending.readings)
        self.stats.alerts_sent += len(pending.alerts)
        return True

    def run_uplink(self, stop: threading.Event) -> None:
        """Flush until ``stop`` is set, backing off while the server is unreachable."""
        failures = 0
        while not stop.is_set():
            try:
                while self.flush_once() and not stop.is_set():
                    failures = 0
                self._wake.wait(self.config.uplink.flush_interval_s)
                self._wake.clear()
            except (ServiceUnavailable, AuthenticationError) as exc:
                failures += 1
                self.stats.send_failures += 1
                delay_s = self._backoff_s(failures, exc)
                log.warning("uplink failed (%s); retrying in %.1f s", exc, delay_s)
                stop.wait(delay_s)

    def drain(self, timeout_s: float) -> bool:
        """Commit the intake group and send everything pending now; True if all was sent."""
        self.group.commit()
        stop = threading.Event()
        timer = threading.Timer(timeout_s, stop.set)
        timer.start()
        try:
            while self._outbox.depth() and not stop.is_set():
                try:
                    self.flush_once()
                except (ServiceUnavailable, AuthenticationError) as exc:
                    log.warning("drain: %s", exc)
                    stop.wait(1.0)
        finally:
            timer.cancel()
        return self._outbox.depth() == 0

    def _backoff_s(self, failures: int, exc: Exception) -> float:
        cap_s = self.config.uplink.retry_max_s
        base_s = min(cap_s, 2.0 ** (failures - 1))
        if isinstance(exc, ServiceUnavailable):
            base_s = min(cap_s, max(base_s, exc.retry_after_s))
        return random.uniform(base_s, min(cap_s, 2 * base_s))

    def _announce(self, alert: Alert) -> None:
        log.warning("ALERT %s %s: %s", alert.sensor_id, alert.kind.value, alert.explanation_en)
        if self._alert_sink is not None:
            self._alert_sink(
                alert_topic(self.config.site, alert.sensor_id or f"dma-{alert.dma_id}"),
                alert.model_dump_json(),
            )

    def _dead_letter(self, pending: PendingBatch, batch: IngestBatch, exc: InvalidInput) -> None:
        """Keep a batch the server refuses on disk instead of retrying it forever."""
        folder: Path = self.config.dead_letter_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"batch-{batch.batch_seq}-{int(batch.sent_at.timestamp())}.json"
        path.write_text(json.dumps({"error": str(exc), "batch": batch.model_dump(mode="json")}))
        self._outbox.confirm(pending.batch_seq)
        self.stats.batches_dead_lettered += 1
        log.error("server refused batch %d, saved to %s: %s", batch.batch_seq, path, exc)
