"""Server settings: one pydantic-settings class, read from ``LEAKSENSE_SERVER_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from leaksense.core.errors import ConfigError
from leaksense.core.messages import MAX_READINGS_PER_BATCH

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "admin", "password", "secret"})
MIN_SESSION_SECRET_CHARS = 32


class ServerSettings(BaseSettings):
    """Where the server keeps its data and how it is reached.

    ``development`` (default) runs on embedded SQLite with no secrets. ``production``
    refuses an InfluxDB without credentials and any placeholder secret.
    """

    model_config = SettingsConfigDict(
        env_prefix="LEAKSENSE_SERVER_", extra="forbid", env_ignore_empty=True
    )
    """An empty variable counts as unset (its default): docker-compose.yml passes the
    optional ones through as ``${VAR:-}``."""

    mode: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("leaksense-data")
    database_url: str | None = None
    reading_store: Literal["sqlite", "influxdb"] = "sqlite"
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "leaksense"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None
    influx_refresh_interval_s: float = Field(default=60.0, gt=0)
    """How often the background worker refreshes the hourly and daily aggregates that
    writes marked dirty. Reads refresh what they read first, so this only bounds the
    work left to a read; each round re-reads the current hour of every active sensor."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """Largest request body accepted (413 beyond). A full batch of 10 000 readings and
    1 000 alerts is about 2.5 MB of JSON."""
    rate_limit_requests_per_s: float = Field(default=20.0, gt=0)
    """Requests per second allowed to each gateway, on each server instance."""
    rate_limit_requests_burst: int = Field(default=40, gt=0)
    rate_limit_readings_per_s: float = Field(default=50_000.0, gt=0)
    """Readings per second each gateway may ingest, on each server instance: a week's
    backlog of 200 sensors at one reading a minute (2 M readings) drains in 40 s."""
    rate_limit_readings_burst: int = Field(default=200_000, ge=MAX_READINGS_PER_BATCH)
    """At least one full batch, or a full batch could never pass."""
    batch_log_retention_days: float = Field(default=7.0, gt=0)
    """How long a stored batch is remembered for answering its replays without a write."""
    metrics_require_token: bool = False
    """Ask a reader token on ``GET /metrics``; by default it is open, like most exporters:
    bind the server to a private address or filter ``/metrics`` at the proxy."""
    model_signing_key_file: Path | None = None
    """Ed25519 private key (PEM) that ``leaksense models train`` signs artifacts with.

    Only the training command reads it: serving artifacts needs no key. In
    ``production`` training refuses to run without it; in ``development`` it
    defaults to a key created in ``data_dir``.
    """

    water_price_eur_per_m3: float = Field(default=2.0, ge=0)
    """What a saved m³ is worth in before/after reports (≈ the drinking-water part of the
    average French bill; a service may prefer its variable production cost)."""
    report_constants_file: Path | None = None
    """TOML overriding the reports' configurable constants (see ``docs/reports.md``)."""
    session_secret: SecretStr | None = None
    """Key that signs the dashboard's session cookies (at least 32 random characters,
    e.g. ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``); every
    instance behind one load balancer needs the same. ``production`` refuses to serve
    without it; ``development`` keeps a random one in ``data_dir``."""

    display_timezone: str = "Europe/Paris"
    """IANA zone of the times people read: dashboard pages and notification texts show
    local time with the zone's abbreviation (CET/CEST); JSON APIs stay in UTC."""

    # Alert notifications and escalation (docs/alerts.md).
    notify_worker: bool = True
    """Run the notification worker in this server process (it starts only if SMTP or a
    webhook is configured). Any number of instances may run one: rows are claimed."""
    notify_poll_interval_s: float = Field(default=2.0, gt=0)
    notify_oncall: list[str] = []
    """E-mail addresses in escalation order (JSON list in the environment): the first
    is told of a new alert, the next one each ``escalate_after_s`` it stays open."""
    escalate_after_s: float = Field(default=900.0, gt=0)
    notify_quiet_hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    """``HH:MM-HH:MM`` local time (e.g. ``22:00-07:00``) when only urgent alerts go out."""
    notify_timezone: str = "Europe/Paris"
    notify_urgent_kinds: list[str] = ["burst"]
    """Alert kinds notified even in quiet hours."""
    public_base_url: str = "http://127.0.0.1:8000"
    """How people reach this server: the alert links in notifications start with it."""
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_starttls: bool = True
    smtp_ca_file: Path | None = None
    """CA certificate(s) (PEM) to trust for STARTTLS besides the system's: a private relay."""
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "leaksense@localhost"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    webhook_url: str | None = None
    """Receives a signed JSON POST per alert event (SMS gateways, chat bridges)."""
    webhook_secret: SecretStr | None = None
    """Shared HMAC-SHA256 key of the webhook signature (needed when a webhook is set)."""
    notify_retry_base_s: float = Field(default=30.0, gt=0)
    """First retry delay; doubles each attempt up to ``notify_retry_max_s``."""
    notify_retry_max_s: float = Field(default=3600.0, gt=0)
    notify_max_attempts: int = Field(default=20, gt=0)
    notify_lease_s: float = Field(default=120.0, gt=0)
    """How long a worker holds a claimed notification; longer than any send timeout."""

    @field_validator("display_timezone", "notify_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"unknown time zone {name!r} (an IANA name: Europe/Paris)") from exc
        return name

    @property
    def display_zone(self) -> ZoneInfo:
        """:attr:`display_timezone` as a zone (``ZoneInfo`` keeps one per name)."""
        return ZoneInfo(self.display_timezone)

    @property
    def entity_database_url(self) -> str:
        """The SQLAlchemy URL; defaults to a SQLite file in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'leaksense.db'}"

    @model_validator(mode="after")
    def _refuse_weak_production(self) -> ServerSettings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("a webhook_url needs a webhook_secret (HMAC-SHA256 key)")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together (both or neither)")
        if self.mode != "production":
            return self
        if self.webhook_secret is not None and (
            self.webhook_secret.get_secret_value().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("production mode refuses a placeholder webhook_secret")
        if self.smtp_password is not None and (
            self.smtp_password.get_secret_value().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("production mode refuses a placeholder smtp_password")
        if self.database_url is None:
            raise ValueError("production mode needs an explicit LEAKSENSE_SERVER_DATABASE_URL")
        if self.reading_store == "influxdb":
            secret = self.influx_token or self.influx_password
            if secret is None or secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "production mode needs a real LEAKSENSE_SERVER_INFLUX_PASSWORD "
                    "or LEAKSENSE_SERVER_INFLUX_TOKEN (placeholders are refused)"
                )
        session_secret = self.session_secret
        if session_secret is not None and (
            len(session_secret.get_secret_value()) < MIN_SESSION_SECRET_CHARS
            or session_secret.get_secret_value().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError(
                "production mode needs a LEAKSENSE_SERVER_SESSION_SECRET of at least"
                f" {MIN_SESSION_SECRET_CHARS} random characters (placeholders are refused)"
            )
        return self


def load_settings(**overrides: object) -> ServerSettings:
    """Build settings from the environment (and overrides), as a :class:`ConfigError`."""
    try:
        return ServerSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid server settings: {problems}") from exc
    except SettingsError as exc:  # a variable that is not the JSON its field needs
        raise ConfigError(f"invalid server settings: {exc}") from exc
