"""Ingest's fast path on InfluxDB: pipelined parts, relaxed batch-log commits.

The batch log of a batch without alerts is committed without waiting for the disk
(``services/ingest.py``): a crash of the machine may lose its row. These tests
check that losing it costs only a rewrite (nothing stored twice), that batches
with alerts still commit durably, that the pooled SQLite connection goes back to
``synchronous=FULL``, and that a write sent in parts stores every point with its
dirty marks, or fails as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text

from leaksense.core.errors import StoreUnavailable
from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.db import IngestedBatch
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.services.ingest import relax_commit
from leaksense.server.settings import load_settings
from leaksense.server.stores.influx import InfluxReadingStore
from services import InfluxDatabase, free_port

T0 = datetime(2026, 2, 2, tzinfo=UTC)
GATEWAY = "gw-pipe"
SENSORS = [f"p-{i:02d}" for i in range(20)]


def batch(seq: int, count: int, *, offset_min: int = 0) -> dict[str, Any]:
    return {
        "gateway_id": GATEWAY,
        "batch_seq": seq,
        "sent_at": datetime.now(UTC).isoformat(),
        "readings": [
            {
                "sensor_id": SENSORS[i % len(SENSORS)],
                "time": (T0 + timedelta(minutes=offset_min + i // len(SENSORS))).isoformat(),
                "flow_m3h": 1.0 + i % 13,
            }
            for i in range(count)
        ],
    }


def count_points(influx: InfluxDatabase, measurement: str = "flow") -> int:
    response = httpx.get(
        f"{influx.url}/query",
        params={"db": influx.name, "q": f'SELECT count(*) FROM "{measurement}"'},  # noqa: S608
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture
def server(tmp_path: Path, influx_db: InfluxDatabase) -> Iterator[tuple[httpx.Client, Runtime]]:
    runtime = build_runtime(
        load_settings(
            data_dir=tmp_path,
            reading_store="influxdb",
            influx_url=influx_db.url,
            influx_database=influx_db.name,
        )
    )
    network = entities.NetworkDescription.model_validate(
        {"sites": [{"site_id": "pipe", "name": "Pipe"}]}
    )
    with runtime.sessions() as session:
        entities.load_network(session, network)
        token = entities.add_gateway(session, GATEWAY, "pipe")
    thread = ServerThread(create_app(runtime.settings, runtime)).start()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=thread.url, headers=headers, timeout=30.0) as http:
            yield http, runtime
    finally:
        thread.stop()


@pytest.mark.influx
def test_a_replay_after_a_lost_batch_log_row_stores_nothing_twice(
    server: tuple[httpx.Client, Runtime], influx_db: InfluxDatabase
) -> None:
    http, runtime = server
    body = batch(7, 5_000)
    first = http.post("/api/v1/ingest", json=body)
    assert first.status_code == 200, first.text
    assert count_points(influx_db) == 5_000
    with runtime.sessions() as session:  # the machine crashed before the row hit the disk
        session.execute(delete(IngestedBatch))
        session.commit()
    again = http.post("/api/v1/ingest", json=body | {"sent_at": datetime.now(UTC).isoformat()})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert count_points(influx_db) == 5_000


@pytest.mark.influx
def test_the_pooled_connection_is_back_to_full_synchronous_after_ingest(
    server: tuple[httpx.Client, Runtime],
) -> None:
    http, runtime = server
    for seq in range(3):
        response = http.post("/api/v1/ingest", json=batch(seq, 100, offset_min=seq * 10))
        assert response.status_code == 200, response.text
    with runtime.sessions() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_relax_commit_leaves_a_session_that_already_wrote_durable(tmp_path: Path) -> None:
    runtime = build_runtime(load_settings(data_dir=tmp_path))
    try:
        with runtime.sessions() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
            relax_commit(session)  # inside a transaction SQLite cannot change it
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2
            session.commit()
        with runtime.sessions() as session:
            relax_commit(session)
            assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            session.execute(text("INSERT INTO t VALUES (2)"))
            session.commit()
        with runtime.sessions() as session:
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        runtime.close()


def marked_sensors(influx: InfluxDatabase) -> list[str]:
    """Every sensor named by a dirty mark, once per naming."""
    response = httpx.get(
        f"{influx.url}/query",
        params={"db": influx.name, "q": 'SELECT "s" FROM "flow_dirty"'},
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return [name for s in series for (_, listed) in s["values"] for name in listed.split(",")]


@pytest.mark.influx
def test_a_write_in_parts_stores_every_point_and_marks_each_sensor_once(
    influx_db: InfluxDatabase,
) -> None:
    store = InfluxReadingStore(
        influx_db.url, influx_db.name, refresh_interval_s=None, write_part_points=333
    )
    try:
        store.ensure_database()
        points = [
            (
                SENSORS[i % len(SENSORS)],
                int((T0 + timedelta(minutes=i)).timestamp() * 1e6),
                2.5,
                None,
            )
            for i in range(5_000)
        ]
        assert store.write_points(points) == 5_000
        assert count_points(influx_db) == 5_000
        assert count_points(influx_db, "flow_dirty") < len(SENSORS)  # one per span
        assert sorted(marked_sensors(influx_db)) == sorted(SENSORS)
        hours = store.hourly_flow(SENSORS[0], T0, T0 + timedelta(days=4))
        assert sum(h.reading_count for h in hours) == 250
    finally:
        store.close()


def test_a_write_in_parts_to_an_unreachable_influxdb_fails_as_a_whole() -> None:
    store = InfluxReadingStore(
        f"http://127.0.0.1:{free_port()}",
        "none",
        refresh_interval_s=None,
        timeout_s=2.0,
        write_part_points=10,
    )
    try:
        points = [("p-00", i * 60_000_000, 1.0, None) for i in range(50)]
        with pytest.raises(StoreUnavailable, match="unreachable"):
            store.write_points(points)
    finally:
        store.close()


@pytest.mark.influx
def test_marks_of_the_older_format_one_point_per_sensor_are_still_refreshed(
    influx_db: InfluxDatabase,
) -> None:
    """A server upgraded with marks of the previous format pending refreshes them."""
    store = InfluxReadingStore(influx_db.url, influx_db.name, refresh_interval_s=None)
    try:
        store.ensure_database()
        hour_us = int(T0.timestamp() * 1e6)
        now_us = int(datetime.now(UTC).timestamp() * 1e6)
        lines = [
            f"flow,sensor_id={SENSORS[0]} flow_m3h=2.0 {hour_us + i * 60_000_000}" for i in range(6)
        ]
        lines.append(
            f"flow_dirty,sensor_id={SENSORS[0]} "
            f"h0={hour_us}i,h1={hour_us + 3_600_000_000}i,w=1i {now_us}"
        )
        response = httpx.post(
            f"{influx_db.url}/write",
            params={"db": influx_db.name, "precision": "u"},
            content="\n".join(lines).encode(),
        )
        assert response.status_code == 204
        assert store.refresh_aggregates() == 1
        hours = store.hourly_flow(SENSORS[0], T0, T0 + timedelta(hours=1))
        assert [h.reading_count for h in hours] == [6]
    finally:
        store.close()
