"""Turn MQTT messages into validated readings (pure: no I/O).

Two forms are accepted: the JSON :class:`~leaksense.core.messages.SensorPayload` on
``leaksense/<site>/<sensor_id>/flow``, and an ESPHome node's plain numeric state
topic mapped in the config, stamped with the gateway's receive time and converted
to m³/h.

JSON payloads are decoded with msgspec first (about 0.3 µs, against 3–4 µs for
pydantic plus a ``Reading``): its schema is a strict subset of ``SensorPayload``'s
(RFC 3339 times with an offset, JSON numbers, finite, in range, no unknown field).
Whatever it refuses, and times finer than a microsecond (msgspec rounds them,
pydantic truncates), goes to ``SensorPayload``, which decides and words the error:
the accepted payloads, their values and the error messages are pydantic's.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from pydantic import ValidationError

from leaksense.core.errors import InvalidMessage
from leaksense.core.messages import MAX_FLOW_M3H, Reading, SensorPayload
from leaksense.core.topics import parse_flow_topic
from leaksense.edge.config import EsphomeSensor, GatewayConfig
from leaksense.edge.outbox import ReadingRow

TO_M3H = {"L/min": 60 / 1000, "L/h": 1 / 1000, "m3/h": 1.0}
"""Factor turning each ESPHome unit into m³/h."""
MAX_PAYLOAD_BYTES = 4096


MAX_CACHED_TOPICS = 10_000
"""Topics whose sensor id is remembered (a site has a few hundred; garbage is bounded)."""
_SECONDS_7_DECIMALS = re.compile(rb":\d\d\.\d{7}")
"""``:SS.fffffff``; it starts with a literal, which the regex engine scans for fast."""


class _FastPayload(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The common case of ``SensorPayload``, strictly (anything else goes to pydantic)."""

    time: Annotated[datetime, msgspec.Meta(tz=True)]
    flow_m3h: Annotated[float, msgspec.Meta(ge=-MAX_FLOW_M3H, le=MAX_FLOW_M3H)]
    index_m3: Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)] | None = None


_decode_fast = msgspec.json.Decoder(_FastPayload).decode


class MessageParser:
    """Parses messages for one gateway's configuration."""

    def __init__(self, config: GatewayConfig) -> None:
        self._esphome: dict[str, EsphomeSensor] = {e.topic: e for e in config.esphome}
        self._sensor_ids: dict[str, str] = {}

    @property
    def esphome_topics(self) -> list[str]:
        return sorted(self._esphome)

    def parse(self, topic: str, payload: bytes, received_at: datetime | None = None) -> Reading:
        """The reading a message carries; :class:`InvalidMessage` says why not.

        ``received_at`` (default: now) stamps ESPHome states, which carry no time.
        """
        sensor_id, time, flow_m3h, index_m3 = self.parse_row(topic, payload, received_at)
        # Every field was validated by parse_row: no second validation.
        return Reading.model_construct(
            sensor_id=sensor_id, time=time, flow_m3h=flow_m3h, index_m3=index_m3
        )

    def parse_row(
        self, topic: str, payload: bytes, received_at: datetime | None = None
    ) -> ReadingRow:
        """:meth:`parse` as ``(sensor_id, time (UTC), flow_m3h, index_m3)``: the hot path."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise InvalidMessage(f"{topic}: payload of {len(payload)} bytes exceeds the limit")
        mapped = self._esphome.get(topic)
        if mapped is not None:
            return _parse_esphome(mapped, payload, received_at or datetime.now(UTC))
        sensor_id = self._sensor_id(topic)
        if b"\\" not in payload and (
            _SECONDS_7_DECIMALS.search(payload) is None or not _sub_microsecond(payload)
        ):
            try:
                fast = _decode_fast(payload)
                time = fast.time
                if time.tzinfo is not UTC:
                    time = time.astimezone(UTC)  # OverflowError near year 1 or 9999
            except (msgspec.DecodeError, OverflowError):  # msgspec.ValidationError included
                pass
            else:
                return sensor_id, time, fast.flow_m3h, fast.index_m3
        try:
            data = SensorPayload.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "payload"
            raise InvalidMessage(f"{topic}: {field}: {first['msg']}") from exc
        return sensor_id, data.time, data.flow_m3h, data.index_m3

    def _sensor_id(self, topic: str) -> str:
        sensor_id = self._sensor_ids.get(topic)
        if sensor_id is None:
            sensor_id = parse_flow_topic(topic).sensor_id
            if len(self._sensor_ids) >= MAX_CACHED_TOPICS:
                self._sensor_ids.clear()
            self._sensor_ids[topic] = sensor_id
        return sensor_id


def _sub_microsecond(payload: bytes) -> bool:
    """Whether a time has seconds with more than 6 decimals (``H:MM:SS.fffffff``):
    msgspec would round them, pydantic truncates them."""
    match = _SECONDS_7_DECIMALS.search(payload)
    while match is not None:
        if payload[match.start() - 1 : match.start()].isdigit():
            return True
        match = _SECONDS_7_DECIMALS.search(payload, match.start() + 1)
    return False


def _parse_esphome(mapped: EsphomeSensor, payload: bytes, received_at: datetime) -> ReadingRow:
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidMessage(f"{mapped.topic}: state {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidMessage(f"{mapped.topic}: state {text!r} is not a finite number")
    try:
        reading = Reading(
            sensor_id=mapped.sensor_id, time=received_at, flow_m3h=value * TO_M3H[mapped.unit]
        )
    except ValidationError as exc:
        raise InvalidMessage(f"{mapped.topic}: {exc.errors()[0]['msg']}") from exc
    return reading.sensor_id, reading.time, reading.flow_m3h, reading.index_m3
