"""InfluxDB reading store over the v1 HTTP API (``/write`` line protocol, ``/query`` InfluxQL).

The v1 API is served by InfluxDB 1.x and, through compatibility endpoints, by 2.x and
3.x (use ``token`` there). ``influxdb-client``'s v2 API cannot talk to 1.x, so this
adapter speaks HTTP directly. Readings are points of measurement ``flow`` tagged by
``sensor_id``; InfluxDB keys points by series and time, which makes writes idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from leaksense.core.errors import InvalidInput, StoreUnavailable
from leaksense.core.messages import Reading
from leaksense.server.stores.base import HourlyFlow, check_range

MEASUREMENT = "flow"
WRITE_CHUNK = 5_000
"""Points per ``/write`` request: InfluxDB's recommended batch size."""


def _line(reading: Reading) -> str:
    fields = f"flow_m3h={reading.flow_m3h!r}"
    if reading.index_m3 is not None:
        fields += f",index_m3={reading.index_m3!r}"
    time_us = round(reading.time.timestamp() * 1_000_000)
    return f"{MEASUREMENT},sensor_id={_escape_tag(reading.sensor_id)} {fields} {time_us}"


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(value: datetime) -> str:
    return "'" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _chunks(items: Sequence[Reading], size: int) -> Iterator[Sequence[Reading]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._db = database
        self._url = url
        self._http = httpx.Client(base_url=url, headers=headers, auth=auth, timeout=timeout_s)

    def ensure_database(self) -> None:
        """Create the database if missing (idempotent; needs admin rights on 1.x)."""
        self._post_query(f'CREATE DATABASE "{self._db}"')

    def write(self, readings: Sequence[Reading]) -> int:
        for chunk in _chunks(readings, WRITE_CHUNK):
            body = "\n".join(_line(r) for r in chunk)
            response = self._request(
                "POST", "/write", params={"db": self._db, "precision": "u"}, content=body
            )
            if response.status_code == 400:
                raise InvalidInput(f"InfluxDB refused the points: {response.text.strip()}")
            self._raise_for_status(response, "write")
        return len(readings)

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
        check_range(start, end)
        rows = self._select(
            f'SELECT mean("flow_m3h"), count("flow_m3h") FROM "{MEASUREMENT}" WHERE '  # noqa: S608
            f'"sensor_id" = {_quote(sensor_id)} AND time >= {_rfc3339(start)} '
            f"AND time < {_rfc3339(end)} GROUP BY time(1h) fill(none)"
        )
        # One tag value can come back split over several series (components.md): merge.
        return [HourlyFlow(_from_us(t), float(m), int(c)) for t, m, c in sorted(rows) if c]

    def ping(self) -> None:
        self._raise_for_status(self._request("GET", "/ping"), "ping")

    def close(self) -> None:
        self._http.close()

    def _select(self, query: str) -> list[list[Any]]:
        response = self._request("GET", "/query", params={"db": self._db, "q": query, "epoch": "u"})
        self._raise_for_status(response, "query")
        rows: list[list[Any]] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise StoreUnavailable(f"InfluxDB query error: {result['error']}")
            for series in result.get("series", []):
                rows.extend(series.get("values", []))
        return rows

    def _post_query(self, query: str) -> None:
        response = self._request("POST", "/query", params={"q": query})
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
