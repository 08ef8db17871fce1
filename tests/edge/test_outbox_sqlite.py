"""The durable outbox on a real SQLite file: batches survive a reopen unchanged,
confirm forgets a whole batch, alerts go first, the bound folds old readings into
hourly means and counts them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaksense.core.errors import ConfigError
from leaksense.core.messages import Alert, AlertKind, Reading
from leaksense.edge.outbox_sqlite import SqliteOutbox

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def readings(count: int, sensor: str = "s-1", start: datetime = T0) -> list[Reading]:
    return [
        Reading(
            sensor_id=sensor,
            time=start + timedelta(minutes=i),
            flow_m3h=float(i),
            index_m3=100.0 + i,
        )
        for i in range(count)
    ]


def alert(alert_id: str, flow_m3h: float = 5.0) -> Alert:
    return Alert(
        alert_id=alert_id,
        sensor_id="s-1",
        kind=AlertKind.BURST,
        started_at=T0,
        detected_at=T0,
        flow_m3h=flow_m3h,
        explanation_en="burst",
        explanation_fr="casse",
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "gw" / "outbox.db"


def test_a_batch_is_the_same_after_a_reopen_until_confirmed(path: Path) -> None:
    sent = readings(25) + readings(5, sensor="s-2")
    with SqliteOutbox(path) as outbox:
        outbox.add(sent, [alert("a-1")])
        first = outbox.peek_batch(10)
        assert first is not None
        assert outbox.peek_batch(10) == first
    with SqliteOutbox(path) as outbox:  # a restart: same seq, same content
        again = outbox.peek_batch(1_000)
        assert again == first
        assert again.readings == tuple(sent[:10])
        assert [a.alert_id for a in again.alerts] == ["a-1"]
        outbox.confirm(again.batch_seq)
        rest = outbox.peek_batch(1_000)
        assert rest is not None
        assert rest.batch_seq == first.batch_seq + 1
        assert rest.readings == tuple(sent[10:])
        assert rest.alerts == ()


def test_confirm_deletes_the_batch_for_good(path: Path) -> None:
    with SqliteOutbox(path) as outbox:
        outbox.add(readings(30), [alert("a-1")])
        assert outbox.depth() == 31
        batch = outbox.peek_batch(20)
        assert batch is not None
        outbox.confirm(batch.batch_seq)
        outbox.confirm(batch.batch_seq)  # a second confirm is harmless
        assert outbox.depth() == 10
    with SqliteOutbox(path) as outbox:
        assert outbox.depth() == 10
        assert outbox.stats().alerts == 0
        batch = outbox.peek_batch(20)
        assert batch is not None
        assert [r.flow_m3h for r in batch.readings] == [float(i) for i in range(20, 30)]
        outbox.confirm(batch.batch_seq)
        assert outbox.peek_batch(20) is None
        assert outbox.depth() == 0


def test_batch_seq_grows_across_reopens(path: Path) -> None:
    seqs = []
    for _ in range(3):
        with SqliteOutbox(path) as outbox:
            outbox.add(readings(2), [])
            batch = outbox.peek_batch(10)
            assert batch is not None
            outbox.confirm(batch.batch_seq)
            seqs.append(batch.batch_seq)
    assert seqs == [0, 1, 2]


def test_alerts_go_first_and_an_update_replaces_the_pending_version(path: Path) -> None:
    with SqliteOutbox(path) as outbox:
        outbox.add(readings(5), [])
        outbox.add(readings(5, start=T0 + timedelta(hours=1)), [alert("a-1", 5.0)])
        outbox.add([], [alert("a-2"), alert("a-1", 7.0)])
        assert outbox.stats().alerts == 2
        batch = outbox.peek_batch(3)
        assert batch is not None
        assert [(a.alert_id, a.flow_m3h) for a in batch.alerts] == [("a-1", 7.0), ("a-2", 5.0)]
        assert len(batch.readings) == 3


def test_an_update_of_an_alert_in_flight_waits_for_the_next_batch(path: Path) -> None:
    with SqliteOutbox(path) as outbox:
        outbox.add([], [alert("a-1", 5.0)])
        in_flight = outbox.peek_batch(10)
        assert in_flight is not None
        outbox.add([], [alert("a-1", 9.0)])
        assert outbox.peek_batch(10) == in_flight  # the batch in flight is never changed
        outbox.confirm(in_flight.batch_seq)
        following = outbox.peek_batch(10)
        assert following is not None
        assert [a.flow_m3h for a in following.alerts] == [9.0]


def test_late_and_out_of_order_readings_are_kept_in_arrival_order(path: Path) -> None:
    late = readings(3, start=T0 - timedelta(days=2))
    arrived = [*readings(3), late[2], late[0], late[1]]
    with SqliteOutbox(path) as outbox:
        outbox.add(arrived, [])
        assert outbox.stats().oldest_unsent_at == T0
        batch = outbox.peek_batch(100)
        assert batch is not None
        assert batch.readings == tuple(arrived)


def test_microseconds_and_missing_index_survive(path: Path) -> None:
    odd = Reading(sensor_id="s-9", time=T0 + timedelta(microseconds=123_457), flow_m3h=-0.1)
    with SqliteOutbox(path) as outbox:
        outbox.add([odd], [])
    with SqliteOutbox(path) as outbox:
        batch = outbox.peek_batch(1)
        assert batch is not None
        assert batch.readings == (odd,)
        assert batch.readings[0].model_dump_json() == odd.model_dump_json()


def test_at_the_bound_old_readings_become_hourly_means(path: Path) -> None:
    # 3 sensors x 5 h of 1-min readings = 900 readings for a bound of 600.
    with SqliteOutbox(path, max_readings=600) as outbox:
        for hour in range(5):
            start = T0 + timedelta(hours=hour)
            for sensor in ("a", "b", "c"):
                outbox.add(readings(60, sensor=sensor, start=start), [alert(f"x-{hour}")])
        stats = outbox.stats()
        assert stats.readings <= 600
        assert stats.readings_dropped > 0
        assert stats.alerts == 5  # alerts are never dropped
        batch = outbox.peek_batch(10_000)
        assert batch is not None
    full_hours = [r for r in batch.readings if r.time.minute == 0 and r.flow_m3h == 29.5]
    assert len(full_hours) >= 3
    assert all(r.index_m3 == 159.0 for r in full_hours)  # the hour's last index
    # No two rows share (sensor, time): the server stores each of them.
    assert len({(r.sensor_id, r.time) for r in batch.readings}) == len(batch.readings)
    # Every reading is still there, as itself or inside one hourly mean.
    with closing(sqlite3.connect(path)) as db:
        raw, means, folded, represented = db.execute(
            "SELECT sum(folded = 0), sum(folded > 0), sum(folded), sum(max(folded, 1)) "
            "FROM readings"
        ).fetchone()
    assert represented == 900
    assert raw + means == stats.readings
    assert folded == stats.readings_dropped


def test_the_batch_in_flight_is_never_folded(path: Path) -> None:
    with SqliteOutbox(path, max_readings=100) as outbox:
        outbox.add(readings(90), [])
        in_flight = outbox.peek_batch(50)
        assert in_flight is not None
        outbox.add(readings(60, start=T0 + timedelta(hours=2)), [])
        assert outbox.peek_batch(50) == in_flight
        assert outbox.stats().readings_dropped > 0


def test_means_are_kept_when_the_batch_in_flight_fills_the_bound(path: Path) -> None:
    """Scenario f of the fault suite: a batch in flight as large as the bound must not
    make the outbox drop the hourly means of the readings after it."""
    with SqliteOutbox(path, max_readings=100) as outbox:
        outbox.add(readings(100), [])
        assert outbox.peek_batch(100) is not None  # the whole bound is in flight
        for hour in range(3):
            outbox.add(readings(60, start=T0 + timedelta(hours=5 + hour)), [])
        dropped = outbox.stats().readings_dropped
    with closing(sqlite3.connect(path)) as db:
        means, represented = db.execute(
            "SELECT sum(folded > 0), sum(folded) FROM readings WHERE folded > 0"
        ).fetchone()
    assert means == 3  # one mean per hour, none dropped
    assert represented == dropped > 0


def test_a_file_that_is_not_an_outbox_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "outbox.db"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a usable gateway outbox"):
        SqliteOutbox(bad)


def test_rows_of_an_intake_group_keep_their_order_and_values(path: Path) -> None:
    sent = [r for i in range(3) for r in readings(87, sensor=f"s-{i}")]  # 261: chunks + rest
    sent[5] = sent[5].model_copy(update={"index_m3": None})
    rows = [(r.sensor_id, r.time, r.flow_m3h, r.index_m3) for r in sent]
    with SqliteOutbox(path) as outbox:
        outbox.add_rows(rows[:200], [])
        outbox.add_rows(rows[200:], [])
        assert outbox.depth() == 261
    with SqliteOutbox(path) as outbox:
        batch = outbox.peek_batch(1_000)
        assert batch is not None
        assert list(batch.readings) == sent
