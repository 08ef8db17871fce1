"""One contract, every ReadingStore adapter: SQLite (embedded) and InfluxDB (real influxd)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leaksense.core.errors import InvalidInput, StoreUnavailable
from leaksense.core.messages import Reading
from leaksense.server.stores.base import ReadingStore
from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.server.stores.sqlite import SqliteReadingStore
from services import InfluxDatabase, free_port

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def readings(sensor_id: str, count: int, step_s: int = 300, flow: float = 10.0) -> list[Reading]:
    return [
        Reading(
            sensor_id=sensor_id,
            time=T0 + timedelta(seconds=i * step_s),
            flow_m3h=flow + i % 12,
            index_m3=1000.0 + i,
        )
        for i in range(count)
    ]


@pytest.fixture(params=["sqlite", pytest.param("influxdb", marks=pytest.mark.influx)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadingStore]:
    adapter: ReadingStore
    if request.param == "sqlite":
        adapter = SqliteReadingStore(tmp_path / "readings.db")
    else:
        db: InfluxDatabase = request.getfixturevalue("influx_db")
        adapter = InfluxReadingStore(db.url, db.name)
    yield adapter
    adapter.close()


def test_written_readings_come_back_in_order(store: ReadingStore) -> None:
    written = readings("ss-inlet", 50) + readings("other", 5)
    assert store.write(list(reversed(written))) == 55
    got = store.readings("ss-inlet", T0, T0 + timedelta(days=1))
    assert got == written[:50]
    assert got[0].time.tzinfo is not None


def test_writes_are_idempotent(store: ReadingStore) -> None:
    batch = readings("ss-inlet", 20)
    store.write(batch)
    store.write(batch)
    store.write(batch[5:10])
    assert len(store.readings("ss-inlet", T0, T0 + timedelta(days=1))) == 20


def test_same_time_rewritten_replaces_the_value(store: ReadingStore) -> None:
    first = Reading(sensor_id="s1", time=T0, flow_m3h=1.0)
    store.write([first])
    store.write([first.model_copy(update={"flow_m3h": 2.5})])
    assert [r.flow_m3h for r in store.readings("s1", T0, T0 + timedelta(hours=1))] == [2.5]


def test_range_is_half_open_and_limit_applies(store: ReadingStore) -> None:
    store.write(readings("s1", 24, step_s=3600))
    got = store.readings("s1", T0 + timedelta(hours=2), T0 + timedelta(hours=5))
    assert [r.time.hour for r in got] == [2, 3, 4]
    assert len(store.readings("s1", T0, T0 + timedelta(days=1), limit=7)) == 7


def test_hourly_flow_means_and_counts(store: ReadingStore) -> None:
    store.write(readings("s1", 36, step_s=300))  # 3 hours of 5-minute readings
    hourly = store.hourly_flow("s1", T0, T0 + timedelta(hours=6))
    assert [h.hour_start for h in hourly] == [T0 + timedelta(hours=h) for h in range(3)]
    assert [h.reading_count for h in hourly] == [12, 12, 12]
    assert all(h.mean_flow_m3h == pytest.approx(10.0 + 5.5) for h in hourly)


def test_unbounded_or_reversed_queries_are_refused(store: ReadingStore) -> None:
    with pytest.raises(InvalidInput, match="exceeds"):
        store.hourly_flow("s1", T0, T0 + timedelta(days=401))
    with pytest.raises(InvalidInput, match="empty"):
        store.readings("s1", T0, T0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        store.readings("s1", T0.replace(tzinfo=None), T0 + timedelta(hours=1))


def test_unreachable_influx_raises_store_unavailable() -> None:
    dead = InfluxReadingStore(f"http://127.0.0.1:{free_port()}", "nowhere", timeout_s=1.0)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        dead.write(readings("s1", 1))
    with pytest.raises(StoreUnavailable):
        dead.ping()
    dead.close()


def test_aggregates_follow_rewrites_late_data_and_several_sensors(store: ReadingStore) -> None:
    """Hourly and daily aggregates equal what the stored readings give, whatever the order."""
    day = timedelta(days=1)
    store.write(readings("s1", 12 * 30, step_s=300))  # 30 h of 5-minute readings
    store.write(readings("s2", 24, step_s=3600, flow=2.0))
    late = Reading(sensor_id="s1", time=T0 + timedelta(hours=1, minutes=2), flow_m3h=100.0)
    store.write([late])  # a late reading inside an hour already aggregated
    hourly = store.hourly_flow("s1", T0, T0 + 2 * day)
    assert len(hourly) == 30
    assert hourly[1].reading_count == 13
    assert hourly[1].mean_flow_m3h == pytest.approx((12 * 15.5 + 100.0) / 13)
    daily = store.daily_flow(["s1", "s2", "nobody"], T0, T0 + 2 * day)
    assert [d.hours_measured for d in daily["s1"]] == [24, 6]
    assert daily["s1"][0].volume_m3 == pytest.approx(sum(h.mean_flow_m3h for h in hourly[:24]))
    assert daily["s1"][0].min_hourly_flow_m3h == pytest.approx(15.5)
    assert daily["s1"][1].day_start == T0 + day
    assert [d.volume_m3 for d in daily["s2"]] == pytest.approx(
        [sum(2.0 + i % 12 for i in range(24))]
    )
    assert daily["nobody"] == []
    store.write(readings("s1", 12 * 30, step_s=300))  # the same batch again: nothing changes
    store.write([late])
    assert store.daily_flow(["s1"], T0, T0 + 2 * day)["s1"] == daily["s1"]


def test_aggregates_of_a_batch_spanning_months(store: ReadingStore) -> None:
    """A back-filled batch longer than one recompute window (31 days) is split, not lost."""
    batch = readings("s1", 24 * 70, step_s=3600)  # 70 days, hourly
    store.write(batch)
    daily = store.daily_flow(["s1"], T0, T0 + timedelta(days=80))["s1"]
    assert len(daily) == 70
    assert all(d.hours_measured == 24 for d in daily)
    assert sum(d.volume_m3 for d in daily) == pytest.approx(sum(r.flow_m3h for r in batch))


def test_a_late_reading_after_a_report_shows_in_the_next_report(store: ReadingStore) -> None:
    """A report, then a late reading for an hour it already summed: the next report has it."""
    store.write(readings("s1", 12 * 24, step_s=300))  # one day of 5-minute readings
    before = store.daily_flow(["s1"], T0, T0 + timedelta(days=1))["s1"]
    assert store.refresh_aggregates() >= 0  # the background work, done now
    late = Reading(sensor_id="s1", time=T0 + timedelta(hours=3, minutes=1), flow_m3h=500.0)
    store.write([late])
    after = store.daily_flow(["s1"], T0, T0 + timedelta(days=1))["s1"]
    hour_3 = store.hourly_flow("s1", T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    assert hour_3[0].reading_count == 13
    assert after[0].volume_m3 == pytest.approx(before[0].volume_m3 - 15.5 + hour_3[0].mean_flow_m3h)


def influx_rows(db: InfluxDatabase, query: str) -> list[list[object]]:
    """Rows of a raw InfluxQL query, bypassing the store (and its refresh on read)."""
    answer = httpx.get(f"{db.url}/query", params={"db": db.name, "q": query, "epoch": "u"})
    answer.raise_for_status()
    series = answer.json()["results"][0].get("series", [])
    return [row for s in series for row in s["values"]]


def hourly_rows(db: InfluxDatabase, sensor_id: str = "s1") -> list[list[object]]:
    """``[time_us, mean_flow_m3h, reading_count]`` of one sensor's aggregate hours."""
    return influx_rows(
        db,
        'SELECT "mean_flow_m3h", "reading_count" FROM "flow_hourly" '  # noqa: S608 - test ids
        f"WHERE sensor_id = '{sensor_id}' AND time >= '2026-01-01T00:00:00Z' "
        "AND time < '2026-02-01T00:00:00Z'",
    )


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.influx
def test_the_worker_refreshes_aggregates_off_the_write_path(influx_db: InfluxDatabase) -> None:
    """A write only marks its hours dirty; the background worker refreshes them within a
    round, without waiting ``settle_s`` (60 s) for the marks of its own confirmed writes."""
    store = InfluxReadingStore(influx_db.url, influx_db.name, refresh_interval_s=0.05)
    try:
        store.write(readings("s1", 24, step_s=300))  # 2 hours
        assert wait_for(lambda: len(hourly_rows(influx_db)) == 2)
        late = Reading(sensor_id="s1", time=T0 + timedelta(minutes=1), flow_m3h=1000.0)
        store.write([late])
        assert wait_for(lambda: sorted(int(str(r[2])) for r in hourly_rows(influx_db)) == [12, 13])
    finally:
        store.close()


