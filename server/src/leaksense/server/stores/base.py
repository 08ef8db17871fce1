"""The reading-store port and the rules every adapter follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import Reading

MAX_QUERY_SPAN = timedelta(days=400)
"""Every query is bounded in time: an unbounded InfluxQL ``GROUP BY time()`` can
exhaust the server's memory (see components.md). 400 days covers an annual report."""


@dataclass(frozen=True, slots=True)
class HourlyFlow:
    """Mean flow of one sensor over one UTC hour, and how many readings made it."""

    hour_start: datetime
    mean_flow_m3h: float
    reading_count: int


class ReadingStore(Protocol):
    """Time-series storage of readings.

    Writes are idempotent: a reading is keyed by ``(sensor_id, time)`` and writing
    the same key again replaces it, so a re-sent batch stores nothing twice.
    """

    def write(self, readings: Sequence[Reading]) -> int:
        """Store readings durably; return how many were written."""
        ...

    def readings(
        self, sensor_id: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[Reading]:
        """Readings of one sensor in ``[start, end)``, oldest first."""
        ...

    def hourly_flow(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        """Hourly mean flow of one sensor in ``[start, end)``; hours without data are absent."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` if the store cannot be reached."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_range(start: datetime, end: datetime) -> None:
    """Refuse naive, empty, reversed or over-long query ranges."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("query range must use timezone-aware (UTC) datetimes")
    if end <= start:
        raise InvalidInput(
            f"query range is empty: end {end.isoformat()} <= start {start.isoformat()}"
        )
    if end - start > MAX_QUERY_SPAN:
        raise InvalidInput(
            f"query range of {(end - start).days} days exceeds the {MAX_QUERY_SPAN.days}-day bound"
        )
