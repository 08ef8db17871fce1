"""The outbox between intake and uplink, behind the :class:`Outbox` Protocol.

Contract (the gateway and the uplink rely on it; see docs/gateway-durability.md):

- ``add`` (and ``add_rows``) returns once the readings and alerts are durable: the MQTT message that
  carried them may be acknowledged to the broker only after that.
- ``peek_batch`` returns the same batch (same ``batch_seq``, same content) until
  ``confirm`` is called with its ``batch_seq``, even across a restart, so a retry is
  idempotent for the server. ``batch_seq`` grows across restarts.
- A new batch takes the pending alerts first, then the oldest readings.
- ``confirm`` forgets a whole batch at once (one transaction).

The implementation is :class:`leaksense.edge.outbox_sqlite.SqliteOutbox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from leaksense.core.messages import Alert, Reading

ReadingRow = tuple[str, datetime, float, float | None]
"""A validated reading as the intake hands it over: ``(sensor_id, time (UTC), flow_m3h,
index_m3)``; cheaper to build than a :class:`Reading` on the hot path."""


@dataclass(frozen=True, slots=True)
class PendingBatch:
    batch_seq: int
    readings: tuple[Reading, ...]
    alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What the outbox holds now, for health reports and ``/metrics``."""

    readings: int
    alerts: int
    bytes_used: int
    capacity_pct: float
    """The larger of readings ÷ ``max_readings`` and bytes ÷ ``max_bytes``, in %."""
    oldest_unsent_at: datetime | None
    """Time of the reading that has waited longest (None when no reading waits)."""
    readings_dropped: int
    """Readings folded into hourly aggregates at the bound, since the outbox was created."""


class Outbox(Protocol):
    def add(self, readings: Sequence[Reading], alerts: Sequence[Alert]) -> None:
        """Store durably; returns after the commit."""
        ...

    def add_rows(self, rows: Sequence[ReadingRow], alerts: Sequence[Alert]) -> None:
        """:meth:`add` for readings given as :data:`ReadingRow` (the intake's form)."""
        ...

    def peek_batch(self, max_readings: int) -> PendingBatch | None:
        """The batch to send now (the same one until it is confirmed), or None."""
        ...

    def confirm(self, batch_seq: int) -> None:
        """Forget a batch the server has stored."""
        ...

    def depth(self) -> int:
        """Readings and alerts waiting, including the batch in flight."""
        ...

    def stats(self) -> OutboxStats: ...
