"""Found by the fault-injection suite (scenario f): a fold must not reuse the key of
a reading already on its way to the server.

The server keys readings by ``(sensor_id, time)``. When the batch in flight ends in
the middle of an hour, the rest of that hour is folded into a mean; stamped at the
hour's start, that mean overwrote on the server the raw HH:00 reading of the batch
in flight, a loss counted nowhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaksense.core.messages import Reading
from leaksense.edge.outbox_sqlite import SqliteOutbox

pytestmark = pytest.mark.faults
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def minutes(start: int, stop: int) -> list[Reading]:
    return [
        Reading(sensor_id="s-1", time=T0 + timedelta(minutes=m), flow_m3h=1.0 + m / 64)
        for m in range(start, stop)
    ]


def test_a_mean_never_takes_the_key_of_a_reading_in_flight(tmp_path: Path) -> None:
    with SqliteOutbox(tmp_path / "outbox.db", max_readings=1000) as outbox:
        outbox.add(minutes(0, 90), [])  # 00:00 … 01:29
        in_flight = outbox.peek_batch(70)  # 00:00 … 01:09: ends inside hour 01
        assert in_flight is not None
        outbox.add(minutes(90, 1100), [])  # past the bound: 01:30 … folded
        dropped = outbox.stats().readings_dropped
        assert dropped > 0
        outbox.confirm(in_flight.batch_seq)
        rest: list[Reading] = []
        while (batch := outbox.peek_batch(1000)) is not None:
            rest += batch.readings
            outbox.confirm(batch.batch_seq)
    server = {r.time: r.flow_m3h for r in in_flight.readings}
    overwritten = dict(server)
    for reading in rest:  # what the server holds in the end, keyed by time
        server[reading.time] = reading.flow_m3h
    assert all(server[t] == flow for t, flow in overwritten.items()), "a raw reading overwritten"
    intact = sum(1 for r in minutes(0, 1100) if server.get(r.time) == r.flow_m3h)
    assert intact + dropped >= 1100, "a reading is neither on the server nor counted"
