"""Versioned wire messages shared by sensor nodes, gateways and the server.

Every message is a frozen pydantic model that refuses unknown fields, naive
timestamps and non-finite numbers, so a bad message fails at the first boundary it
crosses with a message naming the field. Golden samples live in ``tests/golden/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2
"""What gateways send: :class:`IngestColumns`. The server still takes schema 1,
:class:`IngestBatch` (one object per reading)."""
MAX_FLOW_M3H = 100_000.0
"""Largest flow magnitude accepted on the wire (a DN1000 main at 10 m/s is ~28 000 m³/h)."""
MAX_READINGS_PER_BATCH = 10_000
MAX_ALERTS_PER_BATCH = 1_000
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: pydantic would let it escape
        raise ValueError("timestamp outside years 1–9999 in UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware timestamp, normalised to UTC; naive timestamps are refused."""

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
"""Sensor, gateway, site and DMA identifiers: 1–64 of ``A-Z a-z 0-9 _ . -``."""

FlowM3h = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_FLOW_M3H, le=MAX_FLOW_M3H)]
"""Flow in m³/h. Negative values are accepted on the wire (reverse flow, faulty
sensors) so that detection can see them; the detectors decide what they mean."""

IndexM3 = Annotated[float, Field(allow_inf_nan=False, ge=0)]