_CRASHING_WRITER = """
import os, signal, sys
from datetime import UTC, datetime, timedelta
from leaksense.core.messages import Reading
from leaksense.server.stores.influx import InfluxReadingStore

store = InfluxReadingStore(sys.argv[1], sys.argv[2], refresh_interval_s=None)
t0 = datetime(2026, 1, 5, tzinfo=UTC)
store.write(
    [Reading(sensor_id="s1", time=t0 + timedelta(minutes=5 * i), flow_m3h=10.0 + i % 12)
     for i in range(36)]
)
os.kill(os.getpid(), signal.SIGKILL)  # acknowledged, aggregates not refreshed yet
"""


@pytest.mark.influx
def test_a_crash_between_write_and_refresh_keeps_the_dirty_marks(
    influx_db: InfluxDatabase,
) -> None:
    """Killed after InfluxDB confirmed the write, before any refresh: a restart refreshes."""
    writer = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, influx_db.url, influx_db.name],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr.decode()
    assert hourly_rows(influx_db) == []  # nothing refreshed before the crash
    restarted = InfluxReadingStore(  # another process's marks: refreshed once settled
        influx_db.url, influx_db.name, refresh_interval_s=0.05, settle_s=0.1
    )
    try:
        restarted.start_refresh_worker()  # what a restarted server does (runtime.py)
        assert wait_for(lambda: len(hourly_rows(influx_db)) == 3)
        s1 = sorted(hourly_rows(influx_db), key=str)
        assert [row[2] for row in s1] == [12, 12, 12]
        assert [row[1] for row in s1] == pytest.approx([15.5, 15.5, 15.5])
    finally:
        restarted.close()
