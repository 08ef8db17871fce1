"""The hourly and daily aggregates on InfluxDB, refreshed off the write path (dirty marks).

Aggregates: measurement ``flow_hourly`` (``mean``/``count`` of ``flow`` per sensor and
UTC hour) and ``flow_daily`` (``sum``/``count``/``min`` of those hours per UTC day),
recomputed *from the stored readings* for the hours and days that writes touched.

**Dirty marks.** A write does not recompute anything: the last ``/write`` request of
a write (sent in parts, ``influx.py``) carries, besides readings, one ``flow_dirty``
point per span of whole hours of the write (fields ``h0``/``h1``; ``s``: the sensors
whose readings fall into that span, comma-separated; tag ``g`` numbers the points of
one write), stamped when that request is sent, after every other part was sent. A
write of 200 sensors over the same hours thus adds one point, not 200 (a point per
sensor cost InfluxDB 15 % more CPU on a 5 000-reading write: docs/benchmarks.md).
Marks of the older format (tag ``sensor_id``, no ``s``) are still read.
InfluxDB answers 204 only once the whole body is durable, and the write is
confirmed only once every part was, so a confirmed write has its marks: a crash
before the aggregates are refreshed loses nothing, the marks are still there at
restart (a write cut before its last part was never confirmed: the
gateway sends it again, marks included).

**Refresh.** :meth:`InfluxAggregates.refresh` reads the marks newer than the
*cursor* (persisted in the database: the largest ``flow_refresh`` point), merges
each sensor's spans, recomputes those hours and then their days with bounded queries
(sensors sharing a span together, 100 per query, several statements per request),
and moves the cursor to ``start − settle``: every mark older than that was written
completely before the refresh began, because a write is sent with the time of its
marks and lasts less than ``settle_s``. Marks of the last ``settle_s`` are recomputed
again by the next refresh, which is harmless (a recompute is idempotent, and late,
replaced or back-filled readings give the aggregate the stored readings give),
unless this process wrote them (field ``w``) and InfluxDB had confirmed that write
before a refresh that covered them began. The store runs a background worker that refreshes
the marks once settled (:meth:`settle`, every few seconds), and every read first
recomputes the dirty buckets of the sensors it reads (:meth:`hourly`, :meth:`daily`:
"refresh dirty buckets, then read"), so a report always reflects every confirmed write.

Why not continuous queries: a CQ recomputes only the latest interval(s) on a
schedule, so a gateway's backlog or a back-filled month never reaches the aggregate
(unless ``RESAMPLE FOR`` covers the whole backlog, re-querying it every run); CQs
also do not exist behind the v1-compatible API of InfluxDB 2.x/3.x.

Mark times are per-process strictly increasing milliseconds whose last three
microsecond digits are a random per-process number, so two server instances almost
never stamp the same sensor's marks with the same time (the later would replace the
earlier). Points are keyed by series and time, so writing a recomputed hour again
replaces it. A tag's bucket can come back split over several series (components.md):
rows are merged by ``(sensor_id, time)`` before they are written or returned.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from leaksense.server.columns import HOUR_US, TimeRange, epoch_us
from leaksense.server.stores.aggregates import (
    DAY_US,
    Span,
    days_of,
    group_sensors,
)
from leaksense.server.stores.base import MAX_QUERY_SPAN, DailyFlow, HourlyFlow, check_range

log = logging.getLogger(__name__)
RAW = "flow"
HOURLY = "flow_hourly"
DAILY = "flow_daily"
DIRTY = "flow_dirty"
CURSOR = "flow_refresh"
SENSORS_PER_QUERY = 100
MARK_SENSORS_PER_POINT = 500
"""Sensor ids listed in one mark point: at most ~32 KB, half InfluxDB's string limit."""
"""Sensors named in one ``WHERE`` (an ``OR`` of ``sensor_id = '...'``)."""
SETTLE_S = 60.0
"""A write is assumed to reach InfluxDB within this long after its marks' time."""
MERGE_GAP_US = 6 * HOUR_US
"""Dirty spans of one sensor this close are recomputed as one span (fewer queries)."""
MARK_KEEP_US = DAY_US
"""Marks this much older than the cursor are deleted (at most once an hour)."""
PRUNE_INTERVAL_S = 3600.0
MAX_DONE_SENSORS = 100_000
QUERY_CHARS_PER_REQUEST = 60_000
LINES_PER_WRITE = 5_000
"""Recompute statements are sent ``;``-joined up to this length (it travels in the URL)."""
_MAX_QUERY_SPAN_US = int(MAX_QUERY_SPAN.total_seconds()) * 1_000_000 - HOUR_US
FIRST_LOOKBACK_US = _MAX_QUERY_SPAN_US - DAY_US
"""Without a stored cursor (a new database), marks are looked for this far back."""

