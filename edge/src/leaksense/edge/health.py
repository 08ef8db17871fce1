"""The gateway's health: what it reports to the server, on site, and on ``/metrics``.

Every ``[health] interval_s`` the :class:`HealthReporter` builds a
:class:`~leaksense.core.messages.GatewayHealth` (outbox depth and fill level, oldest
unsent reading, messages received and rejected, readings dropped at the bound, clock
jumps, software and model versions), POSTs it to the server and publishes it,
retained, on the local broker (``leaksense/<site>/gateway/<gateway_id>/health``) so a technician
on site sees it without the uplink. It reports at once, and logs a WARNING, when
the outbox crosses ``[outbox] warn_pct`` or the clock jumps.

A *clock jump* is a step of the wall clock that the monotonic clock did not see:
an NTP correction after days offline, an RTC-less Pi booting in 1970, a technician
setting the date. It is checked every second. Readings keep their own timestamps
(stored and forwarded as they are, late or out of order); the report lets the
server judge ESPHome readings, which are stamped with the gateway's clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from leaksense.core.errors import LeaksenseError, NotFoundError
from leaksense.core.messages import GatewayHealth
from leaksense.core.topics import health_topic
from leaksense.edge.config import GatewayConfig
from leaksense.edge.detection.series import SeriesDetector
from leaksense.edge.gateway import GatewayStats
from leaksense.edge.outbox import Outbox

log = logging.getLogger(__name__)
TICK_S = 1.0
Clock = Callable[[], float]
HealthSender = Callable[[GatewayHealth], None]
LocalPublisher = Callable[[str, str], None]
"""Publishes ``(topic, json)`` retained on the local broker."""
ModelVersions = Callable[[], dict[str, str]]


def software_version() -> str:
    try:
        return version("leaksense-edge")[:40]
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def model_versions(
    series: Mapping[str, SeriesDetector], dma_series: Mapping[str, SeriesDetector]
) -> dict[str, str]:
    """Series id (``dma:<id>`` for a DMA) → trainer and training end of its model."""
    every = [*series.items(), *((f"dma:{k}", v) for k, v in dma_series.items())]
    return {
        series_id: f"{a.trainer} {a.trained_to:%Y-%m-%dT%H:%M:%SZ}"[:80]
        for series_id, s in every
        if (a := s.artifact) is not None
    }


class ClockWatch:
    """Compares wall-clock steps with monotonic steps; a gap above ``threshold_s`` is a jump."""

    def __init__(self, threshold_s: float, wall: Clock = time.time, mono: Clock = time.monotonic):
        self._threshold_s = threshold_s
        self._wall, self._mono = wall, mono
        self._last = (wall(), mono())
        self.jumps = 0
        self.last_jump_s: float | None = None

    def check(self) -> float | None:
        """The jump (s, positive forward) since the last check, or None."""
        now = (self._wall(), self._mono())
        skew_s = (now[0] - self._last[0]) - (now[1] - self._last[1])
        self._last = now
        if abs(skew_s) <= self._threshold_s:
            return None
        self.jumps += 1
        self.last_jump_s = skew_s
        return skew_s


class HealthReporter:
    """Builds health reports and sends them to the server and the local broker."""

    def __init__(
        self,
        config: GatewayConfig,
        stats: GatewayStats,
        outbox: Outbox,
        models: ModelVersions,
        *,
        send: HealthSender | None = None,
        publish: LocalPublisher | None = None,
        clock: ClockWatch | None = None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._outbox = outbox
        self._models = models
        self._send = send
        self._publish = publish
        self.clock = clock or ClockWatch(config.health.clock_jump_s)
        self._started_mono = time.monotonic()
        self._version = software_version()
        self._server_too_old = False
        self._warned_full = False
        self.reports_sent = 0

    def snapshot(self) -> GatewayHealth:
        """The gateway's health now."""
        outbox = self._outbox.stats()
        return GatewayHealth(
            gateway_id=self._config.gateway_id,
            sent_at=datetime.now(UTC),
            software_version=self._version,
            model_versions=self._models(),
            uptime_s=time.monotonic() - self._started_mono,
            outbox_readings=outbox.readings,
            outbox_alerts=outbox.alerts,
            outbox_bytes=outbox.bytes_used,
            outbox_capacity_pct=round(outbox.capacity_pct, 3),
            oldest_unsent_at=outbox.oldest_unsent_at,
            messages_received=self._stats.messages_received,
            messages_rejected=self._stats.messages_rejected,
            readings_dropped=outbox.readings_dropped,
            outbox_commit_failures=self._stats.outbox_commit_failures,
            clock_jumps=self.clock.jumps,
            last_clock_jump_s=self.clock.last_jump_s,
        )

    def tick(self) -> bool:
        """Check the clock and the outbox's fill level; True if a report is due now."""
        urgent = False
        jump_s = self.clock.check()
        if jump_s is not None:
            log.warning("the gateway clock jumped by %+.0f s (#%d)", jump_s, self.clock.jumps)
            urgent = True
        capacity_pct = self._outbox.stats().capacity_pct
        warn_pct = self._config.outbox.warn_pct
        if capacity_pct >= warn_pct and not self._warned_full:
            log.warning(
                "outbox %.1f %% full (warning at %.0f %%): the uplink is not keeping up",
                capacity_pct,
                warn_pct,
            )
            self._warned_full = urgent = True
        elif capacity_pct < warn_pct - 5:
            self._warned_full = False
        return urgent

    def report(self) -> GatewayHealth:
        """Send a report now: local broker first (always reachable), then the server."""
        health = self.snapshot()
        if self._publish is not None:
            self._publish(
                health_topic(self._config.site, self._config.gateway_id), health.model_dump_json()
            )
        if self._send is not None:
            try:
                self._send(health)
                self.reports_sent += 1
                self._server_too_old = False
            except NotFoundError as exc:
                if not self._server_too_old:
                    log.warning("health reports are not sent: %s", exc)
                self._server_too_old = True
            except LeaksenseError as exc:
                log.warning("health report not sent: %s", exc)
        return health

    def run(self, stop: threading.Event) -> None:
        """Tick every second and report every ``interval_s`` (or at once when urgent)."""
        next_report = time.monotonic()
        while not stop.wait(TICK_S if next_report > time.monotonic() else 0):
            try:
                if self.tick() or time.monotonic() >= next_report:
                    self.report()
                    next_report = time.monotonic() + self._config.health.interval_s
            except LeaksenseError as exc:  # the outbox could not be read: try next tick
                log.error("health check failed: %s", exc)
