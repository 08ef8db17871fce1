"""The MQTT topic scheme: ``leaksense/<site>/<sensor_id>/flow``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from leaksense.core.errors import InvalidMessage
from leaksense.core.messages import ID_PATTERN

ROOT = "leaksense"
FLOW_SUBSCRIPTION = f"{ROOT}/+/+/flow"
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class FlowTopic:
    """The parts of a flow topic."""

    site: str
    sensor_id: str

    def __str__(self) -> str:
        return flow_topic(self.site, self.sensor_id)


def flow_topic(site: str, sensor_id: str) -> str:
    """Build the topic a sensor node publishes its flow on."""
    for name, value in (("site", site), ("sensor_id", sensor_id)):
        if not _ID.match(value):
            raise InvalidMessage(f"{name} {value!r} does not match {ID_PATTERN}")
    return f"{ROOT}/{site}/{sensor_id}/flow"


def alert_topic(site: str, sensor_id: str) -> str:
    """Topic on which a gateway republishes its alerts locally (for on-site tools)."""
    return f"{ROOT}/{site}/{sensor_id}/alert"


def health_topic(site: str, gateway_id: str) -> str:
    """Topic on which a gateway publishes its health report locally (retained; one per
    gateway, so two gateways of a site do not overwrite each other's)."""
    return f"{ROOT}/{site}/gateway/{gateway_id}/health"


def parse_flow_topic(topic: str) -> FlowTopic:
    """Split a flow topic, refusing anything outside the scheme."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT or parts[3] != "flow":
        raise InvalidMessage(f"topic {topic!r} is not {ROOT}/<site>/<sensor_id>/flow")
    site, sensor_id = parts[1], parts[2]
    for name, value in (("site", site), ("sensor_id", sensor_id)):
        if not _ID.match(value):
            raise InvalidMessage(f"topic {topic!r}: {name} {value!r} does not match {ID_PATTERN}")
    return FlowTopic(site=site, sensor_id=sensor_id)
