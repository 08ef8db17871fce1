"""Test harness of the dashboard: a real server (uvicorn, SQLite) with a network, users
and an alert, and helpers to log in.

The alert and the readings around it arrive through the ingest API, as a gateway
would send them; users are made with the users service, as the CLI does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from leaksense.server.users import service as users

PASSWORD = "correct-horse-battery"
SITE = "saint-savin"
T_EVENT = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
ALERT_ID = "gw-saint-savin:in-1:1767582000"
USERS = {"alice": "admin", "marc": "manager", "tom": "technician"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    url: str
    runtime: Runtime
    gateway_token: str

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, follow_redirects=False)

    def ingest(self, batch: dict[str, Any]) -> None:
        """Send a batch as the site's gateway would."""
        response = httpx.post(
            f"{self.url}/api/v1/ingest",
            json=batch,
            headers={"Authorization": f"Bearer {self.gateway_token}"},
        )
        assert response.status_code == 200, response.text


def _network() -> entities.NetworkDescription:
    return entities.NetworkDescription.model_validate(
        {
            "sites": [{"site_id": "saint-savin", "name": "Saint-Savin"}],
            "dmas": [{"dma_id": "ss-dma", "site_id": "saint-savin", "name": "Bourg"}],
            "sensors": [
                {"sensor_id": "in-1", "site_id": SITE, "dma_id": "ss-dma", "role": "inlet"},
                {"sensor_id": "out", "site_id": SITE, "dma_id": "ss-dma", "role": "outlet"},
            ],
        }
    )


def _batch() -> dict[str, Any]:
    """A day of 10-minute readings, the flow rising by 4 m³/h at the event, and its alert."""
    start = T_EVENT - timedelta(hours=12)
    readings = []
    for i in range(6 * 24):
        moment = start + timedelta(minutes=10 * i)
        leak = 4.0 if moment >= T_EVENT else 0.0
        readings.append({"sensor_id": "in-1", "time": moment.isoformat(), "flow_m3h": 20.0 + leak})
        readings.append({"sensor_id": "out", "time": moment.isoformat(), "flow_m3h": 5.0})
    alert = {
        "alert_id": ALERT_ID,
        "sensor_id": "in-1",
        "kind": "background_leak",
        "started_at": T_EVENT.isoformat(),
        "detected_at": (T_EVENT + timedelta(hours=1)).isoformat(),
        "flow_m3h": 4.0,
        "lost_volume_m3": 4.0,
        "confidence": 0.8,
        "explanation_en": "night flow 4.0 m³/h above its usual level",
        "explanation_fr": "débit de nuit supérieur de 4,0 m³/h à l'habitude",
    }
    return {
        "gateway_id": "gw-saint-savin",
        "batch_seq": 1,
        "sent_at": (T_EVENT + timedelta(hours=13)).isoformat(),
        "readings": readings,
        "alerts": [alert],
    }


def serve_site(tmp_path: Path, **overrides: object) -> Iterator[Site]:
    """The server (settings: ``overrides``), until the generator is closed."""
    settings = load_settings(data_dir=tmp_path / "data", **overrides)
    runtime = build_runtime(settings)
    now = datetime.now(UTC)
    with runtime.sessions() as session:
        entities.load_network(session, _network())
        token = entities.add_gateway(session, "gw-saint-savin", "saint-savin")
        for name, role in USERS.items():
            users.add_user(session, name, PASSWORD, role, actor="tests", now=now)
    server = ServerThread(create_app(settings, runtime)).start()
    try:
        site = Site(server.url, runtime, token)
        site.ingest(_batch())
        yield site
    finally:
        server.stop()


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """GET the login page (session + CSRF token), then POST the credentials."""
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    return client.post(
        "/dashboard/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
    )


@contextmanager
def logged_in(site: Site, username: str, **headers: str) -> Iterator[httpx.Client]:
    """A client with a session of ``username``, closed after the block."""
    with site.client(**headers) as client:
        response = login(client, username)
        assert response.status_code == 303, response.text
        yield client
