"""A batch's readings column by column, as ingest decodes them and the stores write them.

Decoding an ``IngestColumns`` body (schema 2, what gateways send) gives these lists
directly; a schema 1 body is turned into them once. No Python object is made per
reading: the InfluxDB store formats its lines from the columns, and the rest of
ingest needs only the sensors and times, which a batch holds few of (200 sensors
share each minute's time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat

ReadingPoint = tuple[str, int, float, float | None]
"""``(sensor_id, time_us, flow_m3h, index_m3)``: a reading as the stores write it,
``time_us`` in microseconds since the epoch."""
TimeRange = tuple[int, int]
"""``(first, last)`` time of a sensor's readings in a write, in epoch microseconds."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
HOUR_US = 3_600_000_000
SHARED_SPAN_HOURS = 2
"""A batch within this many clock hours marks all its sensors with its own range:
a sensor is then at most one hour wider than its readings (an hour recomputed)."""


def epoch_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (whatever its offset)."""
    time_us: int = (value - EPOCH) // ONE_US
    return time_us


@dataclass(slots=True, eq=False)
class ReadingColumns:
    """Readings as parallel columns; sensors and times are positions in two short
    lists of distinct values (validated by the decoder, or built here)."""

    sensor_ids: list[str]
    times_us: list[int]
    sensor: list[int]
    time: list[int]
    flow_m3h: list[float]
    index_m3: list[float | None] | None = None
    """None when no reading has a counter index."""
    _spans: dict[str, TimeRange] | None = field(default=None, init=False, repr=False)

    @classmethod
    def of_points(cls, points: Iterable[ReadingPoint]) -> ReadingColumns:
        """The columns of ready tuples (stores' ``write_points``, schema 1 bodies)."""
        sensors: dict[str, int] = {}
        times: dict[int, int] = {}
        sensor: list[int] = []
        time: list[int] = []
        flows: list[float] = []
        indexes: list[float | None] = []
        for sensor_id, time_us, flow_m3h, index in points:
            sensor.append(sensors.setdefault(sensor_id, len(sensors)))
            time.append(times.setdefault(time_us, len(times)))
            flows.append(flow_m3h)
            indexes.append(index)
        has_index = indexes.count(None) < len(indexes)
        return cls(
            list(sensors), list(times), sensor, time, flows, index_m3=indexes if has_index else None
        )

    def __len__(self) -> int:
        return len(self.flow_m3h)

    def __eq__(self, other: object) -> bool:
        """Equal when they hold the same readings, in the same order."""
        return isinstance(other, ReadingColumns) and self.points() == other.points()

    __hash__ = None  # type: ignore[assignment]

    def part(self, start: int, stop: int) -> ReadingColumns:
        """The readings ``start`` to ``stop`` (same lists of sensors and times)."""
        index = self.index_m3[start:stop] if self.index_m3 is not None else None
        return ReadingColumns(
            self.sensor_ids,
            self.times_us,
            self.sensor[start:stop],
            self.time[start:stop],
            self.flow_m3h[start:stop],
            index_m3=index,
        )

    def points(self) -> list[ReadingPoint]:
        """The readings as :data:`ReadingPoint` tuples, for stores that take them."""
        ids, times = self.sensor_ids, self.times_us
        indexes = self.index_m3 if self.index_m3 is not None else repeat(None)
        return [
            (ids[s], times[t], f, i)
            for s, t, f, i in zip(self.sensor, self.time, self.flow_m3h, indexes, strict=False)
        ]

    def used_sensor_ids(self) -> set[str]:
        """The sensors the readings are of."""
        ids = self.sensor_ids
        return {ids[s] for s in set(self.sensor)}

    def covering_spans(self) -> dict[str, TimeRange]:
        """For each sensor a time range that holds its readings' hours, as the dirty
        marks need: the batch's own range for all when that spans at most
        ``SHARED_SPAN_HOURS`` clock hours (a gateway's batch usually does; no pass
        over the readings), else each sensor's own (:meth:`spans`)."""
        used = [self.times_us[t] for t in set(self.time)]
        first_us, last_us = min(used), max(used)
        if last_us // HOUR_US - first_us // HOUR_US < SHARED_SPAN_HOURS:
            return dict.fromkeys(self.used_sensor_ids(), (first_us, last_us))
        return self.spans()

    def spans(self) -> dict[str, TimeRange]:
        """Each sensor's first and last time (computed once)."""
        if self._spans is None:
            ids, times = self.sensor_ids, self.times_us
            seen: dict[str, list[int]] = {}
            for s, t in zip(self.sensor, self.time, strict=True):
                time_us = times[t]
                span = seen.get(ids[s])
                if span is None:
                    seen[ids[s]] = [time_us, time_us]
                elif time_us < span[0]:
                    span[0] = time_us
                elif time_us > span[1]:
                    span[1] = time_us
            self._spans = {name: (first, last) for name, (first, last) in seen.items()}
        return self._spans
