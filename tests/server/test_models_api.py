"""Training from stored readings and ``GET /api/v1/models`` on a real uvicorn server.

Two sites share one server: Saint-Savin (a DMA with an inlet and an outlet, a
customer meter, and a meter installed two days ago) and Other (one meter). The
``leaksense models train`` command reads 20 days of readings from the SQLite store,
trains, signs and stores; each gateway then gets only its own site's artifacts,
and every one of them verifies against the public key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from leaksense.core.cli import build_app
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.detection.artifact import ModelArtifact, load_public_key, parse_signed
from leaksense.models import history as history_module
from leaksense.models.signing import generate_keypair
from leaksense.server.app import create_app
from leaksense.server.db import ModelArtifactRecord
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.services.models import KEEP_PER_SERIES, latest_artifacts, store_artifact
from leaksense.server.settings import load_settings
from model_history import history, readings

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = NOW - timedelta(days=20)
NETWORK = {
    "sites": [
        {"site_id": "saint-savin", "name": "Saint-Savin"},
        {"site_id": "other", "name": "Other"},
    ],
    "dmas": [{"dma_id": "ss-dma", "site_id": "saint-savin", "name": "Réseau"}],
    "sensors": [
        {"sensor_id": "ss-in", "site_id": "saint-savin", "dma_id": "ss-dma", "role": "inlet"},
        {"sensor_id": "ss-out", "site_id": "saint-savin", "dma_id": "ss-dma", "role": "outlet"},
        {"sensor_id": "ss-school", "site_id": "saint-savin", "role": "customer"},
        {"sensor_id": "ss-new", "site_id": "saint-savin", "role": "customer"},
        {"sensor_id": "ot-in", "site_id": "other", "role": "inlet"},
    ],
}
HISTORY_M3H = {"ss-in": 20.0, "ss-out": 6.0, "ss-school": 0.4, "ot-in": 12.0}


@dataclass
class TrainedServer:
    http: httpx.Client
    runtime: Runtime
    public_key: str
    tokens: dict[str, str]
    train_output: str


def store_history(runtime: Runtime) -> None:
    for seed, (sensor_id, base_m3h) in enumerate(HISTORY_M3H.items()):
        epoch_s, flow = history(20, base_m3h=base_m3h, seed=seed, start=START)
        runtime.store.write(readings(sensor_id, epoch_s, flow))
    epoch_s, flow = history(2, base_m3h=0.3, start=NOW - timedelta(days=2))
    runtime.store.write(readings("ss-new", epoch_s, flow))


def train(*args: str) -> str:
    result = CliRunner().invoke(build_app(), ["models", "train", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedServer]:
    """A real server whose store holds 20 days of readings, trained once by the CLI."""
    tmp_path = tmp_path_factory.mktemp("models-api")
    public_key = generate_keypair(tmp_path / "signing.pem")
    env = {
        "LEAKSENSE_SERVER_DATA_DIR": str(tmp_path / "data"),
        "LEAKSENSE_SERVER_MODEL_SIGNING_KEY_FILE": str(tmp_path / "signing.pem"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        runtime = build_runtime(load_settings())
        with runtime.sessions() as session:
            entities.load_network(session, entities.NetworkDescription.model_validate(NETWORK))
            tokens = {
                "saint-savin": entities.add_gateway(session, "gw-ss", "saint-savin"),
                "other": entities.add_gateway(session, "gw-other", "other"),
                "reader": entities.add_reader_token(session, "tests"),
            }
        store_history(runtime)
        output = train("--days", "30")
        server = ServerThread(create_app(runtime=runtime)).start()
        with httpx.Client(base_url=server.url) as http:
            yield TrainedServer(http, runtime, public_key, tokens, output)
        server.stop()


def fetch(server: TrainedServer, site: str, since: str | None = None) -> httpx.Response:
    params = {"since": since} if since else {}
    headers = {"Authorization": f"Bearer {server.tokens[site]}"}
    return server.http.get("/api/v1/models", params=params, headers=headers)


def verified(server: TrainedServer, response: httpx.Response) -> dict[str, ModelArtifact]:
    assert response.status_code == 200, response.text
    key = load_public_key(server.public_key)
    items = response.json()["artifacts"]
    artifacts = [parse_signed(json.dumps(item), key) for item in items]
    return {a.series_id: a for a in artifacts}


def test_train_reports_each_series_and_skips_short_histories(server: TrainedServer) -> None:
    lines = server.train_output.splitlines()
    assert lines[0].split() == ["series", "kind", "days", "trainer", "bytes"]
    for series_id in ("ss-in", "ss-out", "ss-school", "ot-in", "ss-dma"):
        row = next(line for line in lines if line.startswith(series_id + " "))
        _, kind, days, trainer, size = row.split()
        assert kind == ("dma" if series_id == "ss-dma" else "sensor")
        assert 19.5 < float(days) <= 20.0
        assert trainer == "sklearn-huber-fourier"
        assert 2_000 < int(size) <= 16_384
    assert "skipped sensor ss-new: only 2.0 days of history (need 7)" in lines
    assert lines[-1] == "5 artifact(s) stored, 1 skipped"


def test_a_gateway_gets_its_own_sites_signed_artifacts(server: TrainedServer) -> None:
    saint_savin = verified(server, fetch(server, "saint-savin"))
    assert sorted(saint_savin) == ["ss-dma", "ss-in", "ss-out", "ss-school"]
    assert saint_savin["ss-dma"].kind == "dma"
    assert saint_savin["ss-dma"].interval_s == 300
    # the DMA learned the net inflow: inlet minus outlet
    net = saint_savin["ss-in"].mean_flow_m3h - saint_savin["ss-out"].mean_flow_m3h
    assert saint_savin["ss-dma"].mean_flow_m3h == pytest.approx(net, rel=0.02)
    assert np.mean(saint_savin["ss-dma"].profile_m3h) == pytest.approx(net, rel=0.05)
    other = verified(server, fetch(server, "other"))
    assert sorted(other) == ["ot-in"]


def test_since_returns_only_artifacts_stored_after_it(server: TrainedServer) -> None:
    first = fetch(server, "saint-savin").json()
    assert first["as_of"] is not None
    again = fetch(server, "saint-savin", since=first["as_of"]).json()
    assert again == {"artifacts": [], "as_of": first["as_of"]}
    train("--days", "30", "--series", "ss-in")
    newer = verified(server, fetch(server, "saint-savin", since=first["as_of"]))
    assert sorted(newer) == ["ss-in"]
    assert newer["ss-in"].created_at > verified(server, fetch(server, "other"))["ot-in"].created_at
    assert len(verified(server, fetch(server, "saint-savin"))) == 4  # latest per series only


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer lks_not-a-real-token"}, {"Authorization": "Bearer READER"}],
)
def test_models_need_a_gateway_token(server: TrainedServer, headers: dict[str, str]) -> None:
    if headers.get("Authorization") == "Bearer READER":
        headers = {"Authorization": f"Bearer {server.tokens['reader']}"}
    response = server.http.get("/api/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_series_are_reported_not_trained(server: TrainedServer) -> None:
    output = train("--days", "30", "--series", "nowhere")
    assert "skipped sensor nowhere: no such sensor or DMA" in output
    assert output.splitlines()[-1] == "0 artifact(s) stored, 1 skipped"


def test_history_is_read_in_bounded_pages_without_loss(
    server: TrainedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = history_module.sensor_history(server.runtime.store, "ss-in", START, NOW)
    monkeypatch.setattr(history_module, "PAGE_ROWS", 1_000)  # several pages per week
    paged = history_module.sensor_history(server.runtime.store, "ss-in", START, NOW)
    assert paged.epoch_s.size == whole.epoch_s.size == 20 * 288
    assert np.array_equal(paged.epoch_s, whole.epoch_s)
    net = history_module.dma_history(
        server.runtime.store, "ss-dma", ["ss-in"], ["ss-out"], START, NOW
    )
    outlet = history_module.sensor_history(server.runtime.store, "ss-out", START, NOW)
    assert np.allclose(net.flow_m3h, whole.flow_m3h - outlet.flow_m3h)


def test_only_the_latest_artifacts_are_kept_and_served(server: TrainedServer) -> None:
    with server.runtime.sessions() as session:
        for i in range(KEEP_PER_SERIES + 2):
            store_artifact(
                session,
                series_id="ss-spare",
                kind="sensor",
                created_at=NOW,
                key_id="k",
                sha256=str(i),
                json_text=json.dumps({"n": i}),
            )
        rows = session.scalars(
            select(ModelArtifactRecord).where(ModelArtifactRecord.series_id == "ss-spare")
        ).all()
        assert len(rows) == KEEP_PER_SERIES
        latest = latest_artifacts(session, [("sensor", "ss-spare"), ("dma", "ss-spare")])
    assert [json.loads(a.json) for a in latest] == [{"n": KEEP_PER_SERIES + 1}]
