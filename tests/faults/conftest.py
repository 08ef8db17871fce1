"""Fixtures of the fault-injection suite: a test bed per scenario, a report per run.

Each scenario gets its own persistent broker, InfluxDB database, server data dir and
gateway outbox; influxd is the session's (scenario (b) stops it and starts it again
on the same port). At the end of the session the counts of every scenario that ran
are written to ``build/fault-injection.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.bed import Bed, Sensors
from faults.processes import GATEWAY_ID, PersistentMosquitto, ServerProcess
from faults.tallies import Tally, write_report
from services import MOSQUITTO_BINARY, InfluxDatabase, InfluxServer, require_binary

REPORT_PATH = Path(__file__).resolve().parents[2] / "build" / "fault-injection.md"
COMMAND = "uv run pytest tests/faults -m faults -q"


@pytest.fixture(scope="session")
def fault_report() -> Iterator[list[Tally]]:
    """Scenarios append their :class:`Tally`; the table is written once, at the end."""
    tallies: list[Tally] = []
    yield tallies
    if tallies:
        order = {name: i for i, name in enumerate("abcdefg")}
        tallies.sort(key=lambda t: order.get(t.scenario[:1], 99))
        write_report(REPORT_PATH, tallies, COMMAND)


@pytest.fixture
def bed(tmp_path: Path, influxd: InfluxServer, influx_db: InfluxDatabase) -> Iterator[Bed]:
    binary = require_binary("mosquitto", MOSQUITTO_BINARY)
    broker = PersistentMosquitto(tmp_path / "mosquitto", binary=binary)
    broker.start()
    broker.open_session(f"leaksense-gw-{GATEWAY_ID}")
    server = ServerProcess(tmp_path, influx_db)
    bed = Bed(tmp_path, broker, influxd, influx_db, server, Sensors(broker))
    try:
        yield bed
    finally:
        bed.close()
        if not influxd.running:  # leave the session's influxd as we found it
            influxd.start()
