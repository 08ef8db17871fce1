"""Fixtures of the dashboard tests (see ``harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dashboard.harness import Site, serve_site
from leaksense.server.users import passwords
from pg import PostgresServer, pg_binary


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for tests that log in many times; the real parameters
    are tested in ``test_users.py``."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", cheap.hash("dummy"))


@pytest.fixture
def site(tmp_path: Path, fast_hashing: None) -> Iterator[Site]:
    """A real server on SQLite with users alice (admin), marc (manager), tom (technician)."""
    yield from serve_site(tmp_path)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL on 127.0.0.1 (skipped locally, failed in CI, if missing)."""
    with PostgresServer(pg_binary("initdb"), pg_binary("postgres")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty entity database: a SQLite file, or a fresh database on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'entities.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)
