"""Shared fixtures: real servers started once per session (see ``tests/services.py``).

Tests mark themselves with the service they use (``mqtt``, ``influx``). A test that
stops or restarts a session server must leave it running, on the same port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services import (
    INFLUXD_BINARY,
    MOSQUITTO_BINARY,
    InfluxDatabase,
    InfluxServer,
    MosquittoServer,
    require_binary,
)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """An anonymous Mosquitto broker on 127.0.0.1 (``.host``, ``.port``, ``.url``)."""
    binary = require_binary("mosquitto", MOSQUITTO_BINARY)
    with MosquittoServer(tmp_path_factory.mktemp("mosquitto"), binary=binary) as server:
        yield server


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """An InfluxDB 1.x server without auth on 127.0.0.1 (``.url``, ``.create_database``)."""
    binary = require_binary("influxd", INFLUXD_BINARY)
    with InfluxServer(tmp_path_factory.mktemp("influxd"), binary=binary) as server:
        yield server


@pytest.fixture
def influx_db(influxd: InfluxServer) -> Iterator[InfluxDatabase]:
    """``(url, database_name)`` of a database created for this test, dropped after it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxd.create_database(name)
    yield InfluxDatabase(influxd.url, name)
    if influxd.running:
        influxd.drop_database(name)
