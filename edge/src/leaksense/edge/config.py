"""Gateway configuration: a TOML file validated by :class:`GatewayConfig`.

Example::

    gateway_id = "gw-saint-savin"
    site = "saint-savin"

    [mqtt]
    host = "127.0.0.1"
    port = 1883

    [uplink]
    url = "https://leaksense.example.org"
    token_file = "/etc/leaksense/gateway.token"   # or LEAKSENSE_GATEWAY_TOKEN

    [[esphome]]
    topic = "ss-school/sensor/flow/state"
    sensor_id = "ss-school"
    unit = "L/min"

    [outbox]                                      # docs/gateway-durability.md
    path = "/var/lib/leaksense/outbox.db"

    [detection]                                   # docs/detection.md
    history = "file"                              # refit history in .../leaksense/history/

    [metrics]
    port = 9108                                   # Prometheus /metrics; 0 turns it off
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.core.messages import Identifier
from leaksense.core.topics import FLOW_SUBSCRIPTION
from leaksense.edge.detection.artifact import DetectionParams, load_public_key
from leaksense.edge.detection.engine import DmaMeters, EngineSettings
from leaksense.edge.outbox_sqlite import DEFAULT_MAX_BYTES, DEFAULT_MAX_READINGS

TOKEN_ENV = "LEAKSENSE_GATEWAY_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_OVERRIDES = {
    "LEAKSENSE_GATEWAY_MQTT_USERNAME": ("mqtt", "username"),
    "LEAKSENSE_GATEWAY_MQTT_PASSWORD": ("mqtt", "password"),
    "LEAKSENSE_GATEWAY_UPLINK_URL": ("uplink", "url"),
}
"""Environment variables that override file settings (secrets stay out of the file)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls_ca_file: Path | None = None
    """CA bundle to verify the broker; setting it turns TLS on."""
    keepalive_s: Annotated[int, Field(ge=5)] = 30
    subscriptions: list[str] = [FLOW_SUBSCRIPTION]


class UplinkConfig(_Section):
    url: str = "http://127.0.0.1:8000"
    token: SecretStr | None = None
    token_file: Path | None = None
    batch_max_readings: Annotated[int, Field(ge=1, le=10_000)] = 1_000
    flush_interval_s: Annotated[float, Field(gt=0)] = 2.0
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    retry_max_s: Annotated[float, Field(gt=0)] = 300.0


class OutboxConfig(_Section):
    """The durable outbox (docs/gateway-durability.md): where, how big, how often to commit."""

    path: Path = Path("leaksense-gateway/outbox.db")
    max_readings: Annotated[int, Field(ge=1_000)] = DEFAULT_MAX_READINGS
    """30 days × 200 sensors × 1 reading/min; past it the oldest become hourly means."""
    max_bytes: Annotated[int, Field(ge=1 << 20)] = DEFAULT_MAX_BYTES
    warn_pct: Annotated[float, Field(gt=0, le=100)] = 80.0
    """Fill level (of readings or bytes) that raises a health warning."""
    commit_interval_s: Annotated[float, Field(gt=0, le=5)] = 0.05
    """Longest wait between receiving a message and committing (then acknowledging) it."""
    commit_max_messages: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    """A group this large is committed at once."""


class HealthConfig(_Section):
    interval_s: Annotated[float, Field(ge=1)] = 60.0
    """How often the gateway reports its health to the server and on the local broker."""
    clock_jump_s: Annotated[float, Field(gt=0)] = 60.0
    """A wall-clock step larger than this (against the monotonic clock) is a clock jump."""


class MetricsConfig(_Section):
    """The Prometheus endpoint (``/metrics``) of the gateway."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9108
    """0 turns the endpoint off."""


class EsphomeSensor(_Section):
    """A plain numeric ESPHome state topic mapped to a Leaksense sensor."""

    topic: str
    sensor_id: Identifier
    unit: Literal["L/min", "m3/h", "L/h"] = "L/min"


class DmaConfig(_Section):
    """A DMA watched as a whole: its net inflow is Σ inlets − Σ outlets − Σ large users."""

    dma_id: Identifier
    inlets: Annotated[list[Identifier], Field(min_length=1)]
    outlets: list[Identifier] = []
    large_users: list[Identifier] = []
    """Metered customers with large or night use (a farm irrigating at night, a
    factory): their flow is subtracted from the net inflow like an outlet's, so the
    night watch sees the net night flow (MNF − exceptional night use,
    water-loss-indicators.md §4). Their meters keep their own customer checks."""

    def meters(self) -> DmaMeters:
        """The engine's view: large users are subtracted as outlets are."""
        return DmaMeters(self.dma_id, tuple(self.inlets), (*self.outlets, *self.large_users))


