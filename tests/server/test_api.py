"""The HTTP API: ingest with authentication and clear errors, yield, health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.db import AlertRecord, Sensor
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import billing, entities
from leaksense.server.settings import load_settings

GOLDEN = Path(__file__).parent.parent / "golden"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class Api:
    http: httpx.Client
    runtime: Runtime
    gateway_token: str
    reader_token: str


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A real uvicorn server on SQLite, with one site, DMA, gateway and reader token."""
    settings = load_settings(data_dir=tmp_path)
    runtime = build_runtime(settings)
    network = entities.NetworkDescription.model_validate(
        {
            "sites": [{"site_id": "saint-savin", "name": "Saint-Savin"}],
            "dmas": [{"dma_id": "ss-dma", "site_id": "saint-savin", "name": "Réseau"}],
            "sensors": [
                {
                    "sensor_id": "in-1",
                    "site_id": "saint-savin",
                    "dma_id": "ss-dma",
                    "role": "inlet",
                },
                {
                    "sensor_id": "in-2",
                    "site_id": "saint-savin",
                    "dma_id": "ss-dma",
                    "role": "inlet",
                },
                {
                    "sensor_id": "out",
                    "site_id": "saint-savin",
                    "dma_id": "ss-dma",
                    "role": "outlet",
                },
            ],
        }
    )
    with runtime.sessions() as session:
        entities.load_network(session, network)
        gateway_token = entities.add_gateway(session, "gw-saint-savin", "saint-savin")
        reader_token = entities.add_reader_token(session, "tests")
    server = ServerThread(create_app(settings, runtime)).start()
    with httpx.Client(base_url=server.url) as http:
        yield Api(http, runtime, gateway_token, reader_token)
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch(readings: list[dict[str, Any]], seq: int = 0) -> dict[str, Any]:
    return {
        "gateway_id": "gw-saint-savin",
        "batch_seq": seq,
        "sent_at": T0.isoformat(),
        "readings": readings,
    }


def hourly(sensor_id: str, flow_m3h: float, hours: int) -> list[dict[str, Any]]:
    return [
        {
            "sensor_id": sensor_id,
            "time": (T0 + timedelta(hours=h)).isoformat(),
            "flow_m3h": flow_m3h,
        }
        for h in range(hours)
    ]


