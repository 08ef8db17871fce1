"""The hourly and daily aggregates on InfluxDB: measurements ``flow_hourly`` and ``flow_daily``.

After each write of readings the store recomputes, with bounded InfluxQL queries, the
hours the written sensors touched (``mean``/``count`` of ``flow`` ``GROUP BY time(1h),
sensor_id``) and writes them to ``flow_hourly``; then the touched days from those hours
(``sum``/``count``/``min`` ``GROUP BY time(1d), sensor_id``) into ``flow_daily``.

Why not continuous queries: a CQ recomputes only the latest interval(s) on a
schedule, so a gateway's backlog or a back-filled month never reaches the aggregate
(unless ``RESAMPLE FOR`` covers the whole backlog, re-querying it every run); CQs
also do not exist behind the v1-compatible API of InfluxDB 2.x/3.x. Recomputing at
write time is idempotent, exact for late data, and needs nothing but ``/query`` and
``/write``. It costs two queries and two writes per batch (see docs/benchmarks.md).

Points are keyed by series and time, so writing a recomputed hour again replaces it.
A tag's bucket can come back split over several series (components.md): rows are
merged by ``(sensor_id, time)`` before they are written or returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from leaksense.server.stores.aggregates import Span, days_of, touched_hours
from leaksense.server.stores.base import DailyFlow, HourlyFlow, check_range
from leaksense.server.wire import ReadingPoint, epoch_us

RAW = "flow"
HOURLY = "flow_hourly"
DAILY = "flow_daily"
SENSORS_PER_QUERY = 100
"""Sensors named in one ``WHERE`` (an ``OR`` of ``sensor_id = '...'``)."""

Series = dict[str, Any]
"""One series of an InfluxDB answer: ``tags``, ``columns``, ``values``."""
SelectSeries = Callable[[str], list[Series]]
WriteLines = Callable[[bytes], None]


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
    """Keeps and reads the aggregates through the store's own query and write calls."""

    def __init__(self, select_series: SelectSeries, write_lines: WriteLines) -> None:
        self._select = select_series
        self._write = write_lines

    def update(self, points: Iterable[ReadingPoint]) -> None:
        """Recompute the hours, then the days, that ``points`` touched."""
        for span, sensor_ids in touched_hours(points).items():
            for group in _chunks(sensor_ids, SENSORS_PER_QUERY):
                self._recompute_hours(group, span)
                self._recompute_days(group, days_of(span))

    def _recompute_hours(self, sensor_ids: Sequence[str], span: Span) -> None:
        # S608: sensor ids are quoted by quote(); measurement names are constants.
        rows = self._rows(
            f'SELECT mean("flow_m3h"), count("flow_m3h") FROM "{RAW}" '  # noqa: S608
            f'WHERE {_where(sensor_ids, span)} GROUP BY time(1h), "sensor_id" fill(none)'
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

    def _recompute_days(self, sensor_ids: Sequence[str], span: Span) -> None:
        rows = self._rows(
            f'SELECT sum("mean_flow_m3h"), count("mean_flow_m3h"), min("mean_flow_m3h") '  # noqa: S608
            f'FROM "{HOURLY}" WHERE {_where(sensor_ids, span)} '
            f'GROUP BY time(1d), "sensor_id" fill(none)'
        )
        self._write_points(
            f"{DAILY},sensor_id={escape_tag(s)} volume_m3={volume!r},"
            f"hours_measured={hours}i,min_hourly_flow_m3h={low!r} {t}"
            for (s, t), (volume, hours, low) in _merge_days(rows).items()
        )

    def _write_points(self, lines: Iterable[str]) -> None:
        body = "\n".join(lines)
        if body:
            self._write(body.encode())

    def _rows(self, query: str) -> list[tuple[Any, ...]]:
        """``(sensor_id, time_us, *values)`` of every row of every series."""
        out: list[tuple[Any, ...]] = []
        for series in self._select(query):
            sensor_id = series.get("tags", {}).get("sensor_id", "")
            out.extend((sensor_id, *row) for row in series.get("values", []))
        return out

    def hourly(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        """The aggregate hours of one sensor starting in ``[start, end)``."""
        check_range(start, end)
        rows = self._rows(
            f'SELECT "mean_flow_m3h", "reading_count" FROM "{HOURLY}" '  # noqa: S608
            f"WHERE {_where([sensor_id], Span(epoch_us(start), epoch_us(end)))}"
        )
        return [HourlyFlow(_from_us(t), float(m), int(c)) for _, t, m, c in sorted(rows)]

    def daily(
        self, sensor_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[DailyFlow]]:
        """The aggregate days of each sensor starting in ``[start, end)``, one query per 100."""
        check_range(start, end)
        span = Span(epoch_us(start), epoch_us(end))
        out: dict[str, list[DailyFlow]] = {s: [] for s in sensor_ids}
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
