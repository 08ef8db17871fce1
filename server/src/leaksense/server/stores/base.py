"""The reading-store port and the rules every adapter follows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import Reading
from leaksense.server.columns import ReadingPoint, epoch_us

MAX_QUERY_SPAN = timedelta(days=400)
"""Every query is bounded in time: an unbounded InfluxQL ``GROUP BY time()`` can
exhaust the server's memory (see components.md). 400 days covers an annual report."""


@dataclass(frozen=True, slots=True)
class HourlyFlow:
    """Mean flow of one sensor over one UTC hour, and how many readings made it."""

    hour_start: datetime
    mean_flow_m3h: float
    reading_count: int


@dataclass(frozen=True, slots=True)
class DailyFlow:
    """One sensor's UTC day, summed from its hourly aggregate.

    ``volume_m3`` counts the measured hours only (Σ hourly mean flow × 1 h); the
    caller estimates the ``24 − hours_measured`` others. ``min_hourly_flow_m3h`` is the
    lowest hourly mean of the day: a single inlet's minimum night flow.
    """

    day_start: datetime
    volume_m3: float
    hours_measured: int
    min_hourly_flow_m3h: float


class ReadingStore(Protocol):
    """Time-series storage of readings.

    Writes are idempotent: a reading is keyed by ``(sensor_id, time)`` and writing
    the same key again replaces it, so a re-sent batch stores nothing twice.
    """

    def write(self, readings: Sequence[Reading]) -> int:
        """Store readings durably; return how many were written."""
        ...

    def write_points(self, points: Sequence[ReadingPoint]) -> int:
        """:meth:`write` for readings as tuples, the ingest path (see ``wire.py``)."""
        ...

    def refresh_aggregates(self) -> int:
        """Bring the hourly and daily aggregates up to date with every confirmed write.

        Reads do this for the sensors they read, so calling it is never needed for
        correctness; it moves the work out of a later read (e.g. after a bulk load).
        Returns how many sensor spans were recomputed.
        """
        ...

    def readings(
        self, sensor_id: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[Reading]:
        """Readings of one sensor in ``[start, end)``, oldest first."""
        ...

    def hourly_flow(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        """Hourly mean flow of one sensor for the hours starting in ``[start, end)``.

        Read from the hourly aggregate, brought up to date with every confirmed write
        first (see ``stores/aggregates.py``); hours without data are absent.
        """
        ...

    def daily_flow(
        self, sensor_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[DailyFlow]]:
        """Daily aggregate of each sensor for the UTC days starting in ``[start, end)``.

        One query for all the sensors: an annual report of many DMAs reads 365 rows
        per meter instead of 8 760 hours or half a million readings.
        """
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


def points_of(readings: Iterable[Reading]) -> list[ReadingPoint]:
    """``Reading`` objects as the tuples :meth:`ReadingStore.write_points` takes."""
    return [(r.sensor_id, epoch_us(r.time), r.flow_m3h, r.index_m3) for r in readings]
