"""Turn MQTT messages into validated readings (pure: no I/O).

Two forms are accepted: the JSON :class:`~leaksense.core.messages.SensorPayload` on
``leaksense/<site>/<sensor_id>/flow``, and an ESPHome node's plain numeric state
topic mapped in the config, stamped with the gateway's receive time and converted
to m³/h.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pydantic import ValidationError

from leaksense.core.errors import InvalidMessage
from leaksense.core.messages import Reading, SensorPayload
from leaksense.core.topics import parse_flow_topic
from leaksense.edge.config import EsphomeSensor, GatewayConfig

TO_M3H = {"L/min": 60 / 1000, "L/h": 1 / 1000, "m3/h": 1.0}
"""Factor turning each ESPHome unit into m³/h."""
MAX_PAYLOAD_BYTES = 4096


MAX_CACHED_TOPICS = 10_000
"""Topics whose sensor id is remembered (a site has a few hundred; garbage is bounded)."""


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
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise InvalidMessage(f"{topic}: payload of {len(payload)} bytes exceeds the limit")
        mapped = self._esphome.get(topic)
        if mapped is not None:
            return _parse_esphome(mapped, payload, received_at or datetime.now(UTC))
        sensor_id = self._sensor_id(topic)
        try:
            data = SensorPayload.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "payload"
            raise InvalidMessage(f"{topic}: {field}: {first['msg']}") from exc
        # Hot path: every field was just validated (SensorPayload has Reading's types,
        # the topic's sensor id matched ID_PATTERN), so no second validation.
        return Reading.model_construct(
            sensor_id=sensor_id, time=data.time, flow_m3h=data.flow_m3h, index_m3=data.index_m3
        )

    def _sensor_id(self, topic: str) -> str:
        sensor_id = self._sensor_ids.get(topic)
        if sensor_id is None:
            sensor_id = parse_flow_topic(topic).sensor_id
            if len(self._sensor_ids) >= MAX_CACHED_TOPICS:
                self._sensor_ids.clear()
            self._sensor_ids[topic] = sensor_id
        return sensor_id


def _parse_esphome(mapped: EsphomeSensor, payload: bytes, received_at: datetime) -> Reading:
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidMessage(f"{mapped.topic}: state {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidMessage(f"{mapped.topic}: state {text!r} is not a finite number")
    try:
        return Reading(
            sensor_id=mapped.sensor_id, time=received_at, flow_m3h=value * TO_M3H[mapped.unit]
        )
    except ValidationError as exc:
        raise InvalidMessage(f"{mapped.topic}: {exc.errors()[0]['msg']}") from exc
