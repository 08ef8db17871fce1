"""Schema 2 bodies (``IngestColumns``, what gateways send): the server's fast decoding
takes the same readings as the schema 1 body of the same batch, and refuses what the
wire schema refuses, with its messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from leaksense.core.messages import IngestBatch, IngestColumns, Reading
from leaksense.server import wire as wire_module
from leaksense.server.wire import decode_ingest

GOLDEN = Path(__file__).parent.parent / "golden"
T0 = datetime(2026, 1, 5, 3, 15, tzinfo=UTC)


def golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / name).read_text("utf-8"))
    return data


def big_batch(sensors: int = 200, readings: int = 5_000) -> IngestBatch:
    return IngestBatch(
        gateway_id="gw-a",
        batch_seq=7,
        sent_at=T0,
        readings=[
            Reading(
                sensor_id=f"s-{i % sensors:03d}",
                time=T0 + timedelta(minutes=i // sensors),
                flow_m3h=round(0.5 + (i * 7919 % 4999) / 100, 2),
                index_m3=float(i) if i % 3 == 0 else None,
            )
            for i in range(readings)
        ],
    )


def test_a_gateway_body_takes_the_fast_path_and_matches_schema_1() -> None:
    batch = big_batch()
    raw = IngestColumns.of(batch).model_dump_json(exclude_none=True).encode()
    fast = wire_module._decode_columns(raw)
    assert fast == decode_ingest(raw)
    assert fast.readings == decode_ingest(batch.model_dump_json().encode()).readings
    assert (fast.gateway_id, fast.batch_seq, fast.sent_at) == ("gw-a", 7, T0)
    assert len(raw) * 4 < len(batch.model_dump_json())  # and under a quarter of the bytes


def test_the_golden_columns_read_as_the_golden_batch() -> None:
    columns = decode_ingest(json.dumps(golden("ingest_columns.json")).encode())
    rows = decode_ingest(json.dumps(golden("ingest_batch.json")).encode())
    assert columns.readings == rows.readings
    assert columns.alerts == rows.alerts


def test_keys_in_another_order_are_read_by_the_exact_path_alike() -> None:
    body = golden("ingest_columns.json")
    raw = json.dumps(dict(sorted(body.items()))).encode()
    assert not raw.startswith(b'{"schema_version"')
    assert (
        decode_ingest(raw).readings.points()
        == decode_ingest(json.dumps(body).encode()).readings.points()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sensor": [0]},
        {"time": [0, 1, 1]},
        {"index_m3": [1.0]},
        {"sensor": [0, 2]},
        {"time": [0, 2]},
        {"sensor": [0, -1]},
        {"sensor_ids": ["ss-inlet", "bad id"]},
        {"sensor_ids": ["ss-inlet", "s\n"]},
        {"times": ["2026-01-05T03:15:00Z", "2026-01-05T03:15:00"]},
        {"times": ["2026-01-05T03:15:00Z", "2026-02-30T03:15:00Z"]},
        {"flow_m3h": [1.0, 1e9]},
        {"index_m3": [1.0, -1.0]},
        {"unknown": 1},
        {"readings": []},
        {"gateway_id": "bad id"},
        {"sensor": [0] * 10_001, "time": [0] * 10_001, "flow_m3h": [1.0] * 10_001},
    ],
)
def test_bad_columns_are_refused_as_the_wire_schema_refuses_them(change: dict[str, Any]) -> None:
    body = {k: v for k, v in golden("ingest_columns.json").items() if k != "index_m3"}
    raw = json.dumps(body | change, separators=(",", ":")).encode()
    assert raw.startswith(b'{"schema_version":2')  # the fast path is tried first
    with pytest.raises(ValidationError) as wire:
        IngestColumns.model_validate_json(raw)
    with pytest.raises(ValidationError) as decoded:
        decode_ingest(raw)
    assert [e["loc"] for e in decoded.value.errors()] == [e["loc"] for e in wire.value.errors()]
    assert [e["msg"] for e in decoded.value.errors()] == [e["msg"] for e in wire.value.errors()]
