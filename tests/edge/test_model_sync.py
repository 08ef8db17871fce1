"""The gateway's model sync against a real server: fetch, verify, install, persist.

The server (real uvicorn, SQLite) holds artifacts trained by the real trainer and
signed with the server key; the gateway knows only the public key. An artifact
signed by another key, or altered after signing, must never reach the detection
engine nor the gateway's disk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from leaksense.core.errors import AuthenticationError, ConfigError, UplinkUnavailable
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, parse_config
from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.models import ModelSync
from leaksense.edge.runner import GatewayRunner
from leaksense.models.signing import public_key_text, sign, signed_json
from leaksense.models.train import train_artifact
from leaksense.server.app import create_app
from leaksense.server.db import ModelArtifactRecord
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.services.models import store_artifact
from leaksense.server.settings import load_settings
from model_history import history
from services import MosquittoServer

SERVER_KEY = Ed25519PrivateKey.generate()
NETWORK = {
    "sites": [{"site_id": "saint-savin", "name": "Saint-Savin"}],
    "dmas": [{"dma_id": "ss-dma", "site_id": "saint-savin", "name": "Réseau"}],
    "sensors": [
        {"sensor_id": "ss-in", "site_id": "saint-savin", "dma_id": "ss-dma", "role": "inlet"},
    ],
}


@pytest.fixture(scope="module")
def trained() -> dict[str, ModelArtifact]:
    """Artifacts from the real trainer, for the inlet meter and its DMA."""
    epoch_s, flow = history(10)
    clock = LocalClock()
    return {
        "ss-in": train_artifact("ss-in", epoch_s, flow, clock),
        "ss-dma": train_artifact("ss-dma", epoch_s, flow, clock, kind="dma"),
    }


@dataclass
class Site:
    url: str
    runtime: Runtime
    token: str
    tmp_path: Path

    def publish(self, artifact: ModelArtifact, key: Ed25519PrivateKey = SERVER_KEY) -> None:
        """What ``leaksense models train`` does once it has an artifact."""
        signed = sign(artifact, key)
        with self.runtime.sessions() as session:
            store_artifact(
                session,
                series_id=artifact.series_id,
                kind=artifact.kind,
                created_at=artifact.created_at,
                key_id=signed.key_id or "",
                sha256=signed.sha256,
                json_text=signed_json(signed).decode(),
            )

    def config(self, **models: Any) -> GatewayConfig:
        section = {"public_key": public_key_text(SERVER_KEY), "dir": str(self.tmp_path / "m")}
        return parse_config(
            {
                "gateway_id": "gw-ss",
                "site": "saint-savin",
                "uplink": {"url": self.url},
                "models": section | models,
                "dmas": [{"dma_id": "ss-dma", "inlets": ["ss-in"]}],
                "outbox": {"path": str(self.tmp_path / "outbox.db")},
                "metrics": {"port": 0},
            }
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    runtime = build_runtime(load_settings(data_dir=tmp_path / "data"))
    with runtime.sessions() as session:
        entities.load_network(session, entities.NetworkDescription.model_validate(NETWORK))
        token = entities.add_gateway(session, "gw-ss", "saint-savin")
    server = ServerThread(create_app(runtime=runtime)).start()
    yield Site(server.url, runtime, token, tmp_path)
    server.stop()


def engine_for(config: GatewayConfig) -> DetectionEngine:
    return DetectionEngine(config.gateway_id, config.engine_settings())


def test_fetches_verifies_installs_persists_and_reloads(
    site: Site, trained: dict[str, ModelArtifact]
) -> None:
    for artifact in trained.values():
        site.publish(artifact)
    config = site.config()
    engine = engine_for(config)
    assert engine.warming_up() == ["ss-dma"]
    sync = ModelSync(config, site.token, install=engine.install)

    assert sync.refresh() == 2
    assert engine.series["ss-in"].artifact == trained["ss-in"]
    assert engine.dma_series["ss-dma"].artifact == trained["ss-dma"]
    assert engine.warming_up() == []
    saved = sorted(p.name for p in config.models.dir.iterdir())
    assert saved == ["dma.ss-dma.json", "sensor.ss-in.json"]  # no temporary file left
    assert sync.refresh() == 0  # nothing stored since
    sync.stop()

    restarted = engine_for(config)
    again = ModelSync(config, site.token, install=restarted.install)
    assert again.load_saved() == 2
    assert restarted.series["ss-in"].artifact == trained["ss-in"]
    assert again.refresh() == 0  # the server's copies are the ones already installed

    newer = trained["ss-in"].model_copy(update={"night_baseline_m3h": 5.0})
    site.publish(newer)
    assert again.refresh() == 1
    assert restarted.series["ss-in"].artifact == newer
    saved_json = json.loads((config.models.dir / "sensor.ss-in.json").read_text())
    assert saved_json["artifact"]["night_baseline_m3h"] == 5.0
    assert again.stats.installed == 1 and again.stats.loaded == 2
    again.stop()


def test_a_bad_signature_is_refused_counted_and_never_installed(
    site: Site, trained: dict[str, ModelArtifact], caplog: pytest.LogCaptureFixture
) -> None:
    site.publish(trained["ss-in"], key=Ed25519PrivateKey.generate())
    site.publish(trained["ss-dma"])
    with site.runtime.sessions() as session:  # altered in the database after signing
        row = session.scalars(
            select(ModelArtifactRecord).where(ModelArtifactRecord.series_id == "ss-dma")
        ).one()
        row.json = row.json.replace('"night_sigma_m3h":', '"night_sigma_m3h":1', 1)
        session.commit()
    config = site.config()
    engine = engine_for(config)
    sync = ModelSync(config, site.token, install=engine.install)
    with caplog.at_level(logging.ERROR, "leaksense.edge.models"):
        assert sync.refresh() == 0
    assert sync.stats.refused == 2
    assert "bad signature" in caplog.text and "checksum mismatch" in caplog.text
    assert engine.warming_up() == ["ss-dma"]
    assert "ss-in" not in engine.series
    assert not config.models.dir.exists() or not any(config.models.dir.iterdir())
    sync.stop()


def test_a_saved_file_altered_on_disk_is_refused_at_start(
    site: Site, trained: dict[str, ModelArtifact]
) -> None:
    site.publish(trained["ss-in"])
    config = site.config()
    sync = ModelSync(config, site.token, install=engine_for(config).install)
    sync.refresh()
    sync.stop()
    path = config.models.dir / "sensor.ss-in.json"
    path.write_text(path.read_text().replace('"night_baseline_m3h":', '"night_baseline_m3h":9'))
    engine = engine_for(config)
    restarted = ModelSync(config, site.token, install=engine.install)
    assert restarted.load_saved() == 0
    assert restarted.stats.refused == 1
    assert "ss-in" not in engine.series
    restarted.stop()


def test_without_a_public_key_server_models_are_refused(
    site: Site, trained: dict[str, ModelArtifact], caplog: pytest.LogCaptureFixture
) -> None:
    site.publish(trained["ss-in"])
    config = site.config(public_key=None)
    engine = engine_for(config)
    with caplog.at_level(logging.WARNING, "leaksense.edge.models"):
        sync = ModelSync(config, site.token, install=engine.install)
        sync.start()
        assert sync.refresh() == 0
    assert caplog.text.count("no [models] public_key") == 1
    assert "ss-in" not in engine.series
    sync.stop()


def test_server_failures_are_translated(site: Site) -> None:
    engine = engine_for(site.config())
    refused = ModelSync(site.config(), "lks_not-a-token", install=engine.install)
    with pytest.raises(AuthenticationError):
        refused.refresh()
    refused.stop()
    offline = site.config().model_copy(
        update={"uplink": site.config().uplink.model_copy(update={"url": "http://127.0.0.1:9"})}
    )
    unreachable = ModelSync(offline, site.token, install=engine.install)
    with pytest.raises(UplinkUnavailable):
        unreachable.refresh()
    unreachable.stop()


def test_a_malformed_public_key_is_a_config_error(site: Site) -> None:
    with pytest.raises(ConfigError, match=r"models\.public_key"):
        site.config(public_key="bm90IGEga2V5")


@pytest.mark.mqtt
def test_the_running_gateway_installs_server_models(
    site: Site, trained: dict[str, ModelArtifact], mosquitto: MosquittoServer
) -> None:
    for artifact in trained.values():
        site.publish(artifact)
    config = site.config().model_copy(
        update={"mqtt": site.config().mqtt.model_copy(update={"port": mosquitto.port})}
    )
    runner = GatewayRunner(config, token=site.token)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while runner.engine.warming_up() or "ss-in" not in runner.engine.series:
            assert time.monotonic() < deadline, "models were not installed"
            time.sleep(0.05)
    finally:
        runner.stop(drain_timeout_s=1)
    assert runner.engine.series["ss-in"].artifact == trained["ss-in"]
    assert httpx.get(f"{site.url}/api/v1/health").status_code == 200
