"""``ReadingColumns``: the spans ingest derives from a batch without a pass per reading
when it can (dirty marks), and exactly when it must (sensors' last-seen times)."""

from __future__ import annotations

from leaksense.server.columns import HOUR_US, ReadingColumns, ReadingPoint

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, a whole hour
MIN = 60_000_000


def columns(points: list[ReadingPoint]) -> ReadingColumns:
    return ReadingColumns.of_points(points)


def test_spans_are_each_sensors_first_and_last_time_in_any_order() -> None:
    batch = columns(
        [
            ("a", T0 + 5 * MIN, 1.0, None),
            ("b", T0 + 9 * MIN, 1.0, None),
            ("a", T0 + 1 * MIN, 1.0, None),  # late, out of order
            ("a", T0 + 7 * MIN, 1.0, None),
            ("b", T0 + 9 * MIN, 2.0, None),  # the same time again
        ]
    )
    assert batch.spans() == {"a": (T0 + MIN, T0 + 7 * MIN), "b": (T0 + 9 * MIN, T0 + 9 * MIN)}
    assert batch.used_sensor_ids() == {"a", "b"}


def test_a_sensor_listed_twice_gets_one_span() -> None:
    batch = ReadingColumns(["a", "a"], [T0, T0 + 3 * MIN], [0, 1], [1, 0], [1.0, 2.0])
    assert batch.spans() == {"a": (T0, T0 + 3 * MIN)}


def test_a_batch_within_two_clock_hours_marks_every_sensor_with_its_range() -> None:
    batch = columns([("a", T0 + 10 * MIN, 1.0, None), ("b", T0 + 70 * MIN, 1.0, None)])
    covering = batch.covering_spans()
    assert covering == {"a": (T0 + 10 * MIN, T0 + 70 * MIN), "b": (T0 + 10 * MIN, T0 + 70 * MIN)}
    for sensor, (first, last) in batch.spans().items():  # always a cover of the truth
        assert covering[sensor][0] <= first and last <= covering[sensor][1]


def test_a_wider_batch_marks_each_sensor_with_its_own_span() -> None:
    late = T0 - 30 * 24 * HOUR_US  # a month-old reading of one sensor
    batch = columns([("a", T0, 1.0, None), ("b", late, 1.0, None), ("a", T0 + MIN, 1.0, None)])
    assert batch.covering_spans() == {"a": (T0, T0 + MIN), "b": (late, late)}


def test_unused_times_do_not_widen_the_marks() -> None:
    batch = ReadingColumns(["a"], [T0, T0 - 90 * 24 * HOUR_US], [0], [0], [1.0])
    assert batch.covering_spans() == {"a": (T0, T0)}


def test_points_round_trip_and_index_column_only_when_used() -> None:
    points: list[ReadingPoint] = [("a", T0, 1.5, None), ("b", T0 + MIN, 2.5, 10.0)]
    assert columns(points).points() == points
    assert columns(points).index_m3 == [None, 10.0]
    assert columns([("a", T0, 1.5, None)]).index_m3 is None
    assert columns(points).part(1, 2).points() == points[1:]
