"""Fixtures of the workflow tests: each runs on SQLite and on a real PostgreSQL.

``db_url`` is parametrized: ``sqlite`` (a file in the test's temp dir) and
``postgresql`` (a fresh database on the session's PostgreSQL server, ``tests/pg.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from leaksense.server.db import make_engine, make_sessionmaker
from leaksense.server.notify.worker import NotificationWorker
from leaksense.server.stores.sqlite import SqliteReadingStore
from leaksense.server.workflow import models as _tables  # noqa: F401  (registers them)
from pg import PostgresServer, SmtpServer, pg_binary
from workflow.support import Clock, Gateway1, Mailer, notify_settings


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL 15 on 127.0.0.1 (skipped locally, failed in CI, if missing)."""
    with PostgresServer(pg_binary("initdb"), pg_binary("postgres")) as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'entities.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server process (aiosmtpd) writing what it accepts to a Maildir."""
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def gateway(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Gateway1]:
    store = SqliteReadingStore(tmp_path / "readings.db")
    yield Gateway1(sessions, store)
    store.close()


@pytest.fixture
def mailer(
    sessions: sessionmaker[Session], smtp: SmtpServer, tmp_path: Path, db_url: str
) -> Mailer:
    clock = Clock()
    settings = notify_settings(tmp_path, db_url, smtp_port=smtp.port)
    return Mailer(NotificationWorker(sessions, settings, clock), clock)
