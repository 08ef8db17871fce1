"""The gateway's Prometheus endpoint (``[metrics]``, ``http://127.0.0.1:9108/metrics``).

The figures are those of the health report (:mod:`leaksense.edge.health`), read at
scrape time from one snapshot, so ``/metrics`` and the report never disagree; plus
the uplink counters. Bound to loopback by default: the gateway's LAN is the sensors'.
A port that cannot be bound is logged and skipped: metrics must not stop a gateway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from leaksense.core.messages import GatewayHealth
from leaksense.edge.config import MetricsConfig
from leaksense.edge.gateway import GatewayStats

log = logging.getLogger(__name__)
PREFIX = "leaksense_gateway"


class GatewayCollector(Collector):
    """Turns a health snapshot and the gateway's counters into Prometheus metrics."""

    def __init__(self, snapshot: Callable[[], GatewayHealth], stats: GatewayStats) -> None:
        self._snapshot = snapshot
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        h, s = self._snapshot(), self._stats
        yield InfoMetricFamily(
            PREFIX,
            "Gateway identity and software version",
            value={"gateway_id": h.gateway_id, "software_version": h.software_version},
        )
        models = InfoMetricFamily(
            f"{PREFIX}_model", "Model run by each series", labels=["series_id", "version"]
        )
        for series_id, model_version in sorted(h.model_versions.items()):
            models.add_metric([series_id, model_version], {})
        yield models
        gauges = {
            "uptime_seconds": ("Seconds since the gateway started", h.uptime_s),
            "outbox_readings": ("Readings waiting in the outbox", h.outbox_readings),
            "outbox_alerts": ("Alerts waiting in the outbox", h.outbox_alerts),
            "outbox_bytes": ("Bytes of outbox pages in use", h.outbox_bytes),
            "outbox_capacity_percent": ("Outbox fill level", h.outbox_capacity_pct),
            "last_clock_jump_seconds": ("Size of the last clock jump", h.last_clock_jump_s),
        }
        if h.oldest_unsent_at is not None:
            gauges["oldest_unsent_timestamp_seconds"] = (
                "Time of the reading that has waited longest",
                h.oldest_unsent_at.timestamp(),
            )
        if s.last_confirmed_at is not None:
            gauges["last_confirmed_timestamp_seconds"] = (
                "When the server last confirmed a batch",
                s.last_confirmed_at.timestamp(),
            )
        for name, (doc, value) in gauges.items():
            if value is not None:
                yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)
        counters = {
            "messages_received": ("MQTT messages received", h.messages_received),
            "messages_rejected": ("MQTT messages rejected as invalid", h.messages_rejected),
            "readings_dropped": ("Readings folded into hourly means", h.readings_dropped),
            "outbox_commit_failures": (
                "Outbox commits refused (disk full, I/O error)",
                h.outbox_commit_failures,
            ),
            "clock_jumps": ("Clock jumps detected", h.clock_jumps),
            "alerts_raised": ("Alerts raised by local detection", s.alerts_raised),
            "batches_sent": ("Batches confirmed by the server", s.batches_sent),
            "readings_sent": ("Readings confirmed by the server", s.readings_sent),
            "send_failures": ("Failed uplink attempts", s.send_failures),
            "batches_dead_lettered": ("Batches refused by the server", s.batches_dead_lettered),
        }
        for name, (doc, count) in counters.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", doc, value=count)


class MetricsServer:
    """``/metrics`` over HTTP on its own thread (prometheus-client's WSGI server)."""

    def __init__(self, config: MetricsConfig, collector: Collector) -> None:
        self._config = config
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The bound port (None when off)."""
        return self._server.server_port if self._server is not None else None

    def start(self) -> None:
        if self._config.port == 0:
            return
        try:
            self._server, self._thread = start_http_server(
                self._config.port, addr=self._config.host, registry=self.registry
            )
        except OSError as exc:
            log.error(
                "metrics off: cannot listen on %s:%d: %s",
                self._config.host,
                self._config.port,
                exc,
            )
            return
        log.info("metrics on http://%s:%d/metrics", self._config.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None
