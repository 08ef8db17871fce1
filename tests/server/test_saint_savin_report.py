"""The Saint-Savin case through the real server API (water-loss-indicators.md §6).

The built-in scenario: 800 m³/day in, 600 billed, five leaks (150 m³/day) repaired on
days 7 to 11. Its readings go in through ``POST /api/v1/ingest`` (so the hourly and
daily aggregates are built as in production), its per-customer billing is imported
as a French billing export (semicolons, decimal commas, dd/mm/yyyy), the five repairs
are entered with ``POST /api/v1/repairs`` and an admin token, and the before/after
report must give 75 % → 92.3 % (± 0.3 point) with the period figure in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import billing, entities
from leaksense.server.settings import load_settings
from leaksense.simulator.generate import Simulation, simulate
from leaksense.simulator.scenario import builtin_scenario

START = datetime(2026, 1, 5, tzinfo=UTC)
DMA = "ss-dma"
GATEWAY = "gw-ss"


@dataclass
class SaintSavin:
    http: httpx.Client
    runtime: Runtime
    sim: Simulation
    reader: dict[str, str]
    admin: dict[str, str]


def french_billing_csv(sim: Simulation) -> str:
    """The per-customer bills as a French billing package exports them."""
    lines = ["N° abonné;Secteur;Début période;Fin période;Volume facturé (m³)"]
    for b in sim.customer_billing:
        volume = f"{b.volume_m3:.3f}".replace(".", ",")
        lines.append(
            f"{b.customer_id};{b.dma_id};{b.period_start:%d/%m/%Y};{b.period_end:%d/%m/%Y};{volume}"
        )
    return "\n".join(lines) + "\n"


def network(sim: Simulation) -> entities.NetworkDescription:
    truth = sim.truth.dma(DMA)
    return entities.NetworkDescription.model_validate(
        {
            "sites": [{"site_id": sim.scenario.site, "name": "Saint-Savin"}],
            "dmas": [
                {
                    "dma_id": DMA,
                    "site_id": sim.scenario.site,
                    "name": "Réseau de Saint-Savin",
                    "mains_km": truth.mains_km,
                    "service_connections": truth.service_connections,
                    "avg_pressure_m": truth.avg_pressure_m,
                    "households": 1700,
                    "inlets": [truth.inlet_sensor_id],
                }
            ],
        }
    )


def ingest(http: httpx.Client, token: str, sim: Simulation) -> None:
    rows = [
        {"sensor_id": r.sensor_id, "time": r.time.isoformat(), "flow_m3h": r.flow_m3h}
        for r in sim.readings
    ]
    for seq, i in enumerate(range(0, len(rows), 5_000)):
        body = {
            "gateway_id": GATEWAY,
            "batch_seq": seq,
            "sent_at": START.isoformat(),
            "readings": rows[i : i + 5_000],
        }
        response = http.post(
            "/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def saint_savin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaintSavin]:
    sim = simulate(builtin_scenario("saint-savin", START, 14), seed=1)
    settings = load_settings(data_dir=tmp_path_factory.mktemp("saint-savin"))
    runtime = build_runtime(settings)
    with runtime.sessions() as session:
        entities.load_network(session, network(sim))
        gateway = entities.add_gateway(session, GATEWAY, sim.scenario.site)
        reader = entities.add_token(session, "board", "reader")
        admin = entities.add_token(session, "ops", "admin")
        billing.import_billing(session, billing.parse_billing_csv(french_billing_csv(sim)))
    server = ServerThread(create_app(settings, runtime)).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ingest(http, gateway, sim)
        yield SaintSavin(
            http,
            runtime,
            sim,
            {"Authorization": f"Bearer {reader}"},
            {"Authorization": f"Bearer {admin}"},
        )
    server.stop()


def enter_repairs(ss: SaintSavin) -> list[dict[str, Any]]:
    repaired = [leak for leak in ss.sim.truth.leaks if leak.end is not None]
    assert len(repaired) == 5
    out = []
    for leak in repaired:
        assert leak.end is not None
        body = {
            "repair_id": leak.leak_id,
            "dma_id": leak.dma_id,
            "found_at": (leak.end - timedelta(hours=20)).isoformat(),
            "repaired_at": leak.end.isoformat(),
            "estimated_flow_m3h": round(leak.mean_flow_m3h, 3),
            "description": leak.description,
        }
        response = ss.http.post("/api/v1/repairs", json=body, headers=ss.admin)
        assert response.status_code == 201, response.text
        out.append(response.json())
    return out


PARAMS = {"dma": DMA, "start": "2026-01-05", "end": "2026-01-19"}


def test_before_after_gives_75_then_92_3_with_the_period_between(saint_savin: SaintSavin) -> None:
    ss = saint_savin
    refused = ss.http.post("/api/v1/repairs", json={}, headers=ss.reader)
    assert refused.status_code == 401  # a reader token cannot enter repairs
    enter_repairs(ss)
    response = ss.http.get("/api/v1/reports/repairs", params=PARAMS, headers=ss.reader)
    assert response.status_code == 200, response.text
    report = response.json()
    c = report["comparison"]
    assert c["before"]["yield_pct"] == pytest.approx(75.0, abs=0.3)
    assert c["after"]["yield_pct"] == pytest.approx(92.3, abs=0.3)
    assert c["before"]["yield_pct"] < c["period"]["yield_pct"] < c["after"]["yield_pct"]
    assert c["before"]["days"] == 7 and c["after"]["days"] == 2
    assert c["saved_m3_per_day"] == pytest.approx(150.0, rel=0.03)
    assert c["estimated_saved_m3_per_day"] == pytest.approx(150.0, rel=0.01)
    assert c["saved_eur_per_day"] == pytest.approx(c["saved_m3_per_day"] * 2.0)
    assert "90 %" in report["explanation"] and "jusqu'au jour" in report["explanation"]
    assert [r["source"] for r in report["repairs"]] == ["manual"] * 5
    assert report["metered_completeness_pct"] == pytest.approx(100.0)
    assert report["billing_coverage_pct"] == pytest.approx(100.0)


def test_before_after_in_english_html_csv_and_price(saint_savin: SaintSavin) -> None:
    ss = saint_savin
    enter_repairs(ss)
    params = PARAMS | {"lang": "en", "price": "0.5"}
    html = ss.http.get("/api/v1/reports/repairs.html", params=params, headers=ss.reader)
    assert html.status_code == 200
    assert "<svg" in html.text and 'class="marker"' in html.text
    assert "Why the daily and period figures differ" in html.text
    assert "Whole period" in html.text and "0.50 €/m³" in html.text
    report = ss.http.get("/api/v1/reports/repairs", params=params, headers=ss.reader).json()
    assert report["comparison"]["water_price_eur_per_m3"] == 0.5
    csv_text = ss.http.get("/api/v1/reports/repairs.csv", params=params, headers=ss.reader).text
    assert csv_text.splitlines()[0].startswith("day,intake_m3")
    assert "ss-leak-1" in csv_text


def test_efficiency_report_of_saint_savin(saint_savin: SaintSavin) -> None:
    ss = saint_savin
    params = {"dma": DMA, "start": "2026-01-05", "period": "week", "lang": "en"}
    response = ss.http.get("/api/v1/reports/efficiency", params=params, headers=ss.reader)
    assert response.status_code == 200, response.text
    (dma,) = response.json()["dmas"]
    values = {i["key"]: i["value"] for i in dma["indicators"]}
    assert values["rendement_pct"] == pytest.approx(75.0, abs=0.3)
    truth = ss.sim.truth.dma(DMA)
    # the first week: 200 m³/day lost on 32 km of mains
    assert values["ilp_m3_km_day"] == pytest.approx(200 / truth.mains_km, rel=0.03)
    assert dma["night_flow"]["days_analysed"] == 7
    assert dma["uarl"]["validity_issues"] == ["few_connections"]
    assert dma["grenelle"]["compliant"] is True
