"""The server's fast ingest decoding agrees with the wire schema; limits count right.

``IngestBody`` (dict readings, no per-reading objects) must accept exactly what
``IngestBatch`` accepts and refuse the rest at the same place, or the server and the
shared schema would drift apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from leaksense.core.errors import RateLimited
from leaksense.core.messages import IngestBatch, Reading
from leaksense.server import wire as wire_module
from leaksense.server.api.limits import GatewayRateLimiter, Rate
from leaksense.server.stores.base import points_of
from leaksense.server.wire import (
    PLAIN_RFC3339,
    IngestBody,
    ReadingRow,
    content_sha256,
    decode_ingest,
)

GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "golden" / "ingest_batch.json").read_text()
)
READING = {"sensor_id": "s-1", "time": "2026-01-05T03:15:00Z", "flow_m3h": 1.5}


def with_reading(**changes: Any) -> dict[str, Any]:
    reading = {k: v for k, v in (READING | changes).items() if v is not None}
    body: dict[str, Any] = GOLDEN | {"readings": [reading]}
    return body


def test_the_fast_model_has_the_fields_of_the_wire_models() -> None:
    assert IngestBody.model_fields.keys() == IngestBatch.model_fields.keys()
    assert ReadingRow.__annotations__.keys() == Reading.model_fields.keys()
    for name, field in IngestBatch.model_fields.items():
        assert IngestBody.model_fields[name].is_required() == field.is_required(), name
    required = TypeAdapter(ReadingRow).json_schema()["required"]
    assert sorted(required) == sorted(Reading.model_json_schema()["required"])


@pytest.mark.parametrize(
    "body",
    [
        GOLDEN,
        with_reading(time="2026-01-05T05:15:00+02:00"),
        with_reading(time="2026-01-05T03:15:00.123456-03:30"),
        with_reading(time="2026-01-05 03:15:00Z"),
        with_reading(time=1767582900),
        with_reading(flow_m3h=-3, index_m3=0),
        with_reading(flow_m3h="2.5"),
    ],
)
def test_both_accept_the_same_bodies_and_the_same_instants(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    wire = IngestBatch.model_validate_json(raw)
    decoded = decode_ingest(raw)
    assert decoded.readings.points() == points_of(wire.readings)
    assert decoded.alerts == wire.alerts
    assert (decoded.gateway_id, decoded.batch_seq, decoded.sent_at) == (
        wire.gateway_id,
        wire.batch_seq,
        wire.sent_at,
    )


EDGE_TIMES = [
    f"{date}T{clock}{fraction}{zone}"
    for date in ("2024-02-29", "2026-02-29", "0001-01-01", "0000-01-01", "2026-13-01", "2026-04-31")
    for clock in ("00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60")
    for fraction in ("", ".5", ".123456")
    for zone in ("Z", "+00:00", "-00:00", "+23:59", "+24:00", "+05:70", "-12:30")
]


def test_the_fast_path_takes_only_times_the_wire_schema_takes_alike() -> None:
    """630 edge times: both refuse, or both accept with the same instant."""
    differ = [t for t in EDGE_TIMES if _decoded_points(t) != _wire_points(t)]
    assert differ == []


def _wire_points(time: str) -> list[Any] | str:
    try:
        return points_of(
            IngestBatch.model_validate_json(json.dumps(with_reading(time=time))).readings
        )
    except ValidationError:
        return "refused"
    except OverflowError:  # core cannot turn year 1 at +23:59 into UTC: not ours to judge
        return _decoded_points(time)


def _decoded_points(time: str) -> list[Any] | str:
    try:
        return list(decode_ingest(json.dumps(with_reading(time=time)).encode()).readings.points())
    except ValidationError:
        return "refused"


def test_the_fast_path_pattern_is_anchored() -> None:
    assert PLAIN_RFC3339.startswith("^") and PLAIN_RFC3339.endswith("$")


@pytest.mark.parametrize(
    "body",
    [
        with_reading(time="2026-01-05T03:15:00"),  # naive
        with_reading(time="2026-02-30T03:15:00Z"),
        with_reading(flow_m3h=float("nan")),
        with_reading(flow_m3h=1e9),
        with_reading(flow_m3h=None),
        with_reading(index_m3=-1),
        with_reading(sensor_id="bad id"),
        with_reading(sensor_id="x" * 65),
        with_reading(sensor_id="s-1\n"),  # the fast path checks each distinct id once
        with_reading(time="2026-01-05T03:15:00Z\n"),
        with_reading(unknown=1),
        GOLDEN | {"batch_seq": -1},
        GOLDEN | {"schema_version": 3},
        GOLDEN | {"extra": True},
        {k: v for k, v in GOLDEN.items() if k != "sent_at"},
        GOLDEN | {"alerts": [GOLDEN["alerts"][0] | {"dma_id": "d"}]},
        GOLDEN | {"readings": [READING] * 10_001},
    ],
)
def test_both_refuse_the_same_bodies_at_the_same_place(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    with pytest.raises(ValidationError) as wire:
        IngestBatch.model_validate_json(raw)
    with pytest.raises(ValidationError) as exact:
        IngestBody.model_validate_json(raw)
    with pytest.raises(ValidationError) as decoded:
        decode_ingest(raw)
    assert [e["loc"] for e in exact.value.errors()] == [e["loc"] for e in wire.value.errors()]
    assert _where_what(decoded.value) == _where_what(exact.value)


def _where_what(error: ValidationError) -> list[tuple[Any, ...]]:
    return [(e["loc"], e["type"], e["msg"]) for e in error.errors()]


def test_the_digest_ignores_sent_at_only() -> None:
    body = json.dumps(GOLDEN)
    resent = json.dumps(GOLDEN | {"sent_at": datetime.now(UTC).isoformat()})
    assert content_sha256(body.encode()) == content_sha256(resent.encode())
    other = json.dumps(with_reading(flow_m3h=1.25))
    assert content_sha256(other.encode()) != content_sha256(body.encode())
    quoted = GOLDEN["alerts"][0] | {"explanation_en": 'a "sent_at": "x" in a string'}
    tricky = json.dumps(GOLDEN | {"alerts": [quoted]})
    assert content_sha256(tricky.encode()) != content_sha256(body.encode())


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_rate_limiter_refuses_over_the_burst_and_refills() -> None:
    clock = FakeClock()
    limiter = GatewayRateLimiter(
        requests=Rate(2.0, 4, "requests"), readings=Rate(1_000.0, 10_000, "readings"), clock_s=clock
    )
    for _ in range(4):
        limiter.take_request("gw-a")
    with pytest.raises(RateLimited) as refused:
        limiter.take_request("gw-a")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    limiter.take_request("gw-b")  # its own bucket
    clock.now_s += 0.5
    limiter.take_request("gw-a")
    limiter.take_readings("gw-a", 10_000)
    with pytest.raises(RateLimited) as refused:
        limiter.take_readings("gw-a", 2_000)
    assert refused.value.retry_after_s == pytest.approx(2.0)
    clock.now_s += 2.0
    limiter.take_readings("gw-a", 2_000)  # a refusal took nothing
    limiter.take_readings("gw-a", 0)


def test_schema_1_bodies_take_the_fast_path() -> None:
    """The golden batch and a batch with microseconds and an alert are decoded by
    msgspec (``_decode_rows``), not by the slower exact path."""
    for body in (GOLDEN, with_reading(time="2026-01-05T03:15:00.123456Z")):
        raw = json.dumps(body).encode()
        assert wire_module._decode_rows(raw) == decode_ingest(raw)
