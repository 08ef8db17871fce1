"""The outbox between intake and uplink, behind the :class:`Outbox` Protocol.

A batch taken from the outbox keeps its ``batch_seq`` until the server confirms it,
so a retry re-sends the very same batch and the server's idempotent ingest stores
nothing twice. Alerts leave before readings. :class:`MemoryOutbox` keeps everything
in RAM (a restart loses what is pending); the durable SQLite outbox replaces it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from leaksense.core.messages import MAX_ALERTS_PER_BATCH, Alert, Reading

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PendingBatch:
    batch_seq: int
    readings: tuple[Reading, ...]
    alerts: tuple[Alert, ...]


class Outbox(Protocol):
    def add(self, readings: Sequence[Reading], alerts: Sequence[Alert]) -> None: ...

    def peek_batch(self, max_readings: int) -> PendingBatch | None:
        """The batch to send now (the same one until it is confirmed), or None."""
        ...

    def confirm(self, batch_seq: int) -> None:
        """Forget a batch the server has stored."""
        ...

    def depth(self) -> int:
        """Readings and alerts waiting, including the batch in flight."""
        ...


class MemoryOutbox:
    """Bounded in-memory outbox; when full it drops the oldest readings, counted and logged."""

    def __init__(self, max_readings: int) -> None:
        self._max_readings = max_readings
        self._readings: deque[Reading] = deque()
        self._alerts: deque[Alert] = deque()
        self._in_flight: PendingBatch | None = None
        self._next_seq = 0
        self._lock = threading.Lock()
        self.dropped_readings = 0

    def add(self, readings: Sequence[Reading], alerts: Sequence[Alert]) -> None:
        with self._lock:
            self._readings.extend(readings)
            self._alerts.extend(alerts)
            overflow = len(self._readings) - self._max_readings
            for _ in range(max(0, overflow)):
                self._readings.popleft()
            if overflow > 0:
                self.dropped_readings += overflow
                log.error("outbox full: dropped %d oldest readings", overflow)

    def peek_batch(self, max_readings: int) -> PendingBatch | None:
        with self._lock:
            if self._in_flight is None and (self._readings or self._alerts):
                alerts = _take(self._alerts, MAX_ALERTS_PER_BATCH)
                readings = _take(self._readings, max_readings)
                self._in_flight = PendingBatch(self._next_seq, readings, alerts)
                self._next_seq += 1
            return self._in_flight

    def confirm(self, batch_seq: int) -> None:
        with self._lock:
            if self._in_flight is not None and self._in_flight.batch_seq == batch_seq:
                self._in_flight = None

    def depth(self) -> int:
        with self._lock:
            in_flight = self._in_flight
            flying = len(in_flight.readings) + len(in_flight.alerts) if in_flight else 0
            return len(self._readings) + len(self._alerts) + flying


def _take(queue: deque[T], count: int) -> tuple[T, ...]:
    return tuple(queue.popleft() for _ in range(min(count, len(queue))))