Series = dict[str, Any]
"""One series of an InfluxDB answer: ``tags``, ``columns``, ``values``."""
SelectSeries = Callable[[str], list[Series]]
WriteLines = Callable[[bytes], None]
PostQuery = Callable[[str], None]


def escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rfc3339_us(time_us: int) -> str:
    seconds, micros = divmod(time_us, 1_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"'{stamp}.{micros:06d}Z'"


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _where(sensor_ids: Sequence[str], span: Span) -> str:
    names = " OR ".join(f'"sensor_id" = {quote(s)}' for s in sensor_ids)
    return f"({names}) AND time >= {rfc3339_us(span.start_us)} AND time < {rfc3339_us(span.end_us)}"


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class InfluxAggregates:
    """Marks, refreshes and reads the aggregates through the store's query and write calls."""

    def __init__(
        self,
        select_series: SelectSeries,
        write_lines: WriteLines,
        post_query: PostQuery,
        settle_s: float = SETTLE_S,
    ) -> None:
        self._select = select_series
        self._write = write_lines
        self._post_query = post_query
        self._settle_us = int(settle_s * 1_000_000)
        self._instance_us = secrets.randbelow(1000)
        self._writer_id = secrets.randbits(62)
        self._last_mark_ms = 0
        self._in_flight: set[int] = set()
        self._own_done_us = 0
        self._own_done_by_sensor: dict[str, int] = {}
        self._mark_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cursor_us: int | None = None
        self._pruned_at_s = -PRUNE_INTERVAL_S

    def mark_lines(self, times: dict[str, TimeRange]) -> tuple[int, str]:
        """The ``flow_dirty`` lines to send in the same request as readings of these
        sensors, with these ``(first, last)`` times, and their mark time: pass it to
        :meth:`written` once InfluxDB confirmed the request. Sensor ids match
        ``ID_PATTERN`` (no comma, quote or backslash): the wire schema checks them."""
        time_us = self._next_mark_us()
        by_span: dict[tuple[int, int], list[str]] = defaultdict(list)
        for sensor_id, (t0, t1) in times.items():
            by_span[(t0 // HOUR_US * HOUR_US, t1 // HOUR_US * HOUR_US + HOUR_US)].append(sensor_id)
        lines = [
            f'h0={h0}i,h1={h1}i,w={self._writer_id}i,s="{",".join(group)}" {time_us}'
            for (h0, h1), sensor_ids in by_span.items()
            for group in _chunks(sensor_ids, MARK_SENSORS_PER_POINT)
        ]
        return time_us, "\n".join(f"{DIRTY},g={n} {line}" for n, line in enumerate(lines))

    def written(self, mark_us: int) -> None:
        """The write stamped ``mark_us`` is confirmed: its marks are all readable.

        A failed write's mark stays "in flight" (it may still land) until it is older
        than ``settle_s``, when the cursor covers it.
        """
        with self._mark_lock:
            self._in_flight.discard(mark_us)

    def _next_mark_us(self) -> int:
        with self._mark_lock:
            self._last_mark_ms = max(time.time_ns() // 1_000_000, self._last_mark_ms + 1)
            mark_us = self._last_mark_ms * 1000 + self._instance_us
            self._in_flight.add(mark_us)
            return mark_us

    def _own_complete_us(self) -> int:
        """Our marks up to this time belong to writes InfluxDB confirmed."""
        with self._mark_lock:
            old_us = time.time_ns() // 1000 - self._settle_us
            self._in_flight = {t for t in self._in_flight if t > old_us}
            if self._in_flight:
                return min(self._in_flight) - 1
            return self._last_mark_ms * 1000 + self._instance_us

    def refresh(self) -> int:
        """Recompute every dirty bucket marked so far; return the sensor spans recomputed."""
        return self._refresh_all(final=False)

    def settle(self) -> int:
        """The background worker's round: the marks older than ``settle_s``, and ours
        whose writes InfluxDB confirmed (so a single server's aggregates lag its writes
        by one round, not by ``settle_s``)."""
        return self._refresh_all(final=True)

    def _refresh_all(self, *, final: bool) -> int:
        with self._refresh_lock:
            own_complete_us = self._own_complete_us()
            started_us = time.time_ns() // 1000
            cursor_us = self._cursor()
            settled_us = started_us - self._settle_us
            if final:
                spans = self._marks(cursor_us, settled_us)
                own_after_us = max(settled_us, self._own_done_us)
                if own_complete_us > own_after_us:
                    own = self._marks(own_after_us, own_complete_us, self._writer_id)
                    for sensor_id, parts in own.items():
                        spans.setdefault(sensor_id, []).extend(parts)
            else:
                spans = self._marks(cursor_us, started_us + self._settle_us)
            self._recompute(spans)
            self._advance(settled_us)
            # every mark of ours up to own_complete_us is now refreshed
            self._own_done_us = max(self._own_done_us, own_complete_us)
            self._own_done_by_sensor.clear()
            self._prune()
            return sum(len(v) for v in spans.values())

    def _refresh_sensors(self, sensor_ids: Sequence[str]) -> None:
        """Recompute the dirty buckets of ``sensor_ids`` only (before a read)."""
        with self._refresh_lock:
            own_complete_us = self._own_complete_us()
            up_to_us = time.time_ns() // 1000 + self._settle_us
            cursor_us = self._cursor() if self._cursor_us is None else self._cursor_us
            marked = self._marks(cursor_us, up_to_us)
            self._recompute({s: marked[s] for s in sensor_ids if s in marked})
            if len(self._own_done_by_sensor) > MAX_DONE_SENSORS:
                self._own_done_by_sensor.clear()
            for sensor_id in sensor_ids:
                done_us = self._own_done_by_sensor.get(sensor_id, 0)
                self._own_done_by_sensor[sensor_id] = max(done_us, own_complete_us)

    def _marks(
        self, after_us: int, up_to_us: int, writer: int | None = None
    ) -> dict[str, list[Span]]:
        """Dirty spans per sensor of the marks in ``(after_us, up_to_us]`` not yet done
        (of ``writer`` only, if given)."""
        if up_to_us <= after_us:
            return {}
        if up_to_us - after_us > _MAX_QUERY_SPAN_US:
            log.warning("dirty marks older than %s days are not refreshed", MAX_QUERY_SPAN.days)
            after_us = up_to_us - _MAX_QUERY_SPAN_US
        where = f"time > {rfc3339_us(after_us)} AND time <= {rfc3339_us(up_to_us)}"
        if writer is not None:
            where = f'"w" = {int(writer)} AND {where}'
        rows = self._rows(
            f'SELECT "h0", "h1", "w", "s" FROM "{DIRTY}" WHERE {where} GROUP BY "sensor_id"'  # noqa: S608
        )
        spans: dict[str, list[Span]] = defaultdict(list)
        for tagged, t, h0, h1, mark_writer, listed in rows:
            if h0 is None or h1 is None:
                continue
            for sensor_id in listed.split(",") if listed else [tagged]:
                if sensor_id and not self._done(sensor_id, t, mark_writer):
                    spans[sensor_id].append(Span(int(h0), int(h1)))
        return dict(spans)

    def _done(self, sensor_id: str, mark_us: int, writer: int | None) -> bool:
        """A mark of ours already refreshed by a refresh that began after its write
        was confirmed (any other mark of the settle window is recomputed again)."""
        if writer != self._writer_id:
            return False
        return mark_us <= max(self._own_done_us, self._own_done_by_sensor.get(sensor_id, 0))

    def _recompute(self, spans: dict[str, list[Span]]) -> None:
        """Recompute the hours of ``spans``, then the days that hold them.

        Per sensor the spans are disjoint once grouped, so the rows of all the
        statements can be merged together; statements go several to a request."""
        days: dict[str, list[Span]] = defaultdict(list)
        hour_groups: list[tuple[Sequence[str], Span]] = []
        for span, sensor_ids in group_sensors(spans, MERGE_GAP_US).items():
            hour_groups += [(group, span) for group in _chunks(sensor_ids, SENSORS_PER_QUERY)]
            for sensor_id in sensor_ids:
                days[sensor_id].append(days_of(span))
        self._recompute_hours(hour_groups)
        self._recompute_days(
            [
                (group, span)
                for span, sensor_ids in group_sensors(days).items()
                for group in _chunks(sensor_ids, SENSORS_PER_QUERY)
            ]
        )

    def _rows_of_many(self, statements: list[str]) -> list[tuple[Any, ...]]:
        """:meth:`_rows` of several statements, sent ``;``-joined, a few KB a request."""
        out: list[tuple[Any, ...]] = []
        batch: list[str] = []
        size = 0
        for statement in [*statements, ""]:
            if batch and (not statement or size + len(statement) > QUERY_CHARS_PER_REQUEST):
                out += self._rows("; ".join(batch))
                batch, size = [], 0
            if statement:
                batch.append(statement)
                size += len(statement)
        return out

    def _cursor(self) -> int:
        """Marks up to this time are refreshed (the largest of ours and the stored one)."""
        now_us = time.time_ns() // 1000
        rows = self._rows(
            f'SELECT max("cursor_us") FROM "{CURSOR}" '  # noqa: S608
            f"WHERE time > {rfc3339_us(now_us - _MAX_QUERY_SPAN_US + DAY_US)} "
            f"AND time <= {rfc3339_us(now_us + DAY_US)}"
        )
        stored = max((int(row[2]) for row in rows if row[2] is not None), default=None)
        if stored is None and self._cursor_us is None:
            self._cursor_us = time.time_ns() // 1000 - FIRST_LOOKBACK_US
        self._cursor_us = max(stored or 0, self._cursor_us or 0)
        return self._cursor_us

    def _advance(self, cursor_us: int) -> None:
        """Store the cursor, as a point at its own hour (a retention policy keeps it)."""
        if self._cursor_us is None or cursor_us > self._cursor_us:
            hour_us = cursor_us // HOUR_US * HOUR_US
            self._write(f"{CURSOR} cursor_us={cursor_us}i {hour_us}".encode())
            self._cursor_us = cursor_us

    def _prune(self) -> None:
        """Delete the marks well behind the cursor, at most once an hour."""
        now_s = time.monotonic()
        if self._cursor_us is None or now_s - self._pruned_at_s < PRUNE_INTERVAL_S:
            return
        self._pruned_at_s = now_s
        before = rfc3339_us(self._cursor_us - MARK_KEEP_US)
        for measurement in (DIRTY, CURSOR):
            self._post_query(f'DELETE FROM "{measurement}" WHERE time < {before}')  # noqa: S608

    def _recompute_hours(self, groups: list[tuple[Sequence[str], Span]]) -> None:
        # S608: sensor ids are quoted by quote(); measurement names are constants.
        rows = self._rows_of_many(
            [
                f'SELECT mean("flow_m3h"), count("flow_m3h") FROM "{RAW}" '  # noqa: S608
                f'WHERE {_where(sensor_ids, span)} GROUP BY time(1h), "sensor_id" fill(none)'
                for sensor_ids, span in groups
            ]
        )
        merged: dict[tuple[str, int], tuple[float, int]] = {}
        for sensor_id, t, mean, count in rows:
            if not count:
                continue
            m0, c0 = merged.get((sensor_id, t), (0.0, 0))  # a split bucket: weight the means
            total = c0 + int(count)
            merged[(sensor_id, t)] = ((m0 * c0 + float(mean) * count) / total, total)
        self._write_points(
            f"{HOURLY},sensor_id={escape_tag(s)} mean_flow_m3h={m!r},reading_count={c}i {t}"
            for (s, t), (m, c) in merged.items()
        )

    def _recompute_days(self, groups: list[tuple[Sequence[str], Span]]) -> None:
        rows = self._rows_of_many(
            [
                f'SELECT sum("mean_flow_m3h"), count("mean_flow_m3h"), min("mean_flow_m3h") '  # noqa: S608
                f'FROM "{HOURLY}" WHERE {_where(sensor_ids, span)} '
                f'GROUP BY time(1d), "sensor_id" fill(none)'
                for sensor_ids, span in groups
            ]
        )
        self._write_points(
            f"{DAILY},sensor_id={escape_tag(s)} volume_m3={volume!r},"
            f"hours_measured={hours}i,min_hourly_flow_m3h={low!r} {t}"
            for (s, t), (volume, hours, low) in _merge_days(rows).items()
        )

    def _write_points(self, lines: Iterable[str]) -> None:
        """Write aggregate lines, 5 000 to a request."""
        batch = list(lines)
        for i in range(0, len(batch), LINES_PER_WRITE):
            self._write("\n".join(batch[i : i + LINES_PER_WRITE]).encode())

    def _rows(self, query: str) -> list[tuple[Any, ...]]:
        """``(sensor_id, time_us, *values)`` of every row of every series."""
        out: list[tuple[Any, ...]] = []
        for series in self._select(query):
            sensor_id = series.get("tags", {}).get("sensor_id", "")
            out.extend((sensor_id, *row) for row in series.get("values", []))
        return out

    def hourly(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        """The aggregate hours of one sensor starting in ``[start, end)``, refreshed first."""
        check_range(start, end)
        self._refresh_sensors([sensor_id])
        rows = self._rows(
            f'SELECT "mean_flow_m3h", "reading_count" FROM "{HOURLY}" '  # noqa: S608
            f"WHERE {_where([sensor_id], Span(epoch_us(start), epoch_us(end)))}"
        )
        return [HourlyFlow(_from_us(t), float(m), int(c)) for _, t, m, c in sorted(rows)]

    def daily(
        self, sensor_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[DailyFlow]]:
        """The aggregate days of each sensor starting in ``[start, end)``, refreshed first."""
        check_range(start, end)
        out: dict[str, list[DailyFlow]] = {s: [] for s in sensor_ids}
        self._refresh_sensors(list(out))
        span = Span(epoch_us(start), epoch_us(end))
        for group in _chunks(list(out), SENSORS_PER_QUERY):
            rows = self._rows(
                f'SELECT "volume_m3", "hours_measured", "min_hourly_flow_m3h" '  # noqa: S608
                f'FROM "{DAILY}" WHERE {_where(group, span)} GROUP BY "sensor_id"'
            )
            for sensor_id, t, volume, hours, low in sorted(rows):
                out[sensor_id].append(DailyFlow(_from_us(t), float(volume), int(hours), low))
        return out


def _merge_days(rows: list[tuple[Any, ...]]) -> dict[tuple[str, int], tuple[float, int, float]]:
    merged: dict[tuple[str, int], tuple[float, int, float]] = {}
    for sensor_id, t, volume, hours, low in rows:
        if not hours:
            continue
        v0, h0, l0 = merged.get((sensor_id, t), (0.0, 0, float("inf")))
        merged[(sensor_id, t)] = (v0 + float(volume), h0 + int(hours), min(l0, float(low)))
    return merged
