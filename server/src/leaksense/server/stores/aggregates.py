"""Downsampled aggregates kept up to date as readings arrive: the rules both adapters share.

Reports need each meter's volume per hour and per day over a year; summing a year of
1-minute readings (525 600 per meter) on every report is far too slow on InfluxDB 1.x.
So every write also recomputes, *from the stored readings*, the hours it touched
(``flow_hourly``: mean flow and reading count per sensor and UTC hour) and then, from
those hours, the days it touched (``flow_daily``: volume of the measured hours, hours
measured, lowest hourly mean). Recomputing from what is stored, rather than adding the
new readings to a running sum, makes a write idempotent: a re-sent batch, a reading
replaced, late or back-filled data all give the aggregate the readings would give.

Hours and days are UTC. Only the sensors of a batch, and only their touched hours and
days, are recomputed, with bounded queries; sensors sharing the same touched span are
recomputed together.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from leaksense.server.columns import HOUR_US, ReadingPoint

DAY_US = 24 * HOUR_US
MAX_SPAN_US = 31 * DAY_US
"""A recompute query covers at most a month: a batch spanning more is split."""


@dataclass(frozen=True, slots=True)
class Span:
    """``[start_us, end_us)`` in epoch microseconds, aligned on the unit it was made for."""

    start_us: int
    end_us: int


def hour_spans(points: Iterable[ReadingPoint]) -> dict[str, Span]:
    """Each sensor's span of whole hours, from its first reading's hour to its last's."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for sensor_id, t, _flow, _index in points:
        if t < first.get(sensor_id, t + 1):
            first[sensor_id] = t
        if t > last.get(sensor_id, t - 1):
            last[sensor_id] = t
    return {
        s: Span(t0 // HOUR_US * HOUR_US, last[s] // HOUR_US * HOUR_US + HOUR_US)
        for s, t0 in first.items()
    }


def touched_hours(points: Iterable[ReadingPoint]) -> dict[Span, list[str]]:
    """Sensors grouped by the span of whole hours their readings fall into."""
    return group_sensors({s: [span] for s, span in hour_spans(points).items()})


def group_sensors(spans: dict[str, list[Span]], gap_us: int = 0) -> dict[Span, list[str]]:
    """Sensors grouped by recompute span: each sensor's spans merged where they overlap
    or are at most ``gap_us`` apart, then cut into spans of at most :data:`MAX_SPAN_US`."""
    groups: dict[Span, list[str]] = defaultdict(list)
    for sensor_id, parts in spans.items():
        for merged in coalesce(parts, gap_us):
            for part in split(merged, MAX_SPAN_US):
                groups[part].append(sensor_id)
    return dict(groups)


def coalesce(spans: Iterable[Span], gap_us: int = 0) -> list[Span]:
    """``spans`` sorted and merged where they overlap or are at most ``gap_us`` apart."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start_us):
        if out and span.start_us <= out[-1].end_us + gap_us:
            if span.end_us > out[-1].end_us:
                out[-1] = Span(out[-1].start_us, span.end_us)
        else:
            out.append(span)
    return out


def days_of(span: Span) -> Span:
    """The whole UTC days that contain an hour span."""
    return Span(span.start_us // DAY_US * DAY_US, -(-span.end_us // DAY_US) * DAY_US)


def split(span: Span, size_us: int) -> list[Span]:
    """``span`` cut into consecutive spans of at most ``size_us``."""
    return [
        Span(t, min(t + size_us, span.end_us)) for t in range(span.start_us, span.end_us, size_us)
    ]


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_hourly (
    sensor_id TEXT NOT NULL,
    hour_us INTEGER NOT NULL,
    mean_flow_m3h REAL NOT NULL,
    reading_count INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, hour_us)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flow_daily (
    sensor_id TEXT NOT NULL,
    day_us INTEGER NOT NULL,
    volume_m3 REAL NOT NULL,
    hours_measured INTEGER NOT NULL,
    min_hourly_flow_m3h REAL NOT NULL,
    PRIMARY KEY (sensor_id, day_us)
) WITHOUT ROWID;
"""
_SQLITE_RECOMPUTE = (
    "DELETE FROM flow_hourly WHERE sensor_id = :s AND hour_us >= :t0 AND hour_us < :t1",
    "INSERT INTO flow_hourly SELECT sensor_id, (time_us / :hour) * :hour AS h, avg(flow_m3h),"
    " count(*) FROM readings WHERE sensor_id = :s AND time_us >= :t0 AND time_us < :t1"
    " GROUP BY h",
    "DELETE FROM flow_daily WHERE sensor_id = :s AND day_us >= :d0 AND day_us < :d1",
    "INSERT INTO flow_daily SELECT sensor_id, (hour_us / :day) * :day AS d,"
    " sum(mean_flow_m3h), count(*), min(mean_flow_m3h) FROM flow_hourly"
    " WHERE sensor_id = :s AND hour_us >= :d0 AND hour_us < :d1 GROUP BY d",
)


def update_sqlite(conn: sqlite3.Connection, points: Iterable[ReadingPoint]) -> None:
    """Recompute the touched hours from ``readings``, then the touched days from the hours.

    Run inside the transaction that wrote the readings (same connection, no commit).
    """
    for span, sensor_ids in touched_hours(points).items():
        days = days_of(span)
        for sensor_id in sensor_ids:
            params = {
                "s": sensor_id,
                "t0": span.start_us,
                "t1": span.end_us,
                "d0": days.start_us,
                "d1": days.end_us,
                "hour": HOUR_US,
                "day": DAY_US,
            }
            for statement in _SQLITE_RECOMPUTE:
                conn.execute(statement, params)
