"""The alert endpoints over HTTP: reader tokens read, admin tokens act, errors are clear."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.runtime import build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from workflow.support import wire_alert


@dataclass
class Api:
    http: httpx.Client
    gateway: dict[str, str]
    reader: dict[str, str]
    admin: dict[str, str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    runtime = build_runtime(load_settings(data_dir=tmp_path))
    with runtime.sessions() as session:
        gateway = entities.add_gateway(session, "gw-1", None)
        reader = entities.add_reader_token(session, "wall-screen")
        admin = entities.add_token(session, "ops", "admin")
    server = ServerThread(create_app(runtime=runtime)).start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield Api(http, _bearer(gateway), _bearer(reader), _bearer(admin))
    server.stop()


def _ingest(api: Api, seq: int, **fields: object) -> None:
    now = datetime.now(UTC)
    alert = wire_alert(
        "gw-1:burst:1",
        **{"started_at": now - timedelta(minutes=3), "detected_at": now - timedelta(minutes=2),
           "updated_at": now - timedelta(minutes=1), **fields},
    )  # fmt: skip
    body = {
        "gateway_id": "gw-1",
        "batch_seq": seq,
        "sent_at": now.isoformat(),
        "alerts": [alert.model_dump(mode="json")],
    }
    assert api.http.post("/api/v1/ingest", json=body, headers=api.gateway).status_code == 200


def test_alert_lifecycle_over_http(api: Api) -> None:
    _ingest(api, 0)
    listed = api.http.get("/api/v1/alerts", params={"state": "open"}, headers=api.reader)
    assert [a["alert_id"] for a in listed.json()] == ["gw-1:burst:1"]
    base = "/api/v1/alerts/gw-1:burst:1"
    assert api.http.post(f"{base}/acknowledge", headers=api.reader).status_code == 401
    acked = api.http.post(f"{base}/acknowledge", headers=api.admin)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "token:ops"
    again = api.http.post(f"{base}/acknowledge", headers=api.admin)
    assert again.status_code == 409 and "acknowledged by token:ops" in again.json()["detail"]
    _ingest(api, 1, flow_m3h=5.5)  # the gateway's update keeps the acknowledgement
    view = api.http.get(base, headers=api.reader).json()
    assert (view["state"], view["flow_m3h"]) == ("acknowledged", 5.5)
    assert (view["same_event_as"], view["also_seen"]) == (None, [])  # an event of its own
    assert (
        api.http.post(f"{base}/assign", json={"assignee": "bob"}, headers=api.admin).json()[
            "assignee"
        ]
        == "bob"
    )
    noted = api.http.post(f"{base}/notes", json={"text": "Vanne fermée"}, headers=api.admin)
    assert noted.json()["notes"][0]["text"] == "Vanne fermée"
    bad = api.http.post(f"{base}/resolve", json={"resolution": "fixed"}, headers=api.admin)
    assert bad.status_code == 422
    done = api.http.post(
        f"{base}/resolve",
        json={"resolution": "repaired", "repaired_flow_m3h": 5.0, "notes": "Joint changé"},
        headers=api.admin,
    )
    assert done.status_code == 200
    assert (done.json()["resolution"], done.json()["repaired_flow_m3h"]) == ("repaired", 5.0)
    steps = api.http.get(f"{base}/history", headers=api.reader).json()
    assert [s["action"] for s in steps] == ["acknowledge", "assign", "note", "resolve"]
    assert api.http.get("/api/v1/alerts/nope", headers=api.reader).status_code == 404
    assert api.http.get("/api/v1/alerts").status_code == 401
    stats = api.http.get("/api/v1/notifications/stats", headers=api.reader).json()
    assert stats == {"pending": 0, "sent": 0, "failed": 0, "cancelled": 0}  # no channel set
    assert (
        api.http.get("/api/v1/alerts", params={"state": "x"}, headers=api.reader).status_code == 422
    )


def test_gateways_read_the_false_alarm_feedback(api: Api) -> None:
    _ingest(api, 0)
    resolved = api.http.post(
        "/api/v1/alerts/gw-1:burst:1/resolve", json={"resolution": "false_alarm"}, headers=api.admin
    )
    assert resolved.status_code == 200
    feedback = api.http.get("/api/v1/sensitivity", headers=api.gateway).json()
    assert feedback["max_multiplier"] == 2.0
    assert feedback["series"]["s-1"]["threshold_multiplier"] == pytest.approx(1.1)
    assert feedback["series"]["s-1"]["false_alarms"] == 1
    assert api.http.get("/api/v1/sensitivity").status_code == 401
