"""Efficiency reports through the HTTP API: JSON, CSV, HTML in French and English.

Two DMAs in cascade: ``haut`` is fed by ``in-haut`` and passes water to ``bas``
through ``m-pont``, which is ``haut``'s outlet and ``bas``'s inlet (one meter, one
series). ``in-haut`` misses 3 hours on the second day; billing is per DMA.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from leaksense.core.cli import build_app
from leaksense.core.messages import Reading
from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.runtime import build_runtime
from leaksense.server.services import billing, entities
from leaksense.server.settings import load_settings

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 3
NETWORK = """
[[sites]]
site_id = "val"
name = "Val"

[[dmas]]
dma_id = "haut"
site_id = "val"
name = "Haut"
mains_km = 10.0
service_connections = 400
avg_pressure_m = 45.0
households = 350
inlets = ["in-haut"]
outlets = ["m-pont"]

[[dmas]]
dma_id = "bas"
site_id = "val"
name = "Bas"
mains_km = 5.0
category = "rural"

[[sensors]]          # the old way still works: role and dma_id on the sensor
sensor_id = "m-pont"
site_id = "val"
dma_id = "bas"
role = "inlet"

[[volumes]]
dma_id = "haut"
kind = "network_service"
period_start = 2026-03-01T00:00:00Z
period_end = 2026-03-11T00:00:00Z
volume_m3 = 20.0
"""


@dataclass
class Api:
    http: httpx.Client
    headers: dict[str, str]
    data_dir: Path


def hourly(sensor_id: str, flow_m3h: float, skip: range = range(0)) -> list[Reading]:
    return [
        Reading(sensor_id=sensor_id, time=T0 + timedelta(hours=h), flow_m3h=flow_m3h + (h % 24 < 4))
        for h in range(24 * DAYS)
        if h not in skip
    ]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("reports")
    settings = load_settings(data_dir=tmp)
    runtime = build_runtime(settings)
    (tmp / "network.toml").write_text(NETWORK)
    with runtime.sessions() as session:
        entities.load_network(session, entities.read_network_file(tmp / "network.toml"))
        token = entities.add_token(session, "board", "reader")
        billing.import_billing(
            session,
            billing.parse_billing_csv(
                "dma_id,period_start,period_end,volume_m3\n"
                "haut,2026-02-25,2026-03-04,1400\n"  # 7 days, 2 inside the report: prorated
                "haut,2026-03-04,2026-03-11,1400\n"
                "bas,2026-03-01,2026-03-11,1000\n"
            ),
        )
    runtime.store.write(hourly("in-haut", 30.0, skip=range(30, 33)) + hourly("m-pont", 6.0))
    server = ServerThread(create_app(settings, runtime)).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield Api(http, {"Authorization": f"Bearer {token}"}, tmp)
    server.stop()


def get(api: Api, path: str, **params: Any) -> httpx.Response:
    query = {"start": T0.date().isoformat(), "end": (T0 + timedelta(days=DAYS)).date().isoformat()}
    return api.http.get(f"/api/v1/reports/{path}", params=query | params, headers=api.headers)


def test_json_per_dma_and_network_with_completeness(api: Api) -> None:
    response = get(api, "efficiency", lang="en")
    assert response.status_code == 200, response.text
    report = response.json()
    haut, bas = sorted(report["dmas"], key=lambda d: d["scope_id"] != "haut")
    volumes = {v["key"]: v for v in haut["volumes"]}
    inlet_m3 = 3 * (24 * 30 + 4)  # 4 hours a day at 31 m³/h; the 3 missing hours estimated
    assert volumes["vimp_m3"]["value_m3"] == pytest.approx(inlet_m3, rel=0.005)
    assert volumes["vimp_m3"]["completeness_pct"] == pytest.approx(100 * (144 - 3) / 144)
    assert volumes["vimp_m3"]["estimated_m3"] > 0
    assert volumes["vexp_m3"]["value_m3"] == pytest.approx(3 * (24 * 6 + 4))
    assert volumes["vc_m3"]["value_m3"] == pytest.approx(2 * 200 + 1400 / 7)  # 2 + 1 days of bills
    assert volumes["vs_m3"]["value_m3"] == pytest.approx(6.0)  # 20 m³ over 10 days, 3 in
    indicators = {i["key"]: i for i in haut["indicators"]}
    assert indicators["ilp_m3_km_day"]["value"] is not None
    assert indicators["rendement_pct"]["name"] == "Distribution network yield"
    meters = {m["sensor_id"]: m for m in haut["meters"]}
    assert [e["hours_estimated"] for e in meters["in-haut"]["estimated_days"]] == [3]
    codes = [n["code"] for n in haut["notes"]]
    assert "metered_incomplete" in codes and "billing_prorated" in codes
    assert "uarl_validity" in codes  # 400 connections: outside the UARL formula's range
    assert bas["category"] == "rural" and bas["category_source"] == "declared"
    assert bas["uarl"] is None and any(n["code"] == "no_uarl" for n in bas["notes"])
    network = report["network"]
    net = {v["key"]: v["value_m3"] for v in network["volumes"]}
    assert net["vexp_m3"] == 0.0  # m-pont stays inside the network
    assert net["vimp_m3"] == pytest.approx(volumes["vimp_m3"]["value_m3"])
    assert any("m-pont" in n["text"] for n in network["notes"])


def test_french_json_words_notes_in_french(api: Api) -> None:
    report = get(api, "efficiency", dma="haut", lang="fr").json()
    (haut,) = report["dmas"]
    assert report["network"] is None
    texts = " ".join(n["text"] for n in haut["notes"])
    assert "proratisées" in texts and "heures-compteur estimées" in texts
    names = {i["key"]: i["name"] for i in haut["indicators"]}
    assert names["ilp_m3_km_day"] == "Indice linéaire de pertes en réseau (ILP)"


def test_csv_in_both_languages(api: Api) -> None:
    en = get(api, "efficiency.csv", dma="haut", lang="en")
    assert en.headers["content-type"].startswith("text/csv")
    lines = en.text.splitlines()
    assert lines[0] == "scope,section,key,name,value,unit,source,completeness_pct,estimated_m3"
    assert any(line.startswith("haut,indicator,rendement_pct,") for line in lines)
    fr = get(api, "efficiency.csv", dma="haut", lang="fr").text.splitlines()
    assert fr[0].startswith("scope;section;key")
    row = next(line for line in fr if line.startswith("haut;volume;vimp_m3;"))
    assert "," in row.split(";")[4]  # decimal comma


@pytest.mark.parametrize(
    ("lang", "title"), [("fr", "Rapport d&#39;efficacité"), ("en", "efficiency")]
)
def test_html_has_the_chart_and_the_completeness(api: Api, lang: str, title: str) -> None:
    html = get(api, "efficiency.html", lang=lang).text
    assert title in html
    assert html.count("<svg") >= 3  # daily volumes per scope, and MNF for haut
    assert 'class="completeness"' in html
    assert "97.9 %" in html or "97,9 %" in html  # 141 of 144 meter-hours for haut


def test_pdf(api: Api) -> None:
    pdf = get(api, "efficiency.pdf", dma="bas", lang="en")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"dma": "nowhere"}, 404, "does not exist"),
        ({"lang": "de"}, 422, "lang must be"),
        ({"end": "2026-03-01"}, 422, "whole days"),
        ({"start": "2026-03-02T10:00:00Z"}, 422, "midnight"),
        ({"end": "2027-06-01"}, 422, "at most 400 days"),
    ],
)
def test_errors_are_clear(api: Api, params: dict[str, str], status: int, detail: str) -> None:
    response = get(api, "efficiency", **params)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_reports_need_a_reader_token(api: Api) -> None:
    response = api.http.get("/api/v1/reports/efficiency", params={"start": "2026-03-02"})
    assert response.status_code == 401


def test_period_kinds(api: Api) -> None:
    report = api.http.get(
        "/api/v1/reports/efficiency",
        params={"start": "2026-03-02", "period": "day", "dma": "bas"},
        headers=api.headers,
    ).json()
    assert report["days"] == 1 and report["period_kind"] == "day"


def test_cli_writes_the_report_files(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(api.data_dir))
    out = api.data_dir / "rapport.html"
    args = ["report", "efficiency", "haut", "bas", "--start", "2026-03-02", "--end", "2026-03-05"]
    result = CliRunner().invoke(build_app(), [*args, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text("utf-8")
    result = CliRunner().invoke(build_app(), [*args, "--format", "csv", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "haut,indicator,rendement_pct" in result.output
