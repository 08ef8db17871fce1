"""Ingest under trouble, on a real uvicorn server: replays, stores down, limits, health.

Each test starts its own server (``ServerThread``) with the settings it is about;
the InfluxDB ones write to the session's real influxd, which one test stops and
starts again (on the same port, with its data) to check that nothing is confirmed
while it is away and that the very same batch is stored once it is back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.db import AlertRecord, IngestedBatch
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from services import InfluxDatabase, InfluxServer

GOLDEN = Path(__file__).parent.parent / "golden"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
GATEWAY = "gw-saint-savin"
OTHER = "gw-other"


@dataclass
class Server:
    """A running server: HTTP client, its runtime, and tokens for two gateways and a reader."""

    http: httpx.Client
    runtime: Runtime
    tokens: dict[str, str]

    def post(self, path: str, body: Any, gateway: str = GATEWAY, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, headers=bearer(self.tokens[gateway]), **kw)

    def ingest(self, body: dict[str, Any], gateway: str = GATEWAY) -> httpx.Response:
        return self.post("/api/v1/ingest", body, gateway)

    def metrics(self, headers: dict[str, str] | None = None) -> dict[str, float]:
        """Every sample of ``/metrics`` as ``{'name{label="v",...}': value}``."""
        response = self.http.get("/metrics", headers=headers or {})
        assert response.status_code == 200, response.text
        return {
            _key(s.name, s.labels): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def batches_logged(self) -> int:
        with self.runtime.sessions() as session:
            return session.scalar(select(func.count()).select_from(IngestedBatch)) or 0


def _key(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serve(data_dir: Path, **settings: Any) -> Iterator[Server]:
    """A real server with one site, two gateways and a reader token."""
    runtime = build_runtime(load_settings(data_dir=data_dir, **settings))
    network = entities.NetworkDescription.model_validate(
        {"sites": [{"site_id": "saint-savin", "name": "Saint-Savin"}]}
    )
    with runtime.sessions() as session:
        entities.load_network(session, network)
        tokens = {gw: entities.add_gateway(session, gw, "saint-savin") for gw in (GATEWAY, OTHER)}
        tokens["reader"] = entities.add_reader_token(session, "tests")
    thread = ServerThread(create_app(runtime.settings, runtime)).start()
    try:
        with httpx.Client(base_url=thread.url, timeout=30.0) as http:
            yield Server(http, runtime, tokens)
    finally:
        thread.stop()


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Server]:
    with serve(tmp_path) as server:
        yield server


@pytest.fixture
def on_influx(tmp_path: Path, influx_db: InfluxDatabase) -> Iterator[Server]:
    with serve(
        tmp_path, reading_store="influxdb", influx_url=influx_db.url, influx_database=influx_db.name
    ) as server:
        yield server


def batch(seq: int, count: int, gateway: str = GATEWAY, sensor: str = "ss-inlet") -> dict[str, Any]:
    return {
        "gateway_id": gateway,
        "batch_seq": seq,
        "sent_at": datetime.now(UTC).isoformat(),
        "readings": [
            {
                "sensor_id": sensor,
                "time": (T0 + timedelta(minutes=i)).isoformat(),
                "flow_m3h": 10.0 + i % 7,
            }
            for i in range(count)
        ],
    }


def stored_count(server: Server, sensor: str = "ss-inlet") -> int:
    return len(server.runtime.store.readings(sensor, T0, T0 + timedelta(days=30)))


# --- Idempotency ---------------------------------------------------------------------


@pytest.mark.influx
def test_a_replayed_batch_is_answered_the_same_and_written_once(on_influx: Server) -> None:
    golden = json.loads((GOLDEN / "ingest_batch.json").read_text("utf-8"))
    first = on_influx.ingest(golden)
    assert first.status_code == 200, first.text
    # The gateway lost the answer and sends the batch again, with a new sent_at.
    again = on_influx.ingest(golden | {"sent_at": "2026-01-05T03:20:00Z"})
    assert again.status_code == 200
    assert (
        again.json()
        == first.json()
        == {
            "gateway_id": GATEWAY,
            "batch_seq": 42,
            "readings_stored": 2,
            "alerts_stored": 1,
        }
    )
    assert stored_count(on_influx) == 1
    with on_influx.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AlertRecord)) == 1
    metrics = on_influx.metrics()
    assert metrics[f'leaksense_server_ingest_replays_total{{gateway_id="{GATEWAY}"}}'] == 1
    assert metrics[f'leaksense_server_ingest_requests_total{{gateway_id="{GATEWAY}"}}'] == 2
    assert metrics[f'leaksense_server_ingest_readings_total{{gateway_id="{GATEWAY}"}}'] == 2
    assert metrics['leaksense_server_store_write_seconds_count{store="influxdb"}'] == 1


def test_a_reused_batch_seq_with_other_content_is_stored(on_sqlite: Server) -> None:
    """A gateway whose outbox was wiped counts from 0 again: not a replay."""
    assert on_sqlite.ingest(batch(0, 3)).json()["readings_stored"] == 3
    other = batch(0, 2, sensor="ss-school")
    assert on_sqlite.ingest(other).json()["readings_stored"] == 2
    assert stored_count(on_sqlite, "ss-school") == 2
    assert on_sqlite.batches_logged() == 1


# --- Stores down -----------------------------------------------------------------------


@pytest.mark.influx
def test_influxdb_down_gets_503_then_the_same_batch_is_stored_once(
    on_influx: Server, influxd: InfluxServer
) -> None:
    body = batch(7, 50)
    influxd.stop()
    try:
        down = on_influx.ingest(body)
        assert down.status_code == 503
        assert int(down.headers["Retry-After"]) >= 1
        assert "InfluxDB" in down.json()["detail"]
        assert on_influx.batches_logged() == 0
    finally:
        influxd.start()
    for _ in range(2):
        back = on_influx.ingest(body)
        assert back.status_code == 200, back.text
        assert back.json()["readings_stored"] == 50
    assert stored_count(on_influx) == 50
    metrics = on_influx.metrics()
    assert metrics['leaksense_server_rejected_requests_total{status="503"}'] == 1
    assert metrics[f'leaksense_server_ingest_replays_total{{gateway_id="{GATEWAY}"}}'] == 1


def test_entity_database_down_gets_503_then_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "entities"
    folder.mkdir()
    with serve(tmp_path, database_url=f"sqlite:///{folder / 'leaksense.db'}") as server:
        server.runtime.engine.dispose()
        shutil.move(folder, tmp_path / "away")
        try:
            down = server.ingest(batch(1, 5))
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "5"
            assert "entity database is unavailable" in down.json()["detail"]
        finally:
            shutil.move(tmp_path / "away", folder)
        assert server.ingest(batch(1, 5)).status_code == 200


# --- Limits ----------------------------------------------------------------------------


def test_an_oversized_body_gets_413_before_it_is_parsed(tmp_path: Path) -> None:
    with serve(tmp_path, max_body_bytes=20_000) as server:
        body = json.dumps(batch(1, 400)).encode()
        assert len(body) > 20_000
        headers = bearer(server.tokens[GATEWAY]) | {"Content-Type": "application/json"}
        declared = server.http.post("/api/v1/ingest", content=body, headers=headers)
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        streamed = server.http.post("/api/v1/ingest", content=chunks, headers=headers)
        health = server.http.post(  # a route whose body FastAPI parses itself
            "/api/v1/gateways/health", content=iter([body]), headers=headers
        )
        for response in (declared, streamed, health):
            assert response.status_code == 413
            assert "exceeds the limit of 20,000 bytes" in response.json()["detail"]
        assert f"of {len(body):,} bytes" in declared.json()["detail"]
        assert stored_count(server) == 0
        assert server.ingest(batch(1, 10)).status_code == 200
        assert server.metrics()['leaksense_server_rejected_requests_total{status="413"}'] == 3


def test_a_gateway_over_its_request_rate_gets_429_and_others_do_not(tmp_path: Path) -> None:
    with serve(tmp_path, rate_limit_requests_per_s=0.5, rate_limit_requests_burst=3) as server:
        for seq in range(3):
            assert server.ingest(batch(seq, 1)).status_code == 200
        refused = server.ingest(batch(3, 1))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        detail = refused.json()["detail"]
        assert f"gateway '{GATEWAY}' is over its rate of 0.5 requests/s" in detail
        assert "nothing was stored" in detail
        assert server.ingest(batch(0, 1, gateway=OTHER), gateway=OTHER).status_code == 200
        assert server.metrics()['leaksense_server_rejected_requests_total{status="429"}'] == 1


def test_a_gateway_over_its_reading_rate_gets_429(tmp_path: Path) -> None:
    with serve(tmp_path, rate_limit_readings_per_s=100, rate_limit_readings_burst=10_000) as server:
        assert server.ingest(batch(0, 6_000)).status_code == 200
        refused = server.ingest(batch(1, 6_000))
        assert refused.status_code == 429
        assert 18 <= int(refused.headers["Retry-After"]) <= 20  # 2 000 readings short at 100/s
        assert "100 readings/s" in refused.json()["detail"]
        assert server.batches_logged() == 1


# --- Health and metrics ----------------------------------------------------------------


def test_health_reports_round_trip_and_show_on_metrics(on_sqlite: Server) -> None:
    report = json.loads((GOLDEN / "gateway_health.json").read_text("utf-8"))
    response = on_sqlite.post("/api/v1/gateways/health", report)
    assert response.status_code == 204, response.text
    spoofed = on_sqlite.post("/api/v1/gateways/health", report, gateway=OTHER)
    assert spoofed.status_code == 401
    assert on_sqlite.http.get("/api/v1/gateways").status_code == 401
    listed = on_sqlite.http.get("/api/v1/gateways", headers=bearer(on_sqlite.tokens["reader"]))
    assert listed.status_code == 200
    by_id = {g["gateway_id"]: g for g in listed.json()}
    assert set(by_id) == {GATEWAY, OTHER}
    mine = by_id[GATEWAY]
    assert mine["last_seen_at"] is not None
    assert mine["health"]["outbox_readings"] == 1200
    assert mine["health"]["model_versions"] == report["model_versions"]
    assert by_id[OTHER]["health"] is None
    metrics = on_sqlite.metrics()
    labels = f'{{gateway_id="{GATEWAY}"}}'
    assert metrics[f"leaksense_gateway_outbox_readings{labels}"] == 1200
    assert metrics[f"leaksense_gateway_messages_rejected_total{labels}"] == 3
    oldest = datetime(2026, 1, 5, 2, 10, tzinfo=UTC).timestamp()
    assert metrics[f"leaksense_gateway_oldest_unsent_timestamp_seconds{labels}"] == oldest
    assert metrics[f'leaksense_gateway_info{{gateway_id="{GATEWAY}",software_version="0.1.0"}}']
    assert metrics['leaksense_server_rejected_requests_total{status="401"}'] == 2


def test_metrics_can_require_a_reader_token(tmp_path: Path) -> None:
    with serve(tmp_path, metrics_require_token=True) as server:
        assert server.http.get("/metrics").status_code == 401
        assert (
            server.http.get("/metrics", headers=bearer(server.tokens[GATEWAY])).status_code == 401
        )
        metrics = server.metrics(headers=bearer(server.tokens["reader"]))
        assert metrics['leaksense_server_rejected_requests_total{status="401"}'] == 2


# --- Aggregates refreshed off the acknowledgement path ---------------------------------


def test_a_late_reading_ingested_after_a_report_shows_in_the_next_one(
    on_influx: Server,
) -> None:
    """Ingest only marks the touched hours dirty; a report refreshes them before it reads."""
    network = entities.NetworkDescription.model_validate(
        {
            "sites": [{"site_id": "saint-savin", "name": "Saint-Savin"}],
            "dmas": [
                {"dma_id": "bourg", "site_id": "saint-savin", "name": "Bourg"},
            ],
            "sensors": [
                {
                    "sensor_id": "ss-inlet",
                    "site_id": "saint-savin",
                    "dma_id": "bourg",
                    "role": "inlet",
                }
            ],
        }
    )
    with on_influx.runtime.sessions() as session:
        entities.load_network(session, network)
    assert on_influx.ingest(batch(1, 24 * 60)).status_code == 200  # a day of 1-minute data
    first = system_input_m3(on_influx)
    assert first == pytest.approx(sum(10.0 + i % 7 for i in range(24 * 60)) / 60, rel=1e-6)
    late = batch(2, 0) | {
        "readings": [{"sensor_id": "ss-inlet", "time": "2026-01-05T05:00:30Z", "flow_m3h": 610.0}]
    }  # hour 5 had 60 readings: now 61, with a higher mean
    assert on_influx.ingest(late).status_code == 200
    hour_5 = [10.0 + i % 7 for i in range(5 * 60, 6 * 60)]
    mean_before, mean_after = sum(hour_5) / 60, (sum(hour_5) + 610.0) / 61
    assert system_input_m3(on_influx) == pytest.approx(first - mean_before + mean_after)


def system_input_m3(server: Server) -> float:
    """The system input volume of the day's report for DMA ``bourg`` (JSON)."""
    response = server.http.get(
        "/api/v1/reports/efficiency",
        params={"start": "2026-01-05", "period": "day", "dma": "bourg"},
        headers=bearer(server.tokens["reader"]),
    )
    assert response.status_code == 200, response.text
    found = _values(response.json()["dmas"][0], "system_input_m3")
    assert found, response.text
    return float(found[0])


def _values(data: Any, key: str) -> list[Any]:
    if isinstance(data, dict):
        own = [data[key]] if key in data else []
        return own + [v for item in data.values() for v in _values(item, key)]
    if isinstance(data, list):
        return [v for item in data for v in _values(item, key)]
    return []
