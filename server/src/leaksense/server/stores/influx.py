"""InfluxDB reading store over the v1 HTTP API (``/write`` line protocol, ``/query`` InfluxQL).

The v1 API is served by InfluxDB 1.x and, through compatibility endpoints, by 2.x and
3.x (use ``token`` there). ``influxdb-client``'s v2 API cannot talk to 1.x, so this
adapter speaks HTTP directly. Readings are points of measurement ``flow`` tagged by
``sensor_id``; InfluxDB keys points by series and time, which makes writes idempotent.
Every write also marks the hours it touched as dirty, in its last request; a worker
thread and every read refresh the hourly and daily aggregates from those marks
(``influx_aggregates.py``).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from leaksense.core.errors import InvalidInput, StoreUnavailable
from leaksense.core.http import HttpClient, TransportError
from leaksense.core.messages import Reading
from leaksense.server.columns import ReadingColumns, ReadingPoint, TimeRange
from leaksense.server.stores.base import DailyFlow, HourlyFlow, check_range, points_of
from leaksense.server.stores.influx_aggregates import (
    SETTLE_S,
    InfluxAggregates,
    Series,
)

log = logging.getLogger(__name__)

MEASUREMENT = "flow"
WRITE_PART = 5_000
"""Points per ``/write`` request. A larger write goes in parts, pipelined: part k is
stored by influxd while this process formats part k + 1. A gateway's batch is one
part: each request costs influxd about 3 ms of its own (its WAL's fsync, serialised
per shard), more than formatting 5 000 points (~1 ms); three parts of 1 700 made
ingest 10 % slower (docs/benchmarks.md)."""
MAX_PARTS_IN_FLIGHT = 4
"""Parts sent at once; their threads send them as soon as they are submitted."""
MAX_WRITE_CONNECTIONS = 16
"""Kept connections for writes: the part senders, request threads and the refresh."""
MAX_CACHED_PREFIXES = 100_000
"""Line prefixes kept per sensor id (one escaped string each); the cache is emptied past this."""
MAX_CACHED_VALUES = 50_000
"""Texts of flow and index values kept (about 5 MB); the cache is emptied past this."""
REFRESH_INTERVAL_S = 60.0
"""How often the background worker refreshes the dirty marks (the server's
``influx_refresh_interval_s``). Every round re-reads the current hour of each sensor
written since the last: every 5 s that was 12 times the reads of every minute."""


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(value: datetime) -> str:
    return "'" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _lines(
    columns: ReadingColumns,
    stamps: list[str],
    prefixes: list[str],
    texts: dict[float, str],
) -> bytes:
    """Line protocol of the readings; every text they need is in the three maps
    (``stamps`` and ``prefixes`` by position in the columns' times and sensors)."""
    readings = zip(columns.sensor, columns.time, columns.flow_m3h, strict=True)
    if columns.index_m3 is None:
        lines = [f"{prefixes[s]}{texts[f]}{stamps[t]}" for s, t, f in readings]
    else:
        lines = [
            f"{prefixes[s]}{texts[f]}{stamps[t]}"
            if i is None
            else f"{prefixes[s]}{texts[f]},index_m3={texts[i]}{stamps[t]}"
            for (s, t, f), i in zip(readings, columns.index_m3, strict=True)
        ]
    return "\n".join(lines).encode()


class _LineFormatter:
    """Line protocol straight from the columns, at about 0.2 µs a point: the escaped
    ``flow,sensor_id=<id> flow_m3h=`` prefix is built once per sensor, the text of a
    flow once per value (meters give few distinct values: pulses times a constant,
    or a reading rounded to a few decimals), a time's once per write."""

    def __init__(self) -> None:
        self._prefixes: dict[str, str] = {}
        self._reprs: dict[float, str] = {}

    def lines(self, columns: ReadingColumns) -> bytes:
        """The readings' lines."""
        cached = self._prefixes
        prefixes = [cached.get(s) or self._prefix(s) for s in columns.sensor_ids]
        stamps = [f" {us}" for us in columns.times_us]
        try:
            return _lines(columns, stamps, prefixes, self._reprs)
        except KeyError:  # a flow or index value not seen yet
            values = set(columns.flow_m3h)
            values.update(i for i in columns.index_m3 or () if i is not None)
            texts = {v: repr(v) for v in values}
            if len(self._reprs) + len(texts) > MAX_CACHED_VALUES:
                self._reprs = {}
            self._reprs.update(texts)
            return _lines(columns, stamps, prefixes, texts)

    def _prefix(self, sensor_id: str) -> str:
        if len(self._prefixes) >= MAX_CACHED_PREFIXES:
            self._prefixes.clear()
        prefix = f"{MEASUREMENT},sensor_id={_escape_tag(sensor_id)} flow_m3h="
        self._prefixes[sensor_id] = prefix
        return prefix


class InfluxReadingStore:
    """Readings in an InfluxDB database, reached over HTTP with a bounded timeout."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        refresh_interval_s: float | None = REFRESH_INTERVAL_S,
        settle_s: float | None = None,
        write_part_points: int = WRITE_PART,
    ) -> None:
        """``refresh_interval_s=None``: no background worker (reads still refresh).
        ``settle_s``: how long a write may take to land (default: 60 s, at least twice
        the timeout); the worker refreshes this process's confirmed writes at once,
        other marks once they are older than that."""
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._db = database
        self._url = url
        self._http = httpx.Client(base_url=url, headers=headers, auth=auth, timeout=timeout_s)
        write_headers = dict(headers)
        if username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            write_headers["Authorization"] = f"Basic {basic}"
        self._write_path = "/write?" + urlencode({"db": database, "precision": "u"})
        self._writer = HttpClient(  # ~0.5 ms of CPU a request where httpx takes 1.5 ms
            url, timeout_s, headers=write_headers, max_connections=MAX_WRITE_CONNECTIONS
        )
        self._senders = ThreadPoolExecutor(MAX_PARTS_IN_FLIGHT, thread_name_prefix="influx-write")
        self._formatter = _LineFormatter()
        self._part_points = write_part_points
        self._aggregates = InfluxAggregates(
            self._select_series,
            self._write_lines,
            self._post_db_query,
            settle_s=settle_s if settle_s is not None else max(SETTLE_S, 2 * timeout_s),
        )
        self._refresh_interval_s = refresh_interval_s
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._worker_lock = threading.Lock()

    def ensure_database(self) -> None:
        """Create the database if missing (idempotent; needs admin rights on 1.x)."""
        self._post_query(f'CREATE DATABASE "{self._db}"')

    def write(self, readings: Sequence[Reading]) -> int:
        return self.write_points(points_of(readings))

    def write_points(self, points: Sequence[ReadingPoint]) -> int:
        """Write the points with their dirty marks; return once InfluxDB stored all."""
        return self.begin_write(ReadingColumns.of_points(points))()

    def begin_write(self, readings: ReadingColumns) -> Callable[[], int]:
        """Format and send the readings; the returned call waits until InfluxDB stored
        them all and returns their count, or raises (the caller may work meanwhile).

        Pipelined: the points go in parts of ``WRITE_PART``, each sent by a helper
        thread as soon as it is formatted, while this one formats the next (influxd
        stores on another core). The dirty marks of the whole write travel with the
        last part, stamped by its thread once every other part is on its way: every
        reading they cover was sent before the marks' time (what the refresh's cursor
        relies on, ``influx_aggregates.py``). Any part failing fails the write, after
        the others ended; points are keyed by series and time, so the retry rewrites
        identical points.
        """
        if not readings:
            return lambda: 0
        count = len(readings)
        parts = [
            readings.part(i, i + self._part_points) for i in range(0, count, self._part_points)
        ]
        sending: list[Future[int | None]] = []
        started: list[threading.Event] = []
        try:
            for n, part in enumerate(parts):
                body = self._formatter.lines(part)
                if len(sending) >= MAX_PARTS_IN_FLIGHT:
                    sending[len(sending) - MAX_PARTS_IN_FLIGHT].exception()
                if n < len(parts) - 1:
                    started.append(threading.Event())
                    sending.append(self._senders.submit(self._send_part, body, started[-1]))
                else:
                    spans = readings.covering_spans()
                    sending.append(self._senders.submit(self._send_last, body, spans, started))
        except BaseException:
            for future in sending:
                future.exception()
            raise
        return lambda: self._finish(sending, count)

    def _finish(self, sending: list[Future[int | None]], count: int) -> int:
        errors = [f.exception() for f in sending]  # waits for every part
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            raise failed
        mark_us = sending[-1].result()
        if mark_us is not None:
            self._aggregates.written(mark_us)
        if self._worker is None:
            self.start_refresh_worker()
        return count

    def refresh_aggregates(self) -> int:
        """Bring the aggregates up to date with every write so far (also done by reads)."""
        return self._aggregates.refresh()

    def readings(
        self, sensor_id: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[Reading]:
        check_range(start, end)
        # S608: identifiers are validated by the wire schema and quoted by _quote().
        rows = self._select(
            f'SELECT "flow_m3h", "index_m3" FROM "{MEASUREMENT}" WHERE "sensor_id" = '  # noqa: S608
            f"{_quote(sensor_id)} AND time >= {_rfc3339(start)} AND time < {_rfc3339(end)} "
            f"ORDER BY time ASC LIMIT {int(limit)}"
        )
        return [
            Reading(sensor_id=sensor_id, time=_from_us(t), flow_m3h=f, index_m3=i)
            for t, f, i in sorted(rows)
        ]

    def hourly_flow(self, sensor_id: str, start: datetime, end: datetime) -> list[HourlyFlow]:
        return self._aggregates.hourly(sensor_id, start, end)

    def daily_flow(
        self, sensor_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[DailyFlow]]:
        return self._aggregates.daily(sensor_ids, start, end)

    def ping(self) -> None:
        self._raise_for_status(self._request("GET", "/ping"), "ping")

    def close(self) -> None:
        self._stopping.set()
        if self._worker is not None:
            self._worker.join()
        self._senders.shutdown()
        self._writer.close()
        self._http.close()

    def start_refresh_worker(self) -> None:
        """Start the background refresh (the first write does it too): a restarted
        server refreshes what a crash left dirty even before new data arrives."""
        with self._worker_lock:
            if self._worker is not None or self._refresh_interval_s is None:
                return
            self._worker = threading.Thread(
                target=self._refresh_loop, name="influx-aggregates", daemon=True
            )
            self._worker.start()

    def _refresh_loop(self) -> None:
        """Refresh the dirty marks every ``refresh_interval_s``, until closed."""
        interval_s = self._refresh_interval_s or REFRESH_INTERVAL_S
        failing = False
        while not self._stopping.wait(interval_s):
            try:
                self._aggregates.settle()
            except StoreUnavailable as exc:  # the marks stay: the next round retries
                if not failing:
                    log.warning("aggregate refresh paused, InfluxDB unavailable: %s", exc)
                failing = True
                continue
            except Exception:
                log.exception("aggregate refresh failed; retrying in %.0f s", interval_s)
                continue
            if failing:
                log.info("aggregate refresh resumed")
            failing = False

    def _send_part(self, body: bytes, started: threading.Event) -> None:
        started.set()
        self._write_lines(body)

    def _send_last(
        self, lines: bytes, ranges: dict[str, TimeRange], others: list[threading.Event]
    ) -> int:
        """Send the last part with the marks, stamped now; return their time."""
        for event in others:  # dequeued before this one: about to send, or sending
            event.wait()
        mark_us, marks = self._aggregates.mark_lines(ranges)
        self._write_lines(lines + b"\n" + marks.encode())
        return mark_us

    def _write_lines(self, body: bytes) -> None:
        try:
            answer = self._writer.post(self._write_path, body, "text/plain; charset=utf-8")
        except TransportError as exc:
            raise StoreUnavailable(f"InfluxDB at {self._url} unreachable: {exc}") from exc
        status, text = answer.status, answer.text
        if status == 400:
            raise InvalidInput(f"InfluxDB refused the points: {text.strip()}")
        if status >= 300:
            raise StoreUnavailable(
                f"InfluxDB write failed with HTTP {status}: {text.strip()[:300]}"
            )

    def _select(self, query: str) -> list[list[Any]]:
        return [row for series in self._select_series(query) for row in series.get("values", [])]

    def _select_series(self, query: str) -> list[Series]:
        response = self._request("GET", "/query", params={"db": self._db, "q": query, "epoch": "u"})
        self._raise_for_status(response, "query")
        out: list[Series] = []
        try:  # msgspec: ~4× faster than json.loads on the refresh's large answers
            answer = msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise StoreUnavailable(f"InfluxDB sent a query answer that is not JSON: {exc}") from exc
        for result in answer.get("results", []):
            if "error" in result:
                raise StoreUnavailable(f"InfluxDB query error: {result['error']}")
            out.extend(result.get("series", []))
        return out

    def _post_query(self, query: str) -> None:
        response = self._request("POST", "/query", params={"q": query})
        self._raise_for_status(response, "query")

    def _post_db_query(self, query: str) -> None:
        response = self._request("POST", "/query", params={"db": self._db, "q": query})
        self._raise_for_status(response, "query")

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB at {self._url} unreachable: {exc}") from exc

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 300:
            raise StoreUnavailable(
                f"InfluxDB {what} failed with HTTP {response.status_code}: "
                f"{response.text.strip()[:300]}"
            )
