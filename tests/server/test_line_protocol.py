"""The InfluxDB store's line protocol, formatted straight from decoded rows
(``stores/influx.py``). Unit tests of pure logic: the store itself is tested against
a real influxd in ``test_store_contract.py`` and ``test_ingest_pipelined.py``."""

from __future__ import annotations

import pytest

from leaksense.server.columns import ReadingColumns, ReadingPoint
from leaksense.server.stores import influx
from leaksense.server.stores.influx import _LineFormatter

POINTS = [
    ("s-1", 1_767_225_600_000_000, 1.25, None),
    ("s 2,x", 1_767_225_660_000_000, 0.1 + 0.2, 1234.5),
    ("s-1", 1_767_225_660_000_000, 1.25, None),
]
EXPECTED = [
    "flow,sensor_id=s-1 flow_m3h=1.25 1767225600000000",
    "flow,sensor_id=s\\ 2\\,x flow_m3h=0.30000000000000004,index_m3=1234.5 1767225660000000",
    "flow,sensor_id=s-1 flow_m3h=1.25 1767225660000000",
]


def format_lines(formatter: _LineFormatter, points: list[ReadingPoint]) -> list[str]:
    return formatter.lines(ReadingColumns.of_points(points)).decode().split("\n")


def test_lines_give_every_value_exactly_with_escaped_tags() -> None:
    formatter = _LineFormatter()
    assert format_lines(formatter, POINTS) == EXPECTED
    assert format_lines(formatter, POINTS) == EXPECTED  # from the warm caches


def test_a_value_new_to_a_warm_cache_is_formatted_too() -> None:
    formatter = _LineFormatter()
    format_lines(formatter, POINTS)
    later = [("s-1", 1_767_225_720_000_000, 7.0, 0.0), ("s-3", 1_767_225_720_000_000, -2.5, None)]
    assert format_lines(formatter, later) == [
        "flow,sensor_id=s-1 flow_m3h=7.0,index_m3=0.0 1767225720000000",
        "flow,sensor_id=s-3 flow_m3h=-2.5 1767225720000000",
    ]


def test_the_value_cache_is_emptied_past_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(influx, "MAX_CACHED_VALUES", 4)
    formatter = _LineFormatter()
    for n in range(10):
        points: list[ReadingPoint] = [
            ("s-1", 1_767_225_600_000_000 + k, float(n * 3 + k), None) for k in range(3)
        ]
        lines = format_lines(formatter, points)
        assert [line.split(" ")[1] for line in lines] == [
            f"flow_m3h={n * 3 + k}.0" for k in range(3)
        ]
        assert len(formatter._reprs) <= 4
