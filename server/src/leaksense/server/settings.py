"""Server settings: one pydantic-settings class, read from ``LEAKSENSE_SERVER_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leaksense.core.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "admin", "password", "secret"})


class ServerSettings(BaseSettings):
    """Where the server keeps its data and how it is reached.

    ``development`` (default) runs on embedded SQLite with no secrets. ``production``
    refuses an InfluxDB without credentials and any placeholder secret.
    """

    model_config = SettingsConfigDict(env_prefix="LEAKSENSE_SERVER_", extra="forbid")

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
    model_signing_key_file: Path | None = None
    """Ed25519 private key (PEM) that ``leaksense models train`` signs artifacts with.

    Only the training command reads it: serving artifacts needs no key. In
    ``production`` training refuses to run without it; in ``development`` it
    defaults to a key created in ``data_dir``.
    """

    @property
    def entity_database_url(self) -> str:
        """The SQLAlchemy URL; defaults to a SQLite file in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'leaksense.db'}"

    @model_validator(mode="after")
    def _refuse_weak_production(self) -> ServerSettings:
        if self.mode != "production":
            return self
        if self.database_url is None:
            raise ValueError("production mode needs an explicit LEAKSENSE_SERVER_DATABASE_URL")
        if self.reading_store == "influxdb":
            secret = self.influx_token or self.influx_password
            if secret is None or secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "production mode needs a real LEAKSENSE_SERVER_INFLUX_PASSWORD "
                    "or LEAKSENSE_SERVER_INFLUX_TOKEN (placeholders are refused)"
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
