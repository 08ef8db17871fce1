"""The server's wiring: settings → entity database + reading store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from leaksense.server.db import make_engine, make_sessionmaker
from leaksense.server.settings import ServerSettings
from leaksense.server.stores.base import ReadingStore
from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.server.stores.sqlite import SqliteReadingStore
from leaksense.server.workflow import models as _workflow_tables  # noqa: F401  (registers them)


@dataclass
class Runtime:
    """What routes and commands need, built once per process."""

    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker[Any]
    store: ReadingStore

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()


def build_store(settings: ServerSettings) -> ReadingStore:
    """The configured reading store (InfluxDB database created if missing)."""
    if settings.reading_store == "sqlite":
        return SqliteReadingStore(settings.data_dir / "readings.db")
    store = InfluxReadingStore(
        settings.influx_url,
        settings.influx_database,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value() if settings.influx_password else None,
        token=settings.influx_token.get_secret_value() if settings.influx_token else None,
        refresh_interval_s=settings.influx_refresh_interval_s,
    )
    store.ensure_database()
    store.start_refresh_worker()  # aggregates left dirty by a crash are refreshed at start
    return store


def build_runtime(settings: ServerSettings) -> Runtime:
    """Open the databases named by ``settings``."""
    if settings.entity_database_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.entity_database_url)
    return Runtime(settings, engine, make_sessionmaker(engine), build_store(settings))