class WireModel(BaseModel):
    """Base of all wire messages: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SensorPayload(WireModel):
    """JSON payload a sensor node publishes on ``leaksense/<site>/<sensor_id>/flow``."""

    time: UtcDatetime
    flow_m3h: FlowM3h
    index_m3: IndexM3 | None = None


class Reading(WireModel):
    """One flow measurement of one sensor, as the gateway forwards it."""

    sensor_id: Identifier
    time: UtcDatetime
    flow_m3h: FlowM3h
    index_m3: IndexM3 | None = None


class AlertKind(StrEnum):
    """What an alert is about."""

    HIGH_FLOW = "high_flow"
    BURST = "burst"
    BACKGROUND_LEAK = "background_leak"
    CONTINUOUS_FLOW = "continuous_flow"
    SENSOR_FAULT = "sensor_fault"


LEAK_KINDS: Final = frozenset(
    {AlertKind.BURST, AlertKind.BACKGROUND_LEAK, AlertKind.CONTINUOUS_FLOW, AlertKind.HIGH_FLOW}
)
"""Alert kinds about water lost (``sensor_fault`` is about the meter)."""
NOT_A_LEAK: Final = frozenset({"false_alarm", "sensor_fault"})
"""The resolutions that say an alert was no leak: the server lists such alerts to their
gateway, which takes their flow as normal (``GET /api/v1/sensitivity``)."""


class FaultKind(StrEnum):
    """What is wrong with a sensor (alerts of kind ``sensor_fault``)."""

    IMPOSSIBLE_VALUE = "impossible_value"
    SPIKE = "spike"
    FLATLINE = "flatline"
    DROPOUT = "dropout"
    COUNTER_RESET = "counter_reset"
    CLOCK = "clock"


class Alert(WireModel):
    """A detection event raised by a gateway about a sensor or a DMA.

    One event keeps one ``alert_id``: the gateway re-sends it with fresher figures
    while it lasts and with ``ended_at`` when it is over, and the server upserts it.
    """

    alert_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,160}$")]
    sensor_id: Identifier | None = None
    dma_id: Identifier | None = None
    kind: AlertKind
    fault: FaultKind | None = None
    started_at: UtcDatetime = Field(description="Estimated start of the event.")
    detected_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    flow_m3h: FlowM3h = Field(description="Estimated leak (excess) flow.")
    lost_volume_m3: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    confidence: Annotated[float, Field(ge=0, le=1)] = 0.5
    explanation_en: Annotated[str, Field(max_length=500)]
    explanation_fr: Annotated[str, Field(max_length=500)]

    @model_validator(mode="after")
    def _one_subject(self) -> Alert:
        if (self.sensor_id is None) == (self.dma_id is None):
            raise ValueError("an alert names exactly one of sensor_id or dma_id")
        return self


class IngestBatch(WireModel):
    """What a gateway POSTs to ``/api/v1/ingest``."""

    schema_version: Literal[1] = 1
    gateway_id: Identifier
    batch_seq: Annotated[int, Field(ge=0)]
    sent_at: UtcDatetime
    readings: Annotated[list[Reading], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    alerts: Annotated[list[Alert], Field(max_length=MAX_ALERTS_PER_BATCH)] = []


Index = Annotated[int, Field(ge=0)]


class IngestColumns(WireModel):
    """What a gateway POSTs to ``/api/v1/ingest`` (schema 2): an :class:`IngestBatch`
    with its readings column by column, each sensor id and each time written once.

    A batch of 5 000 readings of 200 sensors is a seventh of schema 1's JSON (rural
    uplinks are metered), and the server decodes it without an object per reading.
    """

    schema_version: Literal[2] = 2
    gateway_id: Identifier
    batch_seq: Annotated[int, Field(ge=0)]
    sent_at: UtcDatetime
    sensor_ids: Annotated[list[Identifier], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    times: Annotated[list[UtcDatetime], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    sensor: Annotated[list[Index], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    """Each reading's sensor: a position in ``sensor_ids``."""
    time: Annotated[list[Index], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    """Each reading's time: a position in ``times``."""
    flow_m3h: Annotated[list[FlowM3h], Field(max_length=MAX_READINGS_PER_BATCH)] = []
    index_m3: Annotated[list[IndexM3 | None], Field(max_length=MAX_READINGS_PER_BATCH)] | None = (
        None
    )
    """Each reading's counter index; left out when no reading has one."""
    alerts: Annotated[list[Alert], Field(max_length=MAX_ALERTS_PER_BATCH)] = []

    @model_validator(mode="after")
    def _aligned(self) -> IngestColumns:
        count = len(self.flow_m3h)
        columns = [self.sensor, self.time] + ([self.index_m3] if self.index_m3 is not None else [])
        if any(len(column) != count for column in columns):
            raise ValueError("the reading columns do not all have the same length")
        if max(self.sensor, default=-1) >= len(self.sensor_ids):
            raise ValueError("a reading's sensor is not a position in sensor_ids")
        if max(self.time, default=-1) >= len(self.times):
            raise ValueError("a reading's time is not a position in times")
        return self

    @classmethod
    def of(cls, batch: IngestBatch) -> IngestColumns:
        """The same batch in columns (sensors and times in order of first use)."""
        sensors: dict[str, int] = {}
        times: dict[datetime, int] = {}
        readings = batch.readings
        indexes = [r.index_m3 for r in readings]
        return cls(
            gateway_id=batch.gateway_id,
            batch_seq=batch.batch_seq,
            sent_at=batch.sent_at,
            sensor=[sensors.setdefault(r.sensor_id, len(sensors)) for r in readings],
            time=[times.setdefault(r.time, len(times)) for r in readings],
            sensor_ids=list(sensors),
            times=list(times),
            flow_m3h=[r.flow_m3h for r in readings],
            index_m3=indexes if any(i is not None for i in indexes) else None,
            alerts=batch.alerts,
        )

    def batch(self) -> IngestBatch:
        """The same batch, one object per reading (schema 1)."""
        indexes = self.index_m3 or [None] * len(self.flow_m3h)
        return IngestBatch(
            gateway_id=self.gateway_id,
            batch_seq=self.batch_seq,
            sent_at=self.sent_at,
            readings=[
                Reading(
                    sensor_id=self.sensor_ids[s],
                    time=self.times[t],
                    flow_m3h=f,
                    index_m3=i,
                )
                for s, t, f, i in zip(self.sensor, self.time, self.flow_m3h, indexes, strict=True)
            ],
            alerts=self.alerts,
        )


class IngestResult(WireModel):
    """The server's confirmation of a stored batch."""

    gateway_id: Identifier
    batch_seq: int
    readings_stored: int
    alerts_stored: int

    @classmethod
    def whole(cls, batch: IngestBatch) -> IngestResult:
        """The confirmation of a batch stored whole."""
        return cls(
            gateway_id=batch.gateway_id,
            batch_seq=batch.batch_seq,
            readings_stored=len(batch.readings),
            alerts_stored=len(batch.alerts),
        )


class GatewayHealth(WireModel):
    """What a gateway reports about itself (``POST /api/v1/gateways/health``), also
    exposed on its Prometheus ``/metrics``."""

    gateway_id: Identifier
    sent_at: UtcDatetime
    software_version: Annotated[str, Field(max_length=40)]
    model_versions: dict[str, Annotated[str, Field(max_length=80)]] = {}
    """Series id → trainer and training date of the model it runs."""
    uptime_s: Annotated[float, Field(ge=0)]
    outbox_readings: Annotated[int, Field(ge=0)]
    outbox_alerts: Annotated[int, Field(ge=0)]
    outbox_bytes: Annotated[int, Field(ge=0)] = 0
    outbox_capacity_pct: Annotated[float, Field(ge=0)] = 0.0
    oldest_unsent_at: UtcDatetime | None = None
    messages_received: Annotated[int, Field(ge=0)] = 0
    messages_rejected: Annotated[int, Field(ge=0)] = 0
    readings_dropped: Annotated[int, Field(ge=0)] = 0
    """Readings dropped at the outbox bound (their hourly aggregates were kept)."""
    outbox_commit_failures: Annotated[int, Field(ge=0)] = 0
    """Commits the outbox refused (disk full, I/O error); the broker keeps those messages."""
    clock_jumps: Annotated[int, Field(ge=0)] = 0
    last_clock_jump_s: float | None = None
