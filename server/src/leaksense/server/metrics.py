"""The server's Prometheus metrics (``GET /metrics``).

Two kinds, on one registry per app (never the global one, so that several apps can
live in one process, as in the tests):

- **This instance's counters** (``leaksense_server_*``): ingest requests, readings
  and alerts stored, replays, rejected requests by HTTP status, store write latency.
  With several instances, scrape each and sum, as usual for Prometheus counters.
- **The gateways' health** (``leaksense_gateway_*``, labelled ``gateway_id``): the
  figures of each gateway's last report, with the names the gateway uses on its own
  ``/metrics`` (``leaksense.edge.metrics``). They are read from the entity database
  at scrape time, so every instance shows the same values whichever one received
  the report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from leaksense.server.services.gateways import GatewayStatus, list_gateways
from leaksense.server.services.ingest import IngestOutcome

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST
GATEWAY = "leaksense_gateway"
WRITE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    """Counters of this instance plus the gateways' last health, on a private registry."""

    def __init__(self, sessions: sessionmaker[Any], store_kind: str) -> None:
        self.registry = CollectorRegistry()
        self._store_kind = store_kind
        p, r = "leaksense_server", self.registry
        self._requests = Counter(
            f"{p}_ingest_requests", "Ingest requests answered 200", ["gateway_id"], registry=r
        )
        self._readings = Counter(
            f"{p}_ingest_readings", "Readings written by ingest", ["gateway_id"], registry=r
        )
        self._alerts = Counter(
            f"{p}_ingest_alerts", "Alerts upserted by ingest", ["gateway_id"], registry=r
        )
        self._replays = Counter(
            f"{p}_ingest_replays",
            "Batches received again and answered from the batch log, not written",
            ["gateway_id"],
            registry=r,
        )
        self._rejected = Counter(
            f"{p}_rejected_requests", "Requests refused, by HTTP status", ["status"], registry=r
        )
        self._write_s = Histogram(
            f"{p}_store_write_seconds",
            "Time the reading store took to write one batch",
            ["store"],
            buckets=WRITE_BUCKETS_S,
            registry=r,
        )
        self.registry.register(GatewayHealthCollector(sessions))

    def ingested(self, gateway_id: str, outcome: IngestOutcome) -> None:
        self._requests.labels(gateway_id).inc()
        if outcome.replayed:
            self._replays.labels(gateway_id).inc()
            return
        self._readings.labels(gateway_id).inc(outcome.result.readings_stored)
        self._alerts.labels(gateway_id).inc(outcome.result.alerts_stored)
        if outcome.store_write_s is not None:
            self._write_s.labels(self._store_kind).observe(outcome.store_write_s)

    def rejected(self, status: int) -> None:
        self._rejected.labels(str(status)).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class GatewayHealthCollector(Collector):
    """Per-gateway gauges and counters from the last health reports in the database."""

    def __init__(self, sessions: sessionmaker[Any]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            with self._sessions() as session:
                gateways = list_gateways(session)
        except SQLAlchemyError as exc:
            # A scrape must not fail: the missing series show that something is wrong.
            log.warning("metrics: cannot read gateway health: %s", exc)
            gateways = []
        yield from _families(gateways)


def _families(gateways: list[GatewayStatus]) -> Iterator[Metric]:
    info = InfoMetricFamily(GATEWAY, "Gateway software version", labels=["gateway_id"])
    models = InfoMetricFamily(
        f"{GATEWAY}_model", "Model run by each series", labels=["gateway_id", "series_id"]
    )
    gauges = {
        name: GaugeMetricFamily(f"{GATEWAY}_{name}", doc, labels=["gateway_id"])
        for name, doc in _GAUGES.items()
    }
    counters = {
        name: CounterMetricFamily(f"{GATEWAY}_{name}", doc, labels=["gateway_id"])
        for name, doc in _COUNTERS.items()
    }
    for g in gateways:
        labels = [g.gateway_id]
        if g.last_seen_at is not None:
            gauges["last_seen_timestamp_seconds"].add_metric(labels, g.last_seen_at.timestamp())
        h = g.health
        if h is None or g.health_received_at is None:
            continue
        info.add_metric(labels, {"software_version": h.software_version})
        for series_id, version in sorted(h.model_versions.items()):
            models.add_metric([g.gateway_id, series_id], {"version": version})
        values: dict[str, float | None] = {
            "last_health_timestamp_seconds": g.health_received_at.timestamp(),
            "uptime_seconds": h.uptime_s,
            "outbox_readings": h.outbox_readings,
            "outbox_alerts": h.outbox_alerts,
            "outbox_bytes": h.outbox_bytes,
            "outbox_capacity_percent": h.outbox_capacity_pct,
            "oldest_unsent_timestamp_seconds": (
                h.oldest_unsent_at.timestamp() if h.oldest_unsent_at else None
            ),
            "last_clock_jump_seconds": h.last_clock_jump_s,
        }
        for name, value in values.items():
            if value is not None:
                gauges[name].add_metric(labels, value)
        counts = {
            "messages_received": h.messages_received,
            "messages_rejected": h.messages_rejected,
            "readings_dropped": h.readings_dropped,
            "outbox_commit_failures": h.outbox_commit_failures,
            "clock_jumps": h.clock_jumps,
        }
        for name, count in counts.items():
            counters[name].add_metric(labels, count)
    yield info
    yield models
    yield from gauges.values()
    yield from counters.values()


_GAUGES = {
    "last_seen_timestamp_seconds": "When the server last heard from the gateway",
    "last_health_timestamp_seconds": "When the server received the gateway's last health report",
    "uptime_seconds": "Seconds since the gateway started (at its last report)",
    "outbox_readings": "Readings waiting in the gateway's outbox",
    "outbox_alerts": "Alerts waiting in the gateway's outbox",
    "outbox_bytes": "Bytes of outbox pages in use",
    "outbox_capacity_percent": "Outbox fill level",
    "oldest_unsent_timestamp_seconds": "Time of the reading that has waited longest",
    "last_clock_jump_seconds": "Size of the gateway's last clock jump",
}
_COUNTERS = {
    "messages_received": "MQTT messages received by the gateway",
    "messages_rejected": "MQTT messages the gateway rejected as invalid",
    "readings_dropped": "Readings the gateway folded into hourly means at its outbox bound",
    "outbox_commit_failures": "Outbox commits the gateway's disk refused (full, I/O error)",
    "clock_jumps": "Clock jumps the gateway detected",
}
