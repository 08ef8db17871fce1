"""The wire schema: golden samples parse, bad messages fail naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from leaksense.core.errors import InvalidMessage
from leaksense.core.messages import (
    Alert,
    GatewayHealth,
    IngestBatch,
    IngestColumns,
    Reading,
    SensorPayload,
)
from leaksense.core.topics import flow_topic, parse_flow_topic

GOLDEN = Path(__file__).parent.parent / "golden"
MODELS: dict[str, type[BaseModel]] = {
    "reading.json": Reading,
    "sensor_payload.json": SensorPayload,
    "alert.json": Alert,
    "ingest_batch.json": IngestBatch,
    "ingest_columns.json": IngestColumns,
    "gateway_health.json": GatewayHealth,
}


def golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / name).read_text("utf-8"))
    return data


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_samples_round_trip(name: str) -> None:
    model = MODELS[name].model_validate(golden(name))
    again = MODELS[name].model_validate_json(model.model_dump_json())
    assert again == model


def test_times_are_normalised_to_utc() -> None:
    payload = SensorPayload.model_validate(golden("sensor_payload.json"))
    assert payload.time == datetime(2026, 1, 5, 3, 15, tzinfo=UTC)
    assert payload.time.utcoffset() is not None
    assert payload.time.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time": "2026-01-05T03:15:00"}, "time"),
        ({"flow_m3h": "NaN"}, "flow_m3h"),
        ({"flow_m3h": 1e9}, "flow_m3h"),
        ({"index_m3": -1}, "index_m3"),
        ({"sensor_id": "bad id/with slash"}, "sensor_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_readings_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Reading.model_validate(golden("reading.json") | change)
    assert field in {str(p) for e in info.value.errors() for p in e["loc"]}


def test_batch_refuses_unknown_schema_version() -> None:
    with pytest.raises(ValidationError):
        IngestBatch.model_validate(golden("ingest_batch.json") | {"schema_version": 2})


def test_the_golden_batch_in_columns_is_the_golden_batch() -> None:
    batch = IngestBatch.model_validate(golden("ingest_batch.json"))
    columns = IngestColumns.model_validate(golden("ingest_columns.json"))
    assert IngestColumns.of(batch) == columns
    assert columns.batch() == batch


def test_columns_of_readings_without_counter_leave_the_index_out() -> None:
    batch = IngestBatch.model_validate(golden("ingest_batch.json"))
    plain = batch.model_copy(update={"readings": [batch.readings[1]] * 3})
    columns = IngestColumns.of(plain)
    assert columns.index_m3 is None and columns.sensor == [0, 0, 0] and columns.time == [0, 0, 0]
    assert "index_m3" not in columns.model_dump_json(exclude_none=True)
    assert columns.batch() == plain


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sensor": [0]}, "same length"),
        ({"index_m3": [1.0]}, "same length"),
        ({"sensor": [0, 2]}, "position in sensor_ids"),
        ({"time": [0, 5]}, "position in times"),
        ({"sensor": [0, -1]}, "greater than or equal to 0"),
        ({"sensor_ids": ["ss-inlet", "bad id"]}, "pattern"),
        ({"times": ["2026-01-05T03:15:00Z", "2026-01-05T03:15:00"]}, "timezone"),
        ({"flow_m3h": [1.0, float("inf")]}, "finite"),
    ],
)
def test_bad_columns_are_refused_saying_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IngestColumns.model_validate(golden("ingest_columns.json") | change)


def test_topic_round_trip_and_refusals() -> None:
    topic = flow_topic("saint-savin", "ss-inlet")
    assert topic == "leaksense/saint-savin/ss-inlet/flow"
    parsed = parse_flow_topic(topic)
    assert (parsed.site, parsed.sensor_id) == ("saint-savin", "ss-inlet")
    for bad in ("leaksense/saint-savin/ss-inlet", "other/a/b/flow", "leaksense/a/b c/flow"):
        with pytest.raises(InvalidMessage, match="topic"):
            parse_flow_topic(bad)