class DetectionConfig(_Section):
    """Local detection (docs/detection.md): calendar, warm-up, roles, thresholds."""

    timezone: str = "Europe/Paris"
    holidays: list[date] = []
    """Public holidays (behave like Sundays)."""
    warmup_days: Annotated[float, Field(ge=1)] = 14.0
    interval_s: Annotated[float, Field(gt=0)] = 300.0
    """Reporting interval of the DMA meters: the time bucket of a DMA's net inflow."""
    customer_meters: list[Identifier] = []
    """Meters at customers: continuous-flow check, no burst CUSUM."""
    params: dict[str, float] = {}
    """Overrides of DetectionParams defaults (e.g. ``burst_h = 8``)."""
    history: Literal["file", "memory"] = "file"
    """Where each series keeps its refit history (8 bytes a reading, 15 days): in a
    file, read back at each refit and kept across restarts, or in RAM (~35 MB for 200
    sensors reading every minute)."""
    history_dir: Path | None = None
    """Folder of the history files; by default ``history/`` next to the outbox."""
    clock_tolerance_s: Annotated[float, Field(gt=0)] = 300.0
    """A sensor that stamps its readings with a clock further than this from the
    gateway's (late by this plus ``interval_s``) raises a sensor-fault alert."""

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DetectionParams.model_fields))
        if unknown:
            raise ValueError(f"unknown detection parameter(s): {', '.join(unknown)}")
        return value


class ModelsConfig(_Section):
    """Signed models from the server (``GET /api/v1/models``), see edge/models.py.

    Without ``public_key`` no server model is accepted: every series keeps learning
    from the gateway's own data (``detection.warmup_days``).
    """

    public_key: str | None = None
    """The server's Ed25519 public key, base64 (printed by ``leaksense models keygen``)."""
    refresh_s: Annotated[float, Field(ge=10)] = 6 * 3600.0
    dir: Path = Path("leaksense-gateway/models")
    """Where verified artifacts are kept, so a restarted gateway detects at once."""

    @field_validator("public_key")
    @classmethod
    def _is_ed25519(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                load_public_key(value)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from exc
        return value


class GatewayConfig(_Section):
    gateway_id: Identifier
    site: Identifier
    mqtt: MqttConfig = MqttConfig()
    uplink: UplinkConfig = UplinkConfig()
    esphome: list[EsphomeSensor] = []
    detection: DetectionConfig = DetectionConfig()
    dmas: list[DmaConfig] = []
    models: ModelsConfig = ModelsConfig()
    outbox: OutboxConfig = OutboxConfig()
    health: HealthConfig = HealthConfig()
    metrics: MetricsConfig = MetricsConfig()
    dead_letter_dir: Path = Path("leaksense-gateway/rejected")

    def engine_settings(self) -> EngineSettings:
        """What the detection engine needs from this config."""
        d = self.detection
        return EngineSettings(
            timezone=d.timezone,
            holidays=tuple(d.holidays),
            warmup_days=d.warmup_days,
            interval_s=d.interval_s,
            customer_meters=frozenset(d.customer_meters),
            dmas=tuple(m.meters() for m in self.dmas),
            params=DetectionParams(**d.params),
            history_dir=self.history_dir(),
            clock_tolerance_s=d.clock_tolerance_s,
        )

    def history_dir(self) -> Path | None:
        """Where detection keeps its refit history files (None: in RAM)."""
        d = self.detection
        if d.history == "memory":
            return None
        return d.history_dir if d.history_dir is not None else self.outbox.path.parent / "history"

    def uplink_token(self) -> str:
        """The bearer token: from the environment, the config, or ``token_file``."""
        if env := os.environ.get(TOKEN_ENV):
            return env
        if self.uplink.token is not None:
            return self.uplink.token.get_secret_value()
        if self.uplink.token_file is not None:
            try:
                return self.uplink.token_file.read_text("utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read uplink token file: {exc}") from exc
        raise ConfigError(f"no uplink token: set {TOKEN_ENV}, uplink.token or uplink.token_file")


def parse_config(data: dict[str, Any], source: str = "config") -> GatewayConfig:
    """Validate a config mapping, naming each faulty key."""
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway TOML file."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    for env, (section, key) in ENV_OVERRIDES.items():
        if value := os.environ.get(env):
            data.setdefault(section, {})[key] = value
    return parse_config(data, str(path))


def parse_dma(text: str) -> DmaMeters:
    """``ID=IN1+IN2-OUT1`` (command-line form of a DMA's meters)."""
    dma_id, sep, members = text.partition("=")
    if not sep or not dma_id or not members:
        raise ConfigError(f"DMA {text!r}: expected ID=IN1+IN2-OUT1")
    inlets: list[str] = []
    outlets: list[str] = []
    sign = "+"
    for part in re.split(r"([+-])", members):
        if part in {"+", "-"}:
            sign = part
        elif part:
            (inlets if sign == "+" else outlets).append(part)
    return DmaMeters(dma_id, tuple(inlets), tuple(outlets))