@pytest.mark.parametrize("golden", ["ingest_batch.json", "ingest_columns.json"])
def test_golden_batch_is_stored_once_even_when_resent(api: Api, golden: str) -> None:
    body = json.loads((GOLDEN / golden).read_text("utf-8"))
    for _ in range(2):
        response = api.http.post("/api/v1/ingest", json=body, headers=bearer(api.gateway_token))
        assert response.status_code == 200, response.text
        assert response.json()["readings_stored"] == 2
    stored = api.runtime.store.readings("ss-inlet", T0, T0 + timedelta(days=1))
    assert [r.flow_m3h for r in stored] == [21.4375]
    with api.runtime.sessions() as session:
        assert session.query(AlertRecord).count() == 1
        school = session.get(Sensor, "ss-school")
        assert school is not None and school.role == "unknown"
        assert school.site_id == "saint-savin"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer lks_not-a-real-token"}, "unknown or revoked"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing bearer token"),
    ],
)
def test_ingest_refuses_bad_tokens(api: Api, headers: dict[str, str], detail: str) -> None:
    response = api.http.post("/api/v1/ingest", json=batch([]), headers=headers)
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_reader_token_cannot_ingest_and_gateway_cannot_spoof(api: Api) -> None:
    response = api.http.post("/api/v1/ingest", json=batch([]), headers=bearer(api.reader_token))
    assert response.status_code == 401
    other = batch([]) | {"gateway_id": "gw-other"}
    response = api.http.post("/api/v1/ingest", json=other, headers=bearer(api.gateway_token))
    assert response.status_code == 401
    assert "belongs to gateway 'gw-saint-savin'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (batch([{"sensor_id": "in-1", "time": "2026-01-05T00:00:00", "flow_m3h": 1}]), "time"),
        (batch([{"sensor_id": "in-1", "time": "2026-01-05T00:00:00Z"}]), "flow_m3h"),
        (batch([]) | {"batch_seq": -1}, "batch_seq"),
        ({"readings": []}, "gateway_id"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(api: Api, body: dict[str, Any], where: str) -> None:
    response = api.http.post("/api/v1/ingest", json=body, headers=bearer(api.gateway_token))
    assert response.status_code == 422
    assert where in response.json()["detail"]
    assert response.json()["detail"].startswith("invalid request")


def test_body_that_is_not_json_gets_422(api: Api) -> None:
    response = api.http.post(
        "/api/v1/ingest",
        content=b"{not json",
        headers=bearer(api.gateway_token) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_yield_endpoint_from_ingested_flows_and_billing(api: Api) -> None:
    readings = hourly("in-1", 20.0, 48) + hourly("in-2", 15.0, 48) + hourly("out", 5.0, 48)
    response = api.http.post(
        "/api/v1/ingest", json=batch(readings), headers=bearer(api.gateway_token)
    )
    assert response.status_code == 200
    rows = billing.parse_billing_csv(
        "dma_id,period_start,period_end,volume_m3\n"
        "ss-dma,2026-01-05T00:00:00Z,2026-01-09T00:00:00Z,2000\n"
    )
    with api.runtime.sessions() as session:
        billing.import_billing(session, rows)
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(days=2)).isoformat()}
    response = api.http.get(
        "/api/v1/dmas/ss-dma/yield", params=params, headers=bearer(api.reader_token)
    )
    assert response.status_code == 200, response.text
    report = response.json()
    # inlet 2 × 24 h × (20 + 15) = 1680 m³, outlet 240 m³, billed 2000 × 2/4 = 1000 m³
    assert report["inlet_m3"] == pytest.approx(1680.0)
    assert report["outlet_m3"] == pytest.approx(240.0)
    assert report["billed_m3"] == pytest.approx(1000.0)
    assert report["billed_prorated_m3"] == pytest.approx(1000.0)
    assert report["yield_pct"] == pytest.approx((1000 + 240) / 1680 * 100)
    assert report["completeness_pct"] == pytest.approx(100.0)
    assert report["warnings"] == []


def test_yield_warns_about_missing_billing_and_data(api: Api) -> None:
    readings = hourly("in-1", 20.0, 20) + hourly("in-2", 15.0, 24)
    api.http.post("/api/v1/ingest", json=batch(readings), headers=bearer(api.gateway_token))
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}
    report = api.http.get(
        "/api/v1/dmas/ss-dma/yield", params=params, headers=bearer(api.reader_token)
    ).json()
    billing_warning, data_warning = report["warnings"]
    assert "cover only 0 %" in billing_warning
    assert "in-1 4 h" in data_warning
    assert "out 24 h" in data_warning
    # in-1's 4 missing hours are estimated at its measured mean (20 m³/h).
    assert report["inlet_m3"] == pytest.approx(24 * 35.0)


@pytest.mark.parametrize(
    ("dma", "start", "status", "detail"),
    [
        ("nope", "2026-01-05T00:00:00Z", 404, "does not exist"),
        ("ss-dma", "2026-01-05T00:00:00Z", 422, "no inlet readings"),
        ("ss-dma", "2026-01-05T00:30:00Z", 422, "whole UTC hour"),
        ("ss-dma", "2026-01-05T00:00:00", 422, "timezone"),
    ],
)
def test_yield_errors_are_clear(api: Api, dma: str, start: str, status: int, detail: str) -> None:
    params = {"start": start, "end": "2026-01-06T00:00:00Z"}
    response = api.http.get(
        f"/api/v1/dmas/{dma}/yield", params=params, headers=bearer(api.reader_token)
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_yield_needs_a_reader_token(api: Api) -> None:
    params = {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z"}
    response = api.http.get("/api/v1/dmas/ss-dma/yield", params=params)
    assert response.status_code == 401
    response = api.http.get(
        "/api/v1/dmas/ss-dma/yield", params=params, headers=bearer(api.gateway_token)
    )
    assert response.status_code == 401


def test_health_reports_the_store(api: Api) -> None:
    response = api.http.get("/api/v1/health")
    assert response.json() == {"status": "ok", "reading_store": "sqlite"}
