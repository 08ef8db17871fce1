"""``integration`` API tokens: a ticketing or SMS system reads alerts and acts on them
through ``/api/v1/alerts``, and can do nothing else (no ingest, no reports).

The token is issued by ``leaksense server add-token NAME --kind integration``, as an
operator would, against the database of a running server; the server keeps only its
SHA-256, and the audit log names its changes ``token:NAME``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dashboard.harness import ALERT_ID, Site
from leaksense.core.cli import build_app
from leaksense.core.errors import InvalidInput
from leaksense.server.db import ApiToken
from leaksense.server.security import hash_token
from leaksense.server.services import entities
from leaksense.server.users import service as users
from leaksense.server.workflow.models import AuditRecord

ALERT = f"/api/v1/alerts/{ALERT_ID}"


def _issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(build_app(), ["server", "add-token", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_an_integration_token_reads_and_acts_on_alerts(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _issue(tmp_path, monkeypatch, "ticketing", "--kind", "integration")
    with site.runtime.sessions() as session:
        record = session.get(ApiToken, hash_token(token))
        assert record is not None and (record.kind, record.name) == ("integration", "ticketing")
        assert token not in record.token_sha256
    with site.client(Authorization=f"Bearer {token}") as api:
        listed = api.get("/api/v1/alerts", params={"state": "open"})
        assert [a["alert_id"] for a in listed.json()] == [ALERT_ID]
        acked = api.post(f"{ALERT}/acknowledge")
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "token:ticketing"
        assigned = api.post(f"{ALERT}/assign", json={"assignee": "tom"})
        assert assigned.json()["assignee"] == "tom"
        noted = api.post(f"{ALERT}/notes", json={"text": "Ticket #4711"})
        assert noted.json()["notes"][0]["author"] == "token:ticketing"
        resolved = api.post(f"{ALERT}/resolve", json={"resolution": "repaired"})
        assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
        history = api.get(f"{ALERT}/history").json()
        assert [(h["actor"], h["action"]) for h in history] == [
            ("token:ticketing", "acknowledge"),
            ("token:ticketing", "assign"),
            ("token:ticketing", "note"),
            ("token:ticketing", "resolve"),
        ]
        assert api.get("/api/v1/notifications/stats").status_code == 200
    with site.runtime.sessions() as session:
        actors = set(session.scalars(select(AuditRecord.actor)).all())
    assert "token:ticketing" in actors


def test_an_integration_token_cannot_ingest_read_reports_or_manage_users(site: Site) -> None:
    with site.runtime.sessions() as session:
        token = entities.add_token(session, "sms-bridge", "integration")
    batch = {"gateway_id": "gw-saint-savin", "batch_seq": 9, "sent_at": "2026-01-05T12:00:00Z"}
    with site.client(Authorization=f"Bearer {token}") as api:
        assert api.post("/api/v1/ingest", json=batch).status_code == 401
        assert api.post("/api/v1/gateways/health", json={}).status_code == 401
        efficiency = "/api/v1/reports/efficiency?start=2026-01-04&end=2026-01-06"
        assert api.get(efficiency).status_code == 401
        assert api.get("/api/v1/gateways").status_code == 401
        # users are managed from the dashboard (a session) or the CLI, never a token
        assert api.get("/dashboard/users").status_code == 303
        assert api.post("/dashboard/users/tom/role", data={"role": "admin"}).status_code == 403
    with site.runtime.sessions() as session:
        assert users.get_user(session, "tom").role == "technician"


def test_reader_tokens_still_only_read_alerts(site: Site) -> None:
    with site.runtime.sessions() as session:
        reader = entities.add_token(session, "wall-screen", "reader")
    with site.client(Authorization=f"Bearer {reader}") as api:
        assert api.get(ALERT).status_code == 200
        assert api.post(f"{ALERT}/acknowledge").status_code == 401
        assert api.post(f"{ALERT}/notes", json={"text": "x"}).status_code == 401
        assert api.get(ALERT).json()["state"] == "open"


def test_add_token_refuses_an_unknown_kind_or_an_empty_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(tmp_path / "data"))
    runner, app = CliRunner(), build_app()
    unknown = runner.invoke(app, ["server", "add-token", "x", "--kind", "root"])
    assert unknown.exit_code == 2 and "root" in unknown.output
    empty = runner.invoke(app, ["server", "add-token", " ", "--kind", "integration"])
    assert empty.exit_code != 0 and isinstance(empty.exception, InvalidInput)
